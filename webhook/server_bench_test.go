package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// BenchmarkWebhookServer measures the throughput of the real webhook server
// over HTTPS on loopback: 32 concurrent keep-alive clients post
// AdmissionReviews of a CanaryRelease with three policies, alternating the
// mutating and the validating review, as the API server sends them.
func BenchmarkWebhookServer(b *testing.B) {
	const clients = 32
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	certDir, pool := servingCert(b)
	port := freePort(b)
	server := ctrlwebhook.NewServer(ctrlwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir})
	mutating, validating, err := Handlers(newAdmission(b), "CanaryRelease")
	if err != nil {
		b.Fatal(err)
	}
	server.Register(webhookPath("mutate", "CanaryRelease"), mutating)
	server.Register(webhookPath("validate", "CanaryRelease"), validating)
	done := make(chan error, 1)
	go func() { done <- server.Start(ctx) }()
	started := server.StartedChecker()
	for deadline := time.Now().Add(10 * time.Second); started(nil) != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("webhook server did not start")
		}
	}

	objects := benchObjects(b)
	mutateReview := review(b, "CanaryRelease", objects["CanaryRelease"])
	validateReview := mutateReview // the sample is valid before and after defaulting
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	bodies := []struct {
		url  string
		body []byte
	}{{base + webhookPath("mutate", "CanaryRelease"), mutateReview}, {base + webhookPath("validate", "CanaryRelease"), validateReview}}
	httpClient := &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: clients,
		ForceAttemptHTTP2:   false,
	}, Timeout: 10 * time.Second}

	var next atomic.Int64
	var failures atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				req := bodies[i%2]
				resp, err := httpClient.Post(req.url, "application/json", bytes.NewReader(req.body))
				if err != nil {
					failures.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"allowed":true`)) {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failures.Load() > 0 {
		b.Fatalf("%d of %d reviews failed or were refused", failures.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reviews/s")
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// servingCert writes a self-signed serving certificate for 127.0.0.1 into
// a new directory and returns it with a pool that trusts it.
func servingCert(b *testing.B) (string, *x509.CertPool) {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubist-webhook-bench"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return dir, pool
}

func freePort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

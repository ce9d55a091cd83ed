package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kubist-io/kubist/internal/scheme"
)

const testConfig = "kubist-webhook"

func newTestClient(t *testing.T) client.Client {
	t.Helper()
	path := "/validate"
	cc := admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "kubist", Name: "kubist-webhook", Path: &path}}
	return fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(
		&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: testConfig},
			Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "a.kubist.io", ClientConfig: cc}, {Name: "b.kubist.io", ClientConfig: cc}},
		},
		&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: testConfig},
			Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "c.kubist.io", ClientConfig: cc}},
		},
	).Build()
}

func newTestRotator(t *testing.T, c client.Client, now *time.Time) *Rotator {
	t.Helper()
	r, err := New(c, logr.Discard(), Options{
		Namespace: "kubist", SecretName: "kubist-webhook-cert",
		DNSNames:             ServiceDNSNames("kubist-webhook", "kubist"),
		CertDir:              t.TempDir(),
		WebhookConfiguration: testConfig,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return *now }
	return r
}

// issued is a Rotator on a fresh store after its first check, at a clock
// the test moves.
func issued(t *testing.T) (client.Client, *time.Time, *Rotator) {
	t.Helper()
	c := newTestClient(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newTestRotator(t, c, &now)
	if err := r.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c, &now, r
}

// state is what a check leaves behind: the Secret, the files and the
// caBundles.
type state struct {
	secret          map[string][]byte
	crt, key        []byte
	caBundles       [][]byte
	servingNotAfter time.Time
}

func readState(t *testing.T, c client.Client, r *Rotator) state {
	t.Helper()
	ctx := context.Background()
	var s state
	secret := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "kubist", Name: "kubist-webhook-cert"}, secret); err != nil {
		t.Fatal(err)
	}
	s.secret = secret.Data
	var err error
	if s.crt, err = os.ReadFile(filepath.Join(r.opts.CertDir, "tls.crt")); err != nil {
		t.Fatal(err)
	}
	if s.key, err = os.ReadFile(filepath.Join(r.opts.CertDir, "tls.key")); err != nil {
		t.Fatal(err)
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, types.NamespacedName{Name: testConfig}, m); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, types.NamespacedName{Name: testConfig}, v); err != nil {
		t.Fatal(err)
	}
	for _, w := range m.Webhooks {
		s.caBundles = append(s.caBundles, w.ClientConfig.CABundle)
	}
	for _, w := range v.Webhooks {
		s.caBundles = append(s.caBundles, w.ClientConfig.CABundle)
	}
	pair, err := tls.X509KeyPair(s.crt, s.key)
	if err != nil {
		t.Fatalf("the files are not a key pair: %v", err)
	}
	s.servingNotAfter = pair.Leaf.NotAfter
	return s
}

// verify checks that the files hold a certificate for the Service that
// every caBundle trusts at now.
func (s state) verify(t *testing.T, now time.Time) {
	t.Helper()
	if !bytes.Equal(s.crt, s.secret[CertKey]) || !bytes.Equal(s.key, s.secret[KeyKey]) {
		t.Error("the files differ from the Secret")
	}
	block, _ := pem.Decode(s.crt)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.caBundles) != 3 {
		t.Fatalf("caBundles of %d webhooks, want 3", len(s.caBundles))
	}
	for i, b := range s.caBundles {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			t.Fatalf("webhook %d: caBundle holds no certificate", i)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "kubist-webhook.kubist.svc", CurrentTime: now}); err != nil {
			t.Errorf("webhook %d does not trust the serving certificate: %v", i, err)
		}
	}
}

func TestEnsureIssuesThenKeeps(t *testing.T) {
	ctx := context.Background()
	c, now, r := issued(t)
	first := readState(t, c, r)
	first.verify(t, *now)
	if got, want := first.servingNotAfter, now.Add(DefaultCertValidity); !got.Equal(want) {
		t.Errorf("serving certificate ends %s, want %s", got, want)
	}

	// A day later nothing is due: nothing changes.
	*now = now.Add(24 * time.Hour)
	if err := r.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if again := readState(t, c, r); !bytes.Equal(again.crt, first.crt) || !bytes.Equal(again.secret[CAKey], first.secret[CAKey]) {
		t.Error("a check with nothing due issued a new certificate")
	}

	// Within RenewBefore of its end the serving certificate is renewed by
	// the same CA: the caBundles stay.
	*now = first.servingNotAfter.Add(-DefaultRenewBefore + time.Hour)
	if err := r.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := readState(t, c, r)
	renewed.verify(t, *now)
	if bytes.Equal(renewed.crt, first.crt) {
		t.Error("the serving certificate was not renewed within RenewBefore of its end")
	}
	if !bytes.Equal(renewed.secret[CAKey], first.secret[CAKey]) {
		t.Error("renewing the serving certificate replaced the CA")
	}
}

func TestEnsureRenewsTheCAKeepingTheOldOneTrusted(t *testing.T) {
	ctx := context.Background()
	c, now, r := issued(t)
	caEnd := now.Add(DefaultCAValidity)
	// Shortly before the CA is due, the serving certificate was renewed
	// (it ends with the CA).
	*now = caEnd.Add(-DefaultRenewBefore - time.Hour)
	if err := r.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	old := readState(t, c, r)
	oldCA := old.secret[CAKey]
	if !old.servingNotAfter.Equal(caEnd) {
		t.Errorf("serving certificate ends %s, after its CA (%s)", old.servingNotAfter, caEnd)
	}

	*now = now.Add(2 * time.Hour)
	if err := r.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := readState(t, c, r)
	renewed.verify(t, *now)
	if bytes.Equal(renewed.secret[CAPrivateKey], old.secret[CAPrivateKey]) {
		t.Fatal("the CA was not renewed within RenewBefore of its end")
	}
	// The bundle holds the new CA and the old one, so a replica still
	// serving the old certificate stays trusted until it reloads.
	if !bytes.HasSuffix(renewed.secret[CAKey], oldCA) || bytes.Equal(renewed.secret[CAKey], oldCA) {
		t.Error("the renewed bundle does not hold the new CA followed by the old one")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(renewed.caBundles[0])
	block, _ := pem.Decode(old.crt)
	cert, _ := x509.ParseCertificate(block.Bytes)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "kubist-webhook.kubist.svc", CurrentTime: *now}); err != nil {
		t.Errorf("the old serving certificate is no longer trusted after the CA changed: %v", err)
	}
}

func TestEnsureReissuesWhatDoesNotFit(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, spoil := range map[string]func(map[string][]byte){
		"serving key of another certificate": func(d map[string][]byte) { d[KeyKey] = d[CAPrivateKey] },
		"garbage certificate":                func(d map[string][]byte) { d[CertKey] = []byte("not a certificate") },
		"CA key missing":                     func(d map[string][]byte) { delete(d, CAPrivateKey) },
	} {
		t.Run(name, func(t *testing.T) {
			c := newTestClient(t)
			r := newTestRotator(t, c, &now)
			if err := r.Ensure(ctx); err != nil {
				t.Fatal(err)
			}
			secret := &corev1.Secret{}
			key := types.NamespacedName{Namespace: "kubist", Name: "kubist-webhook-cert"}
			if err := c.Get(ctx, key, secret); err != nil {
				t.Fatal(err)
			}
			spoil(secret.Data)
			if err := c.Update(ctx, secret); err != nil {
				t.Fatal(err)
			}
			if err := r.Ensure(ctx); err != nil {
				t.Fatal(err)
			}
			readState(t, c, r).verify(t, now)
		})
	}

	t.Run("Service renamed", func(t *testing.T) {
		c := newTestClient(t)
		r := newTestRotator(t, c, &now)
		if err := r.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		r.opts.DNSNames = ServiceDNSNames("renamed", "kubist")
		if err := r.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		s := readState(t, c, r)
		block, _ := pem.Decode(s.crt)
		cert, _ := x509.ParseCertificate(block.Bytes)
		if cert.VerifyHostname("renamed.kubist.svc") != nil {
			t.Errorf("the certificate was not reissued for the renamed Service: %v", cert.DNSNames)
		}
	})
}

// Replicas starting together settle on one certificate.
func TestReplicasSettleOnOneCertificate(t *testing.T) {
	ctx := context.Background()
	c := newTestClient(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rotators := make([]*Rotator, 4)
	for i := range rotators {
		rotators[i] = newTestRotator(t, c, &now)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(rotators))
	for i, r := range rotators {
		wg.Go(func() { errs[i] = r.Ensure(ctx) })
	}
	wg.Wait()
	var crt []byte
	for i, r := range rotators {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		s := readState(t, c, r)
		s.verify(t, now)
		if crt != nil && !bytes.Equal(crt, s.crt) {
			t.Errorf("replica %d serves another certificate than replica 0", i)
		}
		crt = s.crt
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for name, o := range map[string]Options{
		"no Secret":         {Namespace: "kubist", DNSNames: []string{"a"}, CertDir: "/tmp/x"},
		"no names":          {Namespace: "kubist", SecretName: "s", CertDir: "/tmp/x"},
		"no directory":      {Namespace: "kubist", SecretName: "s", DNSNames: []string{"a"}},
		"renew before life": {Namespace: "kubist", SecretName: "s", DNSNames: []string{"a"}, CertDir: "/tmp/x", CertValidity: time.Hour, RenewBefore: 2 * time.Hour},
	} {
		if _, err := New(nil, logr.Discard(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A renewed certificate reaches clients: Start notices the Secret no longer
// fits, issues anew, rewrites the files, and a server reading them through
// controller-runtime's certificate watcher (as the webhook server does)
// serves the new certificate, trusted by the caBundle.
func TestStartRenewsWhatTheServerServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newTestClient(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	r := newTestRotator(t, c, &now)
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r.opts.CheckInterval = 50 * time.Millisecond
	if err := r.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	watcher, err := certwatcher.New(filepath.Join(r.opts.CertDir, CertKey), filepath.Join(r.opts.CertDir, KeyKey))
	if err != nil {
		t.Fatal(err)
	}
	watcher = watcher.WithWatchInterval(50 * time.Millisecond)
	go func() { _ = watcher.Start(ctx) }()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: watcher.GetCertificate, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = conn.(*tls.Conn).Handshake(); _ = conn.Close() }()
		}
	}()
	// Renewing the serving certificate keeps the CA: the bundle read once
	// verifies both. (The files themselves are read by the watcher only:
	// between the two renames a reader may see a new key beside the old
	// certificate, which the watcher refuses until both are new.)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readState(t, c, r).caBundles[0])
	served := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "kubist-webhook.kubist.svc", MinVersion: tls.VersionTLS12, Time: r.now})
		if err != nil {
			t.Fatalf("a client trusting the caBundle: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	first := served()
	go func() { _ = r.Start(ctx) }()

	// Time passes into the renewal window: the next check renews.
	mu.Lock()
	now = first.NotAfter.Add(-DefaultRenewBefore + time.Minute)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cert := served(); cert.SerialNumber.Cmp(first.SerialNumber) != 0 {
			if !cert.NotAfter.After(first.NotAfter) {
				t.Errorf("the renewed certificate ends %s, not after the first (%s)", cert.NotAfter, first.NotAfter)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the server still serves the first certificate 10 s after it fell due for renewal")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Package certs keeps the admission webhooks' serving certificate when no
// certificate manager (cert-manager) provides one: it issues a CA and a
// serving certificate, keeps both in a Secret every replica shares, writes
// the serving pair where the webhook server reads it, puts the CA into the
// caBundle of the webhook configurations, and renews everything before it
// expires. `kubist manager --webhook-cert-secret` and `kubist dev` use it.
//
// It needs get and update on the Secret (create too when nothing else
// creates it) and get and update on both webhook configurations; the Helm
// chart grants exactly that, by resource name, when cert-manager is off.
//
// Why not github.com/open-policy-agent/cert-controller (the rotator
// Gatekeeper uses; v0.16.0 read): it keeps most of what this package does
// (one CA and serving pair in one Secret, renewal ahead of expiry, the
// caBundle of every configured webhook), but when it renews the CA it
// overwrites ca.crt and injects the new CA alone into the caBundle. A
// replica still serving the old pair until its mounted Secret catches up
// (the kubelet syncs it a minute or more later) then fails every TLS
// handshake, and with failurePolicy Fail every write of a Kubist resource
// is refused. This package bundles the new CA beside the old one while the
// old is valid, so both pairs are trusted through the change; see
// TestEnsureRenewsTheCAKeepingTheOldOneTrusted.
package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Keys of the Secret. tls.crt and tls.key follow the kubernetes.io/tls
// convention; ca.crt holds the bundle the webhook configurations trust.
const (
	CAKey        = "ca.crt"
	CAPrivateKey = "ca.key"
	CertKey      = corev1.TLSCertKey
	KeyKey       = corev1.TLSPrivateKeyKey
)

// Defaults of Options.
const (
	DefaultCAValidity    = 10 * 365 * 24 * time.Hour
	DefaultCertValidity  = 365 * 24 * time.Hour
	DefaultRenewBefore   = 30 * 24 * time.Hour
	DefaultCheckInterval = time.Minute
)

// Options say where the certificate lives and whom it serves.
type Options struct {
	// Namespace and SecretName name the Secret that holds the CA and the
	// serving pair.
	Namespace  string
	SecretName string
	// DNSNames and IPs are the serving certificate's subject alternative
	// names: the webhook Service's names, or the local address it serves on.
	DNSNames []string
	IPs      []net.IP
	// CertDir receives tls.crt and tls.key for the webhook server.
	CertDir string
	// WebhookConfiguration names the Mutating- and the
	// ValidatingWebhookConfiguration whose caBundle is kept (both kinds
	// carry the same name); empty keeps none.
	WebhookConfiguration string
	// CAValidity and CertValidity are the lifetimes of what is issued;
	// RenewBefore is how long before its end either is replaced.
	CAValidity   time.Duration
	CertValidity time.Duration
	RenewBefore  time.Duration
	// CheckInterval is how often the Secret, the files and the caBundles
	// are checked again.
	CheckInterval time.Duration
}

// ServiceDNSNames are the names a client of the Service reaches it by.
func ServiceDNSNames(service, namespace string) []string {
	return []string{
		service,
		service + "." + namespace,
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

func (o *Options) defaults() error {
	if o.Namespace == "" || o.SecretName == "" {
		return errors.New("webhook certificate: the Secret's namespace and name are required")
	}
	if len(o.DNSNames) == 0 && len(o.IPs) == 0 {
		return errors.New("webhook certificate: at least one DNS name or IP address is required (--webhook-service)")
	}
	if o.CertDir == "" {
		return errors.New("webhook certificate: the directory for tls.crt and tls.key is required (--webhook-cert-dir)")
	}
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CertValidity == 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = DefaultRenewBefore
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.RenewBefore >= o.CertValidity || o.RenewBefore >= o.CAValidity {
		return fmt.Errorf("webhook certificate: renewing %s before expiry needs validities longer than that (CA %s, serving %s)",
			o.RenewBefore, o.CAValidity, o.CertValidity)
	}
	return nil
}

// expiry reports when the serving certificate in use ends; registered by
// the first Rotator, so that a manager whose certificate cert-manager keeps
// does not report a zero.
var (
	expiry = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kubist_webhook_certificate_expiry_timestamp_seconds",
		Help: "When the webhook serving certificate this replica serves expires (self-managed certificates only).",
	})
	registerExpiry sync.Once
)

// Rotator keeps the webhook certificate. Run Ensure once before the webhook
// server starts (it needs the files), then Start as a manager runnable.
type Rotator struct {
	opts Options
	c    client.Client
	log  logr.Logger
	now  func() time.Time
}

// New returns a Rotator that reads and writes through c; c must not be a
// cached client that waits for a cache (Ensure runs before the manager).
func New(c client.Client, log logr.Logger, opts Options) (*Rotator, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	registerExpiry.Do(func() { metrics.Registry.MustRegister(expiry) })
	return &Rotator{opts: opts, c: c, log: log, now: time.Now}, nil
}

// NeedLeaderElection is false: every replica serves admission and needs the files.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Start checks the certificate every CheckInterval until ctx ends. A failed
// check is logged and tried again; the certificate in use stays valid for
// RenewBefore, far longer than an interval.
func (r *Rotator) Start(ctx context.Context) error {
	t := time.NewTicker(r.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.Ensure(ctx); err != nil {
				r.log.Error(err, "Webhook certificate check failed; retrying", "interval", r.opts.CheckInterval)
			}
		}
	}
}

// Ensure makes the Secret hold a CA and a serving certificate valid beyond
// RenewBefore, writes the serving pair into CertDir and the CA into the
// configurations' caBundle. Replicas racing to issue settle on whichever
// Secret update the API server takes first.
func (r *Rotator) Ensure(ctx context.Context) error {
	var b *bundle
	for attempt := 0; ; attempt++ {
		var err error
		if b, err = r.ensureSecret(ctx); err == nil {
			break
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) || attempt == 5 {
			return err
		}
	}
	if err := r.writeFiles(b); err != nil {
		return err
	}
	expiry.Set(float64(b.cert.NotAfter.Unix()))
	return r.injectCABundle(ctx, b.caPEM)
}

// bundle is the parsed content of the Secret.
type bundle struct {
	caPEM, caKeyPEM, certPEM, keyPEM []byte
	ca, cert                         *x509.Certificate
	caKey                            crypto.Signer
}

func (r *Rotator) ensureSecret(ctx context.Context) (*bundle, error) {
	key := types.NamespacedName{Namespace: r.opts.Namespace, Name: r.opts.SecretName}
	secret := &corev1.Secret{}
	err := r.c.Get(ctx, key, secret)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("read webhook certificate Secret %s: %w", key, err)
	}
	old := parse(secret.Data)
	now := r.now()
	if old.caFresh(now, r.opts.RenewBefore) && old.certFresh(now, r.opts) {
		return old, nil
	}
	issued, err := r.issue(old, now)
	if err != nil {
		return nil, err
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	secret.Data[CAKey], secret.Data[CAPrivateKey] = issued.caPEM, issued.caKeyPEM
	secret.Data[CertKey], secret.Data[KeyKey] = issued.certPEM, issued.keyPEM
	if exists {
		err = r.c.Update(ctx, secret)
	} else {
		secret.Name, secret.Namespace = key.Name, key.Namespace
		err = r.c.Create(ctx, secret)
	}
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			return nil, err // another replica issued first: read its certificate
		}
		return nil, fmt.Errorf("store the webhook certificate in Secret %s: %w", key, err)
	}
	r.log.Info("Issued the webhook serving certificate", "secret", key.String(),
		"newCA", issued.ca != old.ca, "notAfter", issued.cert.NotAfter.UTC().Format(time.RFC3339))
	return issued, nil
}

// issue renews the serving certificate, and the CA first when it is
// missing or near its end. A new CA's bundle keeps the previous CA while it
// is valid, so replicas still serving a certificate it signed stay trusted.
func (r *Rotator) issue(old *bundle, now time.Time) (*bundle, error) {
	b := &bundle{ca: old.ca, caKey: old.caKey, caPEM: old.caPEM, caKeyPEM: old.caKeyPEM}
	if !old.caFresh(now, r.opts.RenewBefore) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			Subject:               pkix.Name{CommonName: "kubist-webhook-ca"},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(r.opts.CAValidity),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		ca, der, err := sign(tmpl, tmpl, key.Public(), key)
		if err != nil {
			return nil, err
		}
		keyPEM, err := encodeKey(key)
		if err != nil {
			return nil, err
		}
		b.ca, b.caKey, b.caKeyPEM = ca, key, keyPEM
		b.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if old.ca != nil && now.Before(old.ca.NotAfter) {
			b.caPEM = append(b.caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: old.ca.Raw})...)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	name := "kubist-webhook"
	if len(r.opts.DNSNames) > 0 {
		name = r.opts.DNSNames[len(r.opts.DNSNames)-1]
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		DNSNames:    r.opts.DNSNames,
		IPAddresses: r.opts.IPs,
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(r.opts.CertValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(b.ca.NotAfter) {
		tmpl.NotAfter = b.ca.NotAfter
	}
	cert, der, err := sign(tmpl, b.ca, key.Public(), b.caKey)
	if err != nil {
		return nil, err
	}
	if b.keyPEM, err = encodeKey(key); err != nil {
		return nil, err
	}
	b.cert, b.certPEM = cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return b, nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, der, err
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parse reads what the Secret holds; anything missing or unreadable is nil
// and gets issued anew.
func parse(data map[string][]byte) *bundle {
	b := &bundle{caPEM: data[CAKey], caKeyPEM: data[CAPrivateKey], certPEM: data[CertKey], keyPEM: data[KeyKey]}
	b.ca, b.caKey = pair(b.caPEM, b.caKeyPEM)
	if b.ca == nil || !b.ca.IsCA {
		b.ca, b.caKey = nil, nil
		return b
	}
	b.cert, _ = pair(b.certPEM, b.keyPEM)
	if b.cert != nil && b.cert.CheckSignatureFrom(b.ca) != nil {
		b.cert = nil
	}
	return b
}

// pair parses the first certificate of certPEM and the key of keyPEM, nil
// for both unless the key is the certificate's.
func pair(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil
	}
	return cert, signer
}

func (b *bundle) caFresh(now time.Time, renewBefore time.Duration) bool {
	return b.ca != nil && now.Add(renewBefore).Before(b.ca.NotAfter) && !now.Before(b.ca.NotBefore)
}

// certFresh says the serving certificate is valid beyond RenewBefore and
// names exactly the DNS names and IPs it must.
func (b *bundle) certFresh(now time.Time, o Options) bool {
	c := b.cert
	if c == nil || !now.Add(o.RenewBefore).Before(c.NotAfter) || now.Before(c.NotBefore) {
		return false
	}
	if !slices.Equal(c.DNSNames, o.DNSNames) || len(c.IPAddresses) != len(o.IPs) {
		return false
	}
	for i, ip := range o.IPs {
		if !c.IPAddresses[i].Equal(ip) {
			return false
		}
	}
	return true
}

// writeFiles writes tls.crt and tls.key when they differ from the Secret's,
// each through a rename so the webhook server never reads half a file.
func (r *Rotator) writeFiles(b *bundle) error {
	if err := os.MkdirAll(r.opts.CertDir, 0o700); err != nil {
		return fmt.Errorf("webhook certificate directory: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{KeyKey, b.keyPEM}, {CertKey, b.certPEM}} {
		path := filepath.Join(r.opts.CertDir, f.name)
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, f.data) {
			continue
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return fmt.Errorf("write webhook certificate: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write webhook certificate: %w", err)
		}
	}
	return nil
}

// injectCABundle sets caBundle on every webhook of both configurations.
func (r *Rotator) injectCABundle(ctx context.Context, caPEM []byte) error {
	if r.opts.WebhookConfiguration == "" {
		return nil
	}
	var errs []error
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		errs = append(errs, r.injectInto(ctx, kind, r.opts.WebhookConfiguration, base64.StdEncoding.EncodeToString(caPEM)))
	}
	return errors.Join(errs...)
}

func (r *Rotator) injectInto(ctx context.Context, kind, name, caBundle string) error {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(admissionregistrationv1.SchemeGroupVersion.WithKind(kind))
	for attempt := 0; ; attempt++ {
		if err := r.c.Get(ctx, types.NamespacedName{Name: name}, obj); err != nil {
			return fmt.Errorf("read %s %s to set its caBundle: %w", kind, name, err)
		}
		webhooks, _, _ := unstructured.NestedSlice(obj.Object, "webhooks")
		changed := false
		for _, w := range webhooks {
			w, ok := w.(map[string]any)
			if !ok {
				continue
			}
			if cur, _, _ := unstructured.NestedString(w, "clientConfig", "caBundle"); cur != caBundle {
				if err := unstructured.SetNestedField(w, caBundle, "clientConfig", "caBundle"); err != nil {
					return fmt.Errorf("%s %s: %w", kind, name, err)
				}
				changed = true
			}
		}
		if !changed {
			return nil
		}
		if err := unstructured.SetNestedSlice(obj.Object, webhooks, "webhooks"); err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, err)
		}
		err := r.c.Update(ctx, obj)
		if err == nil {
			r.log.Info("Set the webhook CA bundle", "kind", kind, "name", name)
			return nil
		}
		if !apierrors.IsConflict(err) || attempt == 5 {
			return fmt.Errorf("set the caBundle of %s %s: %w", kind, name, err)
		}
	}
}

package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubist-io/kubist/config"
	"github.com/kubist-io/kubist/internal/manager/certs"
	"github.com/kubist-io/kubist/internal/scheme"
)

// Binaries are the programs a control plane needs in its assets directory.
var Binaries = []string{"etcd", "kube-apiserver", "kubectl"}

// Options configure a control plane.
type Options struct {
	// AssetsDir holds etcd, kube-apiserver and kubectl. Empty means
	// $KUBEBUILDER_ASSETS, or else the newest bin/k8s/<version>/ found in the
	// working directory or one of its parents.
	AssetsDir string
	// WithoutIstioCRDs leaves Istio's CRDs out, as on a cluster without Istio.
	WithoutIstioCRDs bool
	// WithoutKubistCRDs leaves Kubist's CRDs out, as on a workload cluster.
	WithoutKubistCRDs bool
	// WithoutGatewayAPICRDs leaves the Gateway API's CRDs out, as on a
	// cluster without them.
	WithoutGatewayAPICRDs bool
	// Webhooks registers Kubist's webhook configurations with the API
	// server, pointed at a free local port (see WebhookServing), with no
	// caBundle: the manager serving them issues its certificate and fills
	// it in (see WebhookCerts).
	Webhooks bool
	// APIServerArgs are extra kube-apiserver flags (name to values).
	APIServerArgs map[string][]string
	// LogDir, when set, receives etcd's and kube-apiserver's output, in
	// etcd.log and kube-apiserver.log; otherwise it is discarded.
	LogDir string
	// DieWithParent makes the kernel kill etcd and kube-apiserver when
	// this process ends, however it ends (SIGKILL included): they start
	// through this process's own executable, which must call
	// ExecWrapped first thing in main.
	DieWithParent bool
}

// ControlPlane is a running etcd + kube-apiserver pair.
type ControlPlane struct {
	// Config is an admin client configuration.
	Config *rest.Config
	// Kubeconfig is the same admin access as a kubeconfig file's content.
	Kubeconfig []byte
	// AssetsDir is where the binaries were found.
	AssetsDir string

	env            *envtest.Environment
	certDir        string
	wrapperDir     string
	logs           []*os.File
	webhookPort    int
	webhookCertDir string
}

// Start starts etcd and kube-apiserver and installs the CRDs. Stop it with Stop.
func Start(opts Options) (*ControlPlane, error) {
	assets, err := FindAssets(opts.AssetsDir)
	if err != nil {
		return nil, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	if !opts.WithoutKubistCRDs {
		kubist, err := config.KubistCRDs()
		if err != nil {
			return nil, fmt.Errorf("read Kubist CRDs: %w", err)
		}
		crds = append(crds, kubist...)
	}
	if !opts.WithoutIstioCRDs {
		istio, err := config.IstioCRDs()
		if err != nil {
			return nil, fmt.Errorf("read Istio CRDs: %w", err)
		}
		crds = append(crds, istio...)
	}
	if !opts.WithoutGatewayAPICRDs {
		gateway, err := config.GatewayAPICRDs()
		if err != nil {
			return nil, fmt.Errorf("read Gateway API CRDs: %w", err)
		}
		crds = append(crds, gateway...)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		UseExistingCluster:       ptr.To(false),
		Scheme:                   scheme.New(),
		CRDInstallOptions:        envtest.CRDInstallOptions{CRDs: crds},
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	apiServer := env.ControlPlane.GetAPIServer()
	// Services that webhooks name resolve through their EndpointSlices, as
	// for the aggregator, rather than to a ClusterIP that nothing here
	// routes: the webhooks of Istio and of the chart reach their servers.
	apiServer.Configure().Set("enable-aggregator-routing", "true")
	for name, values := range opts.APIServerArgs {
		apiServer.Configure().Set(name, values...)
	}
	// A directory of its own keeps the API server's certificates across a
	// restart (StopAPIServer, StartAPIServer): clients keep trusting it.
	certDir, err := os.MkdirTemp("", "kubist-apiserver-")
	if err != nil {
		return nil, err
	}
	apiServer.CertDir = certDir
	cp := &ControlPlane{AssetsDir: assets, env: env, certDir: certDir}
	if err := cp.prepareProcesses(opts); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	if err := cp.start(opts); err != nil {
		// Start may fail after one process started: stop whatever runs.
		return nil, errors.Join(err, cp.Stop())
	}
	return cp, nil
}

func (cp *ControlPlane) start(opts Options) error {
	cfg, err := cp.env.Start()
	if err != nil {
		return fmt.Errorf("start control plane from %s: %w", cp.AssetsDir, err)
	}
	cp.Config = cfg
	admin, err := cp.env.AddUser(envtest.User{Name: "kubist-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	if cp.Kubeconfig, err = admin.KubeConfig(); err != nil {
		return fmt.Errorf("write admin kubeconfig: %w", err)
	}
	if opts.Webhooks {
		return cp.registerWebhooks()
	}
	return nil
}

// Stop stops kube-apiserver and etcd and removes their data.
func (cp *ControlPlane) Stop() error {
	err := cp.env.Stop()
	for _, dir := range []string{cp.webhookCertDir, cp.certDir, cp.wrapperDir} {
		if dir != "" {
			err = errors.Join(err, os.RemoveAll(dir))
		}
	}
	for _, f := range cp.logs {
		err = errors.Join(err, f.Close())
	}
	return err
}

// StopAPIServer stops kube-apiserver, leaving etcd running: clients see
// connections refused until StartAPIServer.
func (cp *ControlPlane) StopAPIServer() error {
	return cp.env.ControlPlane.GetAPIServer().Stop()
}

// StartAPIServer starts a stopped kube-apiserver again, on the same
// address, with the same certificates and users, on the same etcd.
func (cp *ControlPlane) StartAPIServer() error {
	return cp.env.ControlPlane.GetAPIServer().Start()
}

// Kubectl returns the path of the kubectl built beside kube-apiserver.
func (cp *ControlPlane) Kubectl() string {
	return filepath.Join(cp.AssetsDir, "kubectl")
}

// WriteKubeconfig writes the admin kubeconfig to path, creating its
// directory, readable by the owner only (it holds a client key).
func (cp *ControlPlane) WriteKubeconfig(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, cp.Kubeconfig, 0o600)
}

// Where the local webhook configurations and their certificate live.
const (
	// WebhookNamespace holds the certificate's Secret; it is also the
	// manager's default namespace.
	WebhookNamespace = "kubist-system"
	// WebhookConfiguration names both webhook configurations.
	WebhookConfiguration = "kubist-webhook"
	webhookCertSecret    = "kubist-webhook-server-cert"
	webhookHost          = "127.0.0.1"
)

// registerWebhooks creates the generated webhook configurations pointed at
// https://127.0.0.1:<free port>, and the namespace of their certificate.
func (cp *ControlPlane) registerWebhooks() error {
	port, err := FreePort()
	if err != nil {
		return fmt.Errorf("find a free port for the webhooks: %w", err)
	}
	cp.webhookPort = port
	if cp.webhookCertDir, err = os.MkdirTemp("", "kubist-webhook-certs-"); err != nil {
		return err
	}
	mutating, validating, err := config.WebhookConfigurations()
	if err != nil {
		return fmt.Errorf("read webhook configurations: %w", err)
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: WebhookNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", WebhookNamespace, err)
	}
	local := func(cc *admissionregistrationv1.WebhookClientConfig) {
		u := fmt.Sprintf("https://%s%s", net.JoinHostPort(webhookHost, strconv.Itoa(port)), ptr.Deref(cc.Service.Path, "/"))
		cc.Service, cc.URL = nil, &u
	}
	var objects []client.Object
	for _, m := range mutating {
		for i := range m.Webhooks {
			local(&m.Webhooks[i].ClientConfig)
		}
		objects = append(objects, m)
	}
	for _, v := range validating {
		for i := range v.Webhooks {
			local(&v.Webhooks[i].ClientConfig)
		}
		objects = append(objects, v)
	}
	for _, o := range objects {
		o.SetName(WebhookConfiguration)
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("register webhook configuration: %w", err)
		}
	}
	return nil
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(webhookHost, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WebhookServing is where the API server expects the webhooks: the host
// and port, and a directory for the serving certificate that is removed
// with the control plane.
func (cp *ControlPlane) WebhookServing() (host string, port int, certDir string) {
	return webhookHost, cp.webhookPort, cp.webhookCertDir
}

// WebhookCerts are the self-managed certificate options of a manager that
// serves the registered webhooks: a CA and a certificate for 127.0.0.1,
// kept in a Secret of kubist-system, the CA put into both configurations.
func (cp *ControlPlane) WebhookCerts() *certs.Options {
	return &certs.Options{
		Namespace:            WebhookNamespace,
		SecretName:           webhookCertSecret,
		IPs:                  []net.IP{net.ParseIP(webhookHost)},
		WebhookConfiguration: WebhookConfiguration,
	}
}

// FindAssets returns the directory holding the control-plane binaries:
// dir when given, else $KUBEBUILDER_ASSETS, else the newest bin/k8s/<version>/
// under the working directory or one of its parents. The error says how to
// build the binaries when they are missing.
func FindAssets(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if dir == "" {
		found, err := searchAssets()
		if err != nil {
			return "", err
		}
		dir = found
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, name := range Binaries {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%s is missing from %s: run `make envtest` to build the control plane", name, dir)
		}
	}
	return dir, nil
}

func searchAssets() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		candidates, _ := filepath.Glob(filepath.Join(d, "bin", "k8s", "v*"))
		if newest := newestComplete(candidates); newest != "" {
			return newest, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no bin/k8s/<version>/ with etcd, kube-apiserver and kubectl found here or above: run `make envtest`, or set KUBEBUILDER_ASSETS")
		}
	}
}

// newestComplete returns the directory of the highest version that holds
// every binary.
func newestComplete(dirs []string) string {
	type candidate struct {
		dir string
		v   *version.Version
	}
	var complete []candidate
	for _, d := range dirs {
		v, err := version.ParseSemantic(filepath.Base(d))
		if err != nil {
			continue
		}
		ok := true
		for _, name := range Binaries {
			if _, err := os.Stat(filepath.Join(d, name)); err != nil {
				ok = false
			}
		}
		if ok {
			complete = append(complete, candidate{d, v})
		}
	}
	if len(complete) == 0 {
		return ""
	}
	sort.Slice(complete, func(i, j int) bool { return complete[i].v.LessThan(complete[j].v) })
	return complete[len(complete)-1].dir
}

// ImpersonatingKubeconfig returns the admin kubeconfig acting as a
// ServiceAccount, with the groups the API server gives a pod's token: what
// a process standing in for a pod uses.
func ImpersonatingKubeconfig(admin []byte, namespace, serviceAccount string) ([]byte, error) {
	cfg, err := clientcmd.Load(admin)
	if err != nil {
		return nil, err
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = "system:serviceaccount:" + namespace + ":" + serviceAccount
		auth.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
	}
	return clientcmd.Write(*cfg)
}

// HostIP is an IPv4 address of this machine that is not loopback: the
// address an EndpointSlice may carry (the API refuses loopback endpoints)
// for a server the API server must reach through a Service.
func HostIP() (net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.To4() != nil && !ipnet.IP.IsLoopback() && !ipnet.IP.IsLinkLocalUnicast() {
			return ipnet.IP.To4(), nil
		}
	}
	return nil, errors.New("this machine has no non-loopback IPv4 address for a Service's endpoints")
}

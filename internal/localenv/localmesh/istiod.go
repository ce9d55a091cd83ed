package localmesh

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/kubist-io/kubist/internal/localenv/controlplane"
)

// Istio is an istiod build and Istio's charts of the same version, as
// `make istio` lays them out in bin/istio/<version>/.
type Istio struct {
	// Version istiod reports and the charts carry.
	Version string
	// Pilot is the pilot-discovery binary.
	Pilot string
	// Charts holds the charts base and istiod.
	Charts string
}

// FindIstio returns the Istio build in dir; empty means $KUBIST_ISTIO_DIR,
// else the newest bin/istio/<version>/ here or above. The error says how
// to build it.
func FindIstio(dir string) (*Istio, error) {
	if dir == "" {
		dir = os.Getenv("KUBIST_ISTIO_DIR")
	}
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		for d := wd; dir == ""; d = filepath.Dir(d) {
			found, _ := filepath.Glob(filepath.Join(d, "bin", "istio", "*", "pilot-discovery"))
			sort.Strings(found)
			if len(found) > 0 {
				dir = filepath.Dir(found[len(found)-1])
			}
			if filepath.Dir(d) == d && dir == "" {
				return nil, errors.New("no bin/istio/<version>/pilot-discovery here or above: run `make istio`, or set KUBIST_ISTIO_DIR")
			}
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	i := &Istio{Version: filepath.Base(dir), Pilot: filepath.Join(dir, "pilot-discovery"), Charts: filepath.Join(dir, "charts")}
	for _, p := range []string{i.Pilot, filepath.Join(i.Charts, "base", "Chart.yaml"), filepath.Join(i.Charts, "istiod", "Chart.yaml")} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make istio` to build istiod and lay out its charts", p)
		}
	}
	return i, nil
}

// ChartDirs are the directories of the charts base and istiod, in install order.
func (i *Istio) ChartDirs() []string {
	return []string{filepath.Join(i.Charts, "base"), filepath.Join(i.Charts, "istiod")}
}

// IstiodOptions say where istiod's Deployment is and how to reach the
// control plane it runs against.
type IstiodOptions struct {
	// Kubeconfig is an admin kubeconfig's content; istiod acts as the
	// Deployment's ServiceAccount through it.
	Kubeconfig []byte
	// Namespace and Name of the Deployment; default istio-system/istiod.
	Namespace, Name string
	// WorkDir holds the process's files (its kubeconfig, the certificates
	// it writes) and its log, istiod.log.
	WorkDir string
}

// Istiod is pilot-discovery running as the process of an istiod
// Deployment's pod: with that pod's arguments and environment, as its
// ServiceAccount, every server on loopback but the webhook's (which the API
// server reaches through the Service's EndpointSlice, so on this machine's
// address). It publishes that EndpointSlice and the Deployment's status,
// as the endpoints and Deployment controllers and a kubelet would.
type Istiod struct {
	// XDSAddress is the plaintext xDS server (the Service's grpc-xds
	// port), host:port.
	XDSAddress string
	// HTTPAddress serves /ready and istiod's debug endpoints.
	HTTPAddress string
	// LogPath is the process's output.
	LogPath string

	opts   IstiodOptions
	c      client.Client
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartIstiod waits for the Deployment to exist, runs pilot-discovery as
// its pod, waits until it is ready, and publishes its endpoints and the
// Deployment's status. Stop it with Stop.
func StartIstiod(ctx context.Context, istio *Istio, c client.Client, opts IstiodOptions) (*Istiod, error) {
	if opts.Namespace == "" {
		opts.Namespace = "istio-system"
	}
	if opts.Name == "" {
		opts.Name = "istiod"
	}
	var d appsv1.Deployment
	key := types.NamespacedName{Namespace: opts.Namespace, Name: opts.Name}
	if err := poll(ctx, time.Second, func() error { return c.Get(ctx, key, &d) }); err != nil {
		return nil, fmt.Errorf("deployment %s: %w", key, err)
	}
	hostIP, err := controlplane.HostIP()
	if err != nil {
		return nil, err
	}
	// istiod runs in its work directory: every path it gets is absolute.
	if opts.WorkDir, err = filepath.Abs(opts.WorkDir); err != nil {
		return nil, err
	}
	ports := map[string]int{}
	for _, name := range []string{"grpc", "http", "https", "secureGRPC", "monitoring", "ctrlz"} {
		if ports[name], err = controlplane.FreePort(); err != nil {
			return nil, err
		}
	}
	loopback := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	i := &Istiod{opts: opts, c: c, XDSAddress: loopback(ports["grpc"]), HTTPAddress: loopback(ports["http"]),
		LogPath: filepath.Join(opts.WorkDir, "istiod.log")}

	container, err := discoveryContainer(&d)
	if err != nil {
		return nil, err
	}
	sa := cmp.Or(d.Spec.Template.Spec.ServiceAccountName, "default")
	kubeconfig, err := controlplane.ImpersonatingKubeconfig(opts.Kubeconfig, opts.Namespace, sa)
	if err != nil {
		return nil, err
	}
	kubeconfigPath := filepath.Join(opts.WorkDir, "istiod-kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	// The pod's arguments, with this machine's addresses: several servers
	// share it, so none keeps its well-known port.
	args := OverrideFlags(container.Args, map[string]string{
		"--monitoringAddr": loopback(ports["monitoring"]),
		"--grpcAddr":       loopback(ports["grpc"]),
		"--httpAddr":       loopback(ports["http"]),
		"--secureGRPCAddr": loopback(ports["secureGRPC"]),
		"--httpsAddr":      net.JoinHostPort(hostIP.String(), strconv.Itoa(ports["https"])),
		"--ctrlz_address":  "127.0.0.1",
		"--ctrlz_port":     strconv.Itoa(ports["ctrlz"]),
		"--kubeconfig":     kubeconfigPath,
	})
	env, err := PodEnv(container.Env, map[string]string{
		"metadata.name":           opts.Name + "-local",
		"metadata.namespace":      opts.Namespace,
		"spec.serviceAccountName": sa,
	})
	if err != nil {
		return nil, err
	}
	// The pod mounts the kubeconfig of a remote cluster here when it has
	// one; this process has its own. No leader election among one replica,
	// and no sidecar injection: no pod here would receive a sidecar.
	env = append(env, "KUBECONFIG="+kubeconfigPath, "ENABLE_LEADER_ELECTION=false", "INJECT_ENABLED=false")

	logFile, err := os.OpenFile(i.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	i.cmd = exec.Command(istio.Pilot, args...)
	// istiod writes its certificates relative to its working directory.
	i.cmd.Dir, i.cmd.Env = opts.WorkDir, append(os.Environ(), env...)
	i.cmd.Stdout, i.cmd.Stderr = logFile, logFile
	dieWithParent(i.cmd)
	if err := i.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start istiod: %w", err)
	}
	i.exited = make(chan struct{})
	go func() { _ = i.cmd.Wait(); close(i.exited) }()

	readyCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	go func() {
		// An istiod that exits will not become ready.
		select {
		case <-i.exited:
			cancel()
		case <-readyCtx.Done():
		}
	}()
	if err := poll(readyCtx, 200*time.Millisecond, i.ready); err != nil {
		log, _ := os.ReadFile(i.LogPath)
		return nil, errors.Join(fmt.Errorf("istiod did not become ready: %w\n%s", err, tail(string(log), 4<<10)), i.Stop())
	}
	if err := i.publish(ctx, &d, hostIP, ports["https"]); err != nil {
		return nil, errors.Join(err, i.Stop())
	}
	return i, nil
}

// ready is istiod's readiness probe, /ready on its HTTP port.
func (i *Istiod) ready() error { return Probe("http://" + i.HTTPAddress + "/ready") }

// Probe is an HTTP readiness probe, as a kubelet makes it: nil on 200.
func Probe(url string) error {
	resp, err := http.Get(url) //nolint:gosec // a probe of a server the caller started on loopback
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// publish does what the endpoints controller and a kubelet would for the
// ready pod: the Service's EndpointSlice names this process, and the
// Deployment is Available.
func (i *Istiod) publish(ctx context.Context, d *appsv1.Deployment, hostIP net.IP, webhookPort int) error {
	var svc corev1.Service
	if err := i.c.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: d.Name}, &svc); err != nil {
		return fmt.Errorf("service of %s/%s: %w", d.Namespace, d.Name, err)
	}
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: d.Name + "-local"}}
	if _, err := controllerutil.CreateOrUpdate(ctx, i.c, slice, func() error {
		slice.Labels = map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "kubist-localmesh"}
		slice.AddressType = discoveryv1.AddressTypeIPv4
		slice.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{hostIP.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}}
		// Only the webhook's server listens on that address; the others
		// are for clients on this machine, at their loopback addresses.
		slice.Ports = nil
		for _, p := range svc.Spec.Ports {
			if p.Name == "https-webhook" {
				slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(int32(webhookPort)), Protocol: ptr.To(corev1.ProtocolTCP)})
			}
		}
		if len(slice.Ports) == 0 {
			return fmt.Errorf("service %s/%s has no port https-webhook", svc.Namespace, svc.Name)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("endpoints of %s/%s: %w", d.Namespace, d.Name, err)
	}
	return MarkAvailable(ctx, i.c, d)
}

// MarkAvailable writes the status a Deployment's controllers and kubelets
// report once every replica is ready.
func MarkAvailable(ctx context.Context, c client.Client, d *appsv1.Deployment) error {
	return poll(ctx, 200*time.Millisecond, func() error {
		var cur appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), &cur); err != nil {
			return err
		}
		replicas := ptr.Deref(cur.Spec.Replicas, 1)
		now := metav1.Now()
		cur.Status = appsv1.DeploymentStatus{
			ObservedGeneration: cur.Generation, Replicas: replicas, UpdatedReplicas: replicas,
			ReadyReplicas: replicas, AvailableReplicas: replicas,
			Conditions: []appsv1.DeploymentCondition{{
				Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
				Message: "Deployment has minimum availability.", LastUpdateTime: now, LastTransitionTime: now,
			}},
		}
		return ignore(c.Status().Update(ctx, &cur))
	})
}

// Stop stops istiod (SIGTERM, SIGKILL after 10 s) and waits for it.
func (i *Istiod) Stop() error {
	if i.cmd == nil || i.cmd.Process == nil {
		return nil
	}
	_ = i.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-i.exited:
	case <-time.After(10 * time.Second):
		_ = i.cmd.Process.Kill()
		<-i.exited
	}
	return nil
}

// Log is what istiod wrote so far.
func (i *Istiod) Log() string {
	out, _ := os.ReadFile(i.LogPath)
	return string(out)
}

// discoveryContainer is istiod's container in its Deployment.
func discoveryContainer(d *appsv1.Deployment) (*corev1.Container, error) {
	for i, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "discovery" {
			return &d.Spec.Template.Spec.Containers[i], nil
		}
	}
	return nil, fmt.Errorf("deployment %s/%s has no container named discovery", d.Namespace, d.Name)
}

// OverrideFlags replaces the values of the given flags in args (written
// --flag=value or --flag value) and appends those args lack.
func OverrideFlags(args []string, values map[string]string) []string {
	out := make([]string, 0, len(args)+len(values))
	seen := map[string]bool{}
	for j := 0; j < len(args); j++ {
		name, _, hasValue := strings.Cut(args[j], "=")
		v, ok := values[name]
		if !ok {
			out = append(out, args[j])
			continue
		}
		seen[name] = true
		out = append(out, name+"="+v)
		if !hasValue && j+1 < len(args) && !strings.HasPrefix(args[j+1], "-") {
			j++ // the value was the next argument
		}
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !seen[name] {
			out = append(out, name+"="+values[name])
		}
	}
	return out
}

// PodEnv is a container's environment as its pod would see it: plain
// values, and the downward API's references from fields, by field path
// (metadata.namespace) or resource (limits.memory, as the kubelet gives it:
// in units of the reference's divisor, bytes or cores by default). A
// resource field fields lacks (GOMAXPROCS from the CPU limit) is left to
// the process's defaults; any other source is an error.
func PodEnv(vars []corev1.EnvVar, fields map[string]string) ([]string, error) {
	var out []string
	for _, e := range vars {
		switch {
		case e.ValueFrom == nil:
			out = append(out, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil:
			v, ok := fields[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				return nil, fmt.Errorf("env %s comes from field %s, which no pod here has", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			out = append(out, e.Name+"="+v)
		case e.ValueFrom.ResourceFieldRef != nil:
			ref := e.ValueFrom.ResourceFieldRef
			v, ok := fields[ref.Resource]
			if !ok {
				continue
			}
			if !ref.Divisor.IsZero() {
				q, err := resource.ParseQuantity(v)
				if err != nil {
					return nil, fmt.Errorf("env %s: resource %s is %q: %w", e.Name, ref.Resource, v, err)
				}
				v = strconv.FormatInt((q.Value()+ref.Divisor.Value()-1)/ref.Divisor.Value(), 10)
			}
			out = append(out, e.Name+"="+v)
		default:
			return nil, fmt.Errorf("env %s comes from a source no pod here has", e.Name)
		}
	}
	return out, nil
}

// ExpandArgs expands $(NAME) in a container's arguments from its
// environment (NAME=value entries) as the kubelet does: an undefined name
// stays as written, and $$ is a literal $.
func ExpandArgs(args, env []string) []string {
	values := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			values[k] = v
		}
	}
	out := make([]string, len(args))
	for i, a := range args {
		var b strings.Builder
		for j := 0; j < len(a); j++ {
			switch {
			case strings.HasPrefix(a[j:], "$$"):
				b.WriteByte('$')
				j++
			case strings.HasPrefix(a[j:], "$("):
				end := strings.IndexByte(a[j:], ')')
				if end < 0 {
					b.WriteString(a[j:])
					j = len(a)
					continue
				}
				name := a[j+2 : j+end]
				if v, ok := values[name]; ok {
					b.WriteString(v)
				} else {
					b.WriteString(a[j : j+end+1])
				}
				j += end
			default:
				b.WriteByte(a[j])
			}
		}
		out[i] = b.String()
	}
	return out
}

// poll calls f every interval until it returns nil or ctx ends.
func poll(ctx context.Context, interval time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

func ignore(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// WaitForValidation waits until Istio's validating webhooks (the
// configurations the charts label app=istiod) carry istiod's CA and fail
// closed: from then on the API server admits no Istio object that istiod
// has not validated.
func (i *Istiod) WaitForValidation(ctx context.Context) error {
	return poll(ctx, 200*time.Millisecond, func() error {
		var list admissionregistrationv1.ValidatingWebhookConfigurationList
		if err := i.c.List(ctx, &list, client.MatchingLabels{"app": "istiod"}); err != nil {
			return err
		}
		if len(list.Items) == 0 {
			return errors.New("no ValidatingWebhookConfiguration labelled app=istiod")
		}
		for _, v := range list.Items {
			for _, w := range v.Webhooks {
				if len(w.ClientConfig.CABundle) == 0 || ptr.Deref(w.FailurePolicy, "") != admissionregistrationv1.Fail {
					return fmt.Errorf("webhook %s of %s has no caBundle yet or does not fail closed", w.Name, v.Name)
				}
			}
		}
		return nil
	})
}

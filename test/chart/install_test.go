package chart

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/config"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/test/testenv"
)

// TestInstall installs the chart with the Helm SDK into a real control
// plane, upgrades it to self-managed certificates, and runs two manager
// processes exactly as the chart's Deployment runs them, each as the
// chart's ServiceAccount. There is no kubelet and no endpoints controller:
// the test starts the processes and publishes the EndpointSlice that sends
// the API server's webhook calls to them.
func TestInstall(t *testing.T) {
	hostIP := nonLoopbackIP(t)
	env, err := testenv.Start(controlplane.Options{
		WithoutKubistCRDs: true, // the chart installs them
	}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := t.Context()
	c := env.Client
	installCertManagerCRDs(t, env)

	binary, err := testenv.BuildKubist(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	// Install, as `helm install --create-namespace` with default values.
	rel := helmRun(t, env, nil, false)
	objects, err := decodeManifest(rel.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("every rendered object is in the API server", func(t *testing.T) {
		for _, o := range objects.objects {
			checkExists(t, c, o.(client.Object), true)
		}
		t.Logf("installed: %s", strings.Join(kindsOf(objects), ", "))
		if len(objects.byKind["Certificate"]) != 2 || len(objects.byKind["Issuer"]) != 2 {
			t.Errorf("installed %d Certificates and %d Issuers, want 2 and 2", len(objects.byKind["Certificate"]), len(objects.byKind["Issuer"]))
		}
	})

	// Upgrade to the manager's own certificates: the cert-manager objects
	// go, the Secret and the roles to keep it come.
	rel = helmRun(t, env, map[string]any{"certManager": map[string]any{"enabled": false}}, true)
	upgraded, err := decodeManifest(rel.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the upgrade to self-managed certificates replaces the cert-manager objects", func(t *testing.T) {
		for _, o := range upgraded.objects {
			checkExists(t, c, o.(client.Object), true)
		}
		for _, kind := range []string{"Certificate", "Issuer"} {
			for _, o := range objects.byKind[kind] {
				checkExists(t, c, o.(client.Object), false)
			}
		}
		var m admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx, types.NamespacedName{Name: "kubist-webhook"}, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m.Annotations["cert-manager.io/inject-ca-from"]; ok {
			t.Error("the upgrade left the inject-ca-from annotation")
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	deployment := one[*appsv1.Deployment](t, upgraded, "Deployment", "")
	kubeconfig := impersonatingKubeconfig(t, env, deployment.Spec.Template.Spec.ServiceAccountName)
	managers := []*managerProcess{
		startManager(t, binary, kubeconfig, deployment, "a"),
		startManager(t, binary, kubeconfig, deployment, "b"),
	}
	scrapeToken := metricsToken(t, env)

	t.Run("Go's soft memory limit follows the container's", func(t *testing.T) {
		limit := deployment.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]
		want := float64(limit.Value() - 128<<20) // the chart's 384Mi: 256 MiB
		for _, m := range managers {
			if got := m.metric(t, scrapeToken, "go_gc_gomemlimit_bytes"); got != want {
				t.Errorf("manager %s: soft memory limit %.0f MiB, want %.0f MiB (128Mi below the container's %s)", m.name, got/(1<<20), want/(1<<20), limit.String())
			}
			if got := m.metric(t, scrapeToken, "go_gc_gogc_percent"); got != 50 {
				t.Errorf("manager %s: GOGC %.0f, want the chart's 50", m.name, got)
			}
		}
	})

	route := func(m *managerProcess) { routeWebhooks(t, c, hostIP, m) }

	t.Run("the managers fill the Secret and both caBundles", func(t *testing.T) {
		testenv.Eventually(t, 2*time.Minute, "the caBundles", func() error {
			for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
				u := &unstructured.Unstructured{}
				u.SetAPIVersion("admissionregistration.k8s.io/v1")
				u.SetKind(kind)
				if err := c.Get(ctx, types.NamespacedName{Name: "kubist-webhook"}, u); err != nil {
					return err
				}
				webhooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
				for _, w := range webhooks {
					if b, _, _ := unstructured.NestedString(w.(map[string]any), "clientConfig", "caBundle"); b == "" {
						return fmt.Errorf("%s has a webhook without caBundle", kind)
					}
				}
			}
			return nil
		})
		var secret corev1.Secret
		if err := c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: "kubist-webhook-self-managed"}, &secret); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
			if len(secret.Data[k]) == 0 {
				t.Errorf("the Secret holds no %s", k)
			}
		}
	})

	for _, m := range managers {
		t.Run("kubectl through the webhooks of manager "+m.name, func(t *testing.T) {
			route(m)
			before := m.webhookRequests(t, scrapeToken)
			// The API server follows the EndpointSlice once its informer
			// sees it: wait until a refusal comes from this manager.
			testenv.Eventually(t, time.Minute, "manager "+m.name+" to answer", func() error {
				res, err := env.Kubectl.Run([]byte(invalidProject), "apply", "--dry-run=server", "-f", "-")
				if err != nil {
					return err
				}
				if res.ExitCode == 0 {
					return errors.New("an invalid Project was admitted")
				}
				if !strings.Contains(res.Stderr, "spec.executor.name") {
					return fmt.Errorf("refused without naming the field: %s", res.Stderr)
				}
				if m.webhookRequests(t, scrapeToken) <= before {
					return errors.New("the refusal came from the other manager")
				}
				return nil
			})
			// A valid Project is admitted, and defaulted by the mutating
			// webhook of this manager.
			before = m.webhookRequests(t, scrapeToken)
			project := "admitted-by-" + m.name
			res, err := env.Kubectl.Run([]byte("apiVersion: kubist.io/v1alpha1\nkind: Project\nmetadata: {name: "+project+"}\nspec: {description: checked}\n"), "apply", "-f", "-")
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("kubectl apply of a valid Project: %v\n%s%s", err, res.Stdout, res.Stderr)
			}
			var p v1alpha1.Project
			if err := c.Get(ctx, types.NamespacedName{Name: project}, &p); err != nil {
				t.Fatal(err)
			}
			if p.Spec.Executor.Name != "ProjectExecutor" {
				t.Errorf("the Project's executor is %q, not defaulted to ProjectExecutor", p.Spec.Executor.Name)
			}
			if after := m.webhookRequests(t, scrapeToken); after < before+2 {
				t.Errorf("manager %s answered %v reviews for a create (mutating + validating), want 2", m.name, after-before)
			}
		})
	}

	t.Run("the checks NOTES.txt prints work", func(t *testing.T) {
		commands := notesCommands(rel.Info.Notes)
		if len(commands) < 4 {
			t.Fatalf("NOTES.txt holds %d commands:\n%s", len(commands), rel.Info.Notes)
		}
		for _, command := range commands {
			cmd := exec.Command("bash", "-o", "pipefail", "-c", command)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubectl.Kubeconfig, "PATH="+filepath.Dir(env.Kubectl.Path)+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			refusal := strings.Contains(command, "--dry-run=server")
			switch {
			case refusal && (err == nil || !strings.Contains(string(out), "spec.executor.name")):
				t.Errorf("%s\nwas not refused naming the field: %v\n%s", command, err, out)
			case !refusal && err != nil:
				t.Errorf("%s\n%v\n%s", command, err, out)
			case strings.Contains(command, "caBundle") && strings.Count(string(out), ": LS0t") != 2:
				t.Errorf("%s\nshows no caBundle for both configurations:\n%s", command, out)
			}
		}
	})

	t.Run("kubectl applies the samples", func(t *testing.T) {
		res, err := env.Kubectl.Run(nil, "apply", "-f", filepath.Join(repoRoot(t), "config", "samples"))
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("kubectl apply -f config/samples: %v\n%s%s", err, res.Stdout, res.Stderr)
		}
	})

	t.Run("the sample tree reconciles", func(t *testing.T) {
		samples, err := config.Samples()
		if err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 2*time.Minute, "every sample reconciled", func() error {
			for _, s := range samples {
				if s.GroupVersionKind().Group != v1alpha1.GroupVersion.Group {
					continue
				}
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(s.GroupVersionKind())
				if err := c.Get(ctx, client.ObjectKeyFromObject(s.Unstructured), u); err != nil {
					return err
				}
				var status struct {
					Conditions []metav1.Condition `json:"conditions"`
				}
				raw, _, _ := unstructured.NestedMap(u.Object, "status")
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &status); err != nil {
					return err
				}
				ready := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
				if ready == nil || ready.ObservedGeneration != u.GetGeneration() {
					return fmt.Errorf("%s %s is not reconciled at generation %d", s.GetKind(), s.GetName(), u.GetGeneration())
				}
			}
			for _, kind := range []string{"VirtualService", "DestinationRule"} {
				u := &unstructured.Unstructured{}
				u.SetAPIVersion("networking.istio.io/v1")
				u.SetKind(kind)
				if err := c.Get(ctx, types.NamespacedName{Namespace: "bookinfo", Name: "reviews"}, u); err != nil {
					return fmt.Errorf("%s bookinfo/reviews: %w", kind, err)
				}
			}
			return nil
		})
	})

	t.Run("exactly one manager reconciles", func(t *testing.T) {
		var lease coordinationv1.Lease
		if err := c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: "kubist-manager.kubist.io"}, &lease); err != nil {
			t.Fatal(err)
		}
		leaders := 0
		for _, m := range managers {
			runs := m.metric(t, scrapeToken, "kubist_executor_runs_total")
			leader := m.metric(t, scrapeToken, "leader_election_master_status") == 1
			t.Logf("manager %s: leader %v, %v executor runs", m.name, leader, runs)
			if leader {
				leaders++
				if runs == 0 {
					t.Errorf("manager %s leads but ran no executor", m.name)
				}
			} else if runs != 0 {
				t.Errorf("manager %s does not lead but ran %v executors", m.name, runs)
			}
		}
		if leaders != 1 {
			t.Errorf("%d managers lead, want 1 (Lease held by %s)", leaders, ptr.Deref(lease.Spec.HolderIdentity, ""))
		}
	})

	t.Run("the ServiceAccount reads no Secret outside the release namespace", func(t *testing.T) {
		as := testenv.Kubectl{Path: env.Kubectl.Path, Kubeconfig: kubeconfig}
		for _, args := range [][]string{
			{"get", "secrets", "-n", "default"},
			{"get", "secrets", "-A"},
			{"get", "secret", "kubist-webhook-self-managed", "-n", releaseNamespace, "-o", "name"},
		} {
			res, err := as.Run(nil, args...)
			if err != nil {
				t.Fatal(err)
			}
			inRelease := args[len(args)-1] == "name"
			if inRelease && res.ExitCode != 0 {
				t.Errorf("kubectl %s as the ServiceAccount: %s", strings.Join(args, " "), res.Stderr)
			}
			if !inRelease && (res.ExitCode == 0 || !strings.Contains(res.Stderr, "forbidden")) {
				t.Errorf("kubectl %s as the ServiceAccount was not forbidden: %s%s", strings.Join(args, " "), res.Stdout, res.Stderr)
			}
		}
	})

	t.Run("no Forbidden in the managers' logs", func(t *testing.T) {
		for _, m := range managers {
			if forbidden := regexp.MustCompile(`(?i).*forbidden.*`).FindAllString(m.Log(), 5); len(forbidden) > 0 {
				t.Errorf("manager %s was refused by the API server:\n%s", m.name, strings.Join(forbidden, "\n"))
			}
		}
	})

	t.Run("helm uninstall keeps the CRDs and the resources; a new install adopts them", func(t *testing.T) {
		cfg := helmConfig(t, env)
		uninstall := action.NewUninstall(cfg)
		uninstall.WaitStrategy = kube.HookOnlyStrategy
		if _, err := uninstall.Run(releaseName); err != nil {
			t.Fatalf("helm uninstall: %v", err)
		}
		for _, o := range upgraded.objects {
			_, isCRD := o.(*apiextensionsv1.CustomResourceDefinition)
			checkExists(t, c, o.(client.Object), isCRD)
		}
		var p v1alpha1.Project
		if err := c.Get(ctx, types.NamespacedName{Name: "demo"}, &p); err != nil {
			t.Errorf("the sample Project after uninstall: %v", err)
		}
		reinstalled, err := decodeManifest(helmRun(t, env, nil, false).Manifest)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range reinstalled.objects {
			checkExists(t, c, o.(client.Object), true)
		}
	})
}

// notesCommands are the shell commands NOTES.txt shows: the indented
// lines that start with kubectl or echo, joined with their continuations.
func notesCommands(notes string) []string {
	var commands []string
	var cur strings.Builder
	for line := range strings.Lines(notes) {
		line = strings.TrimSpace(line)
		if cur.Len() == 0 && !strings.HasPrefix(line, "kubectl ") && !strings.HasPrefix(line, "echo ") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont)
			continue
		}
		cur.WriteString(line)
		commands = append(commands, cur.String())
		cur.Reset()
	}
	return commands
}

// invalidProject names an executor no registry has.
const invalidProject = `apiVersion: kubist.io/v1alpha1
kind: Project
metadata:
  name: refused
spec:
  executor:
    name: NoSuchExecutor
`

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// nonLoopbackIP is an address of this machine the API server can reach and
// an EndpointSlice may carry (the API refuses loopback endpoints).
func nonLoopbackIP(t *testing.T) net.IP {
	t.Helper()
	ip, err := controlplane.HostIP()
	if err == nil {
		return ip
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skip(err)
	return nil
}

// installCertManagerCRDs installs the CRDs of the cert-manager module
// go.mod pins, from its deploy/crds.
func installCertManagerCRDs(t *testing.T, env *testenv.Env) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("locate the cert-manager module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
	crds, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{dir}, ErrorIfPathMissing: true})
	if err != nil {
		t.Fatalf("install cert-manager CRDs from %s: %v", dir, err)
	}
	if len(crds) < 6 {
		t.Fatalf("%d cert-manager CRDs installed from %s", len(crds), dir)
	}
}

// helmRun installs (or upgrades) the chart with the Helm SDK, as
// `helm install kubist charts/kubist -n kubist-system --create-namespace`.
func helmRun(t *testing.T, env *testenv.Env, values map[string]any, upgrade bool) *releasev1.Release {
	t.Helper()
	cfg := helmConfig(t, env)
	var rel any
	var err error
	if upgrade {
		u := action.NewUpgrade(cfg)
		u.Namespace = releaseNamespace
		u.WaitStrategy = kube.HookOnlyStrategy
		rel, err = u.RunWithContext(t.Context(), releaseName, loadChart(t), values)
	} else {
		i := action.NewInstall(cfg)
		i.ReleaseName, i.Namespace, i.CreateNamespace = releaseName, releaseNamespace, true
		i.WaitStrategy = kube.HookOnlyStrategy
		rel, err = i.RunWithContext(t.Context(), loadChart(t), values)
	}
	if err != nil {
		t.Fatalf("helm (upgrade %v): %v", upgrade, err)
	}
	r, ok := rel.(*releasev1.Release)
	if !ok {
		t.Fatalf("release of type %T", rel)
	}
	return r
}

// helmConfig is the Helm SDK's configuration for the release namespace,
// storing releases in Secrets as the helm command does.
func helmConfig(t *testing.T, env *testenv.Env) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = ptr.To(env.Kubectl.Kubeconfig)
	flags.Namespace = ptr.To(releaseNamespace)
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, releaseNamespace, "secret"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func checkExists(t *testing.T, c client.Client, o client.Object, want bool) {
	t.Helper()
	u := &unstructured.Unstructured{}
	gvk, err := c.GroupVersionKindFor(o)
	if err != nil {
		gvk = o.GetObjectKind().GroupVersionKind()
	}
	u.SetGroupVersionKind(gvk)
	namespace := o.GetNamespace()
	err = c.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: o.GetName()}, u)
	switch {
	case want && err != nil:
		t.Errorf("%s %s/%s: %v", gvk.Kind, namespace, o.GetName(), err)
	case !want && err == nil:
		t.Errorf("%s %s/%s is still there", gvk.Kind, namespace, o.GetName())
	case !want && !apierrors.IsNotFound(err):
		t.Errorf("%s %s/%s: %v", gvk.Kind, namespace, o.GetName(), err)
	}
}

// impersonatingKubeconfig is the admin kubeconfig acting as the chart's
// ServiceAccount, with the groups the API server gives a pod's token.
func impersonatingKubeconfig(t *testing.T, env *testenv.Env, sa string) string {
	t.Helper()
	kubeconfig, err := controlplane.ImpersonatingKubeconfig(env.Kubeconfig, releaseNamespace, sa)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig-"+sa)
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// managerProcess is `kubist manager` run with the Deployment's arguments.
type managerProcess struct {
	*testenv.Process
	name                     string
	webhookPort, metricsPort int
}

// startManager runs the binary with the chart's container arguments and
// environment; only the ports and the certificate directory differ, since
// both processes share this machine.
func startManager(t *testing.T, binary, kubeconfig string, d *appsv1.Deployment, name string) *managerProcess {
	t.Helper()
	container := d.Spec.Template.Spec.Containers[0]
	m := &managerProcess{name: name}
	var err error
	if m.webhookPort, err = controlplane.FreePort(); err != nil {
		t.Fatal(err)
	}
	if m.metricsPort, err = controlplane.FreePort(); err != nil {
		t.Fatal(err)
	}
	probePort, err := controlplane.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	override := map[string]string{
		"--webhook-port":              strconv.Itoa(m.webhookPort),
		"--webhook-cert-dir":          filepath.Join(t.TempDir(), "serving-certs"),
		"--metrics-bind-address":      fmt.Sprintf("127.0.0.1:%d", m.metricsPort),
		"--health-probe-bind-address": fmt.Sprintf("127.0.0.1:%d", probePort),
	}
	override["--kubeconfig"] = kubeconfig
	// As the kubelet starts the container: its downward-API values (the
	// namespace, the memory limit in bytes), and $(NAME) in its arguments
	// expanded from its environment.
	fields := map[string]string{"metadata.namespace": releaseNamespace}
	if limit, ok := container.Resources.Limits[corev1.ResourceMemory]; ok {
		fields["limits.memory"] = strconv.FormatInt(limit.Value(), 10)
	}
	env, err := localmesh.PodEnv(container.Env, fields)
	if err != nil {
		t.Fatal(err)
	}
	m.Process = testenv.NewProcess(t, "manager "+name, binary, localmesh.ExpandArgs(localmesh.OverrideFlags(container.Args, override), env)...)
	m.Env = env
	m.Start()
	t.Logf("manager %s: %s %v", name, binary, container.Args)
	probe := fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)
	testenv.Eventually(t, 2*time.Minute, "manager "+name+" ready", func() error { return localmesh.Probe(probe) })
	// Ready says nothing of the metrics server, a runnable of its own that
	// may start after the probes answer (as a kubelet's scrape would find).
	testenv.Eventually(t, time.Minute, "manager "+name+" serving metrics", func() error {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.metricsPort), time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	})
	return m
}

// metric sums a counter or gauge family served at the manager's secure
// metrics endpoint, read with a token the API server authorizes.
func (m *managerProcess) metric(t *testing.T, token, name string) float64 {
	t.Helper()
	sum, err := testenv.MetricSum(fmt.Sprintf("https://127.0.0.1:%d/metrics", m.metricsPort), token, name)
	if err != nil {
		t.Fatalf("manager %s: %v", m.name, err)
	}
	return sum
}

func (m *managerProcess) webhookRequests(t *testing.T, token string) float64 {
	return m.metric(t, token, "controller_runtime_webhook_requests_total")
}

// metricsToken is a token of a ServiceAccount bound to the chart's
// metrics-reader ClusterRole, as Prometheus would hold.
func metricsToken(t *testing.T, env *testenv.Env) string {
	t.Helper()
	ctx := t.Context()
	c := env.Client
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: "prometheus"}}
	if err := c.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-kubist-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kubist-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: releaseNamespace, Name: "prometheus"}},
	}
	if err := c.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(releaseNamespace).CreateToken(ctx, "prometheus",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// routeWebhooks publishes the webhook Service's EndpointSlice with one
// endpoint, the given manager, as the endpoints controller would for a
// ready pod.
func routeWebhooks(t *testing.T, c client.Client, hostIP net.IP, m *managerProcess) {
	t.Helper()
	ctx := t.Context()
	var svc corev1.Service
	if err := c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: "kubist-webhook"}, &svc); err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: "kubist-webhook-test"}}
	_, err := controllerutil.CreateOrUpdate(ctx, c, slice, func() error {
		slice.Labels = map[string]string{discoveryv1.LabelServiceName: svc.Name}
		slice.AddressType = discoveryv1.AddressTypeIPv4
		slice.Endpoints = []discoveryv1.Endpoint{{
			Addresses:  []string{hostIP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}}
		slice.Ports = []discoveryv1.EndpointPort{{
			Name: ptr.To(svc.Spec.Ports[0].Name), Port: ptr.To(int32(m.webhookPort)), Protocol: ptr.To(corev1.ProtocolTCP),
		}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package chart

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/kubist-io/kubist/config"
	"github.com/kubist-io/kubist/internal/manifest"
)

// variants are the default values and each option flipped.
var variants = []struct {
	name   string
	values string
}{
	{"default", ``},
	{"without cert-manager", `certManager: {enabled: false}`},
	{"CRDs not installed", `crds: {install: false}`},
	{"CRDs deleted on uninstall", `crds: {keep: false}`},
	{"metrics in the clear", `metrics: {secure: false}`},
	{"ServiceMonitor", `metrics: {serviceMonitor: {enabled: true, labels: {release: prometheus}}}`},
	{"ServiceMonitor in the clear", `metrics: {secure: false, serviceMonitor: {enabled: true}}`},
	{"no PodDisruptionBudget", `podDisruptionBudget: {enabled: false}`},
	{"Istio installed on the management cluster", `rbac: {istioInstallOnManagementCluster: true}`},
	{"one replica without leader election", `{replicaCount: 1, manager: {leaderElect: false}}`},
	{"webhook failure ignored", `webhook: {failurePolicy: Ignore, timeoutSeconds: 10}`},
	{"Prometheus and tuning", `manager: {prometheusURL: "http://prometheus.istio-system:9090", workers: 8, resyncPeriod: 10m, logLevel: debug, goMemLimit: 300MiB, goGC: 100, extraArgs: ["--kube-api-qps=20"]}`},
	{"a larger memory limit, Go's default GC", `{resources: {limits: {memory: 768Mi}}, manager: {goGC: ""}}`},
	{"image pinned by digest", `image: {digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`},
	{"names overridden", `{fullnameOverride: kubist-prod, serviceAccount: {name: kubist-sa}}`},
	{"Grafana dashboard", `grafana: {dashboard: {enabled: true, annotations: {grafana_folder: Kubist}, namespace: monitoring}}`},
	{"affinity and placement", `{affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [system]}]}]}}}, nodeSelector: {kubernetes.io/os: linux}, tolerations: [{key: dedicated, operator: Exists}], priorityClassName: system-cluster-critical}`},
}

func values(t testing.TB, s string) map[string]any {
	t.Helper()
	v := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("values %q: %v", s, err)
	}
	return v
}

func lookup(v map[string]any, path ...string) any {
	var cur any = v
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// flag reads a boolean value, or its default.
func flag(v map[string]any, def bool, path ...string) bool {
	if b, ok := lookup(v, path...).(bool); ok {
		return b
	}
	return def
}

func TestLint(t *testing.T) {
	for _, variant := range variants {
		t.Run(variant.name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = releaseNamespace
			lint.KubeVersion = kubeVersion(t)
			result := lint.Run([]string{chartDir(t)}, values(t, variant.values))
			for _, err := range result.Errors {
				t.Errorf("lint: %v", err)
			}
			// Clean: not even an INFO.
			for _, m := range result.Messages {
				t.Errorf("lint: %s", m)
			}
			if result.TotalChartsLinted != 1 {
				t.Errorf("%d charts linted, want 1", result.TotalChartsLinted)
			}
		})
	}
}

func TestRender(t *testing.T) {
	generatedCRDs, err := config.KubistCRDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, variant := range variants {
		t.Run(variant.name, func(t *testing.T) {
			v := values(t, variant.values)
			r := renderObjects(t, v)
			t.Logf("rendered: %s", strings.Join(kindsOf(r), ", "))
			certManager := flag(v, true, "certManager", "enabled")

			deployment := one[*appsv1.Deployment](t, r, "Deployment", "")
			checkPod(t, deployment)
			checkMemory(t, deployment, v)
			checkRBAC(t, r, deployment)
			checkWebhooks(t, r, deployment, certManager)
			if certManager {
				checkCertManager(t, r, deployment)
			} else {
				checkSelfManagedCert(t, r, deployment)
			}
			checkMetrics(t, r, deployment, v)
			checkGrafana(t, r, v)

			crds := r.byKind["CustomResourceDefinition"]
			if !flag(v, true, "crds", "install") {
				if len(crds) != 0 {
					t.Errorf("crds.install=false rendered %d CRDs", len(crds))
				}
			} else {
				checkCRDs(t, crds, generatedCRDs, flag(v, true, "crds", "keep"))
			}
			// One replica gets no budget: it could never be evicted.
			wantPDB := flag(v, true, "podDisruptionBudget", "enabled") && *deployment.Spec.Replicas > 1
			if pdbs := len(r.byKind["PodDisruptionBudget"]); pdbs != map[bool]int{true: 1, false: 0}[wantPDB] {
				t.Errorf("%d PodDisruptionBudgets rendered for %d replicas", pdbs, *deployment.Spec.Replicas)
			}
			admin := 0
			for _, o := range r.byKind["ClusterRoleBinding"] {
				if o.(*rbacv1.ClusterRoleBinding).RoleRef.Name == "cluster-admin" {
					admin++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[flag(v, false, "rbac", "istioInstallOnManagementCluster")]; admin != want {
				t.Errorf("%d cluster-admin bindings rendered, want %d", admin, want)
			}
			webhook := one[*admissionregistrationv1.ValidatingWebhookConfiguration](t, r, "ValidatingWebhookConfiguration", "").Name
			if !strings.Contains(r.notes, releaseNamespace) || !strings.Contains(r.notes, webhook) {
				t.Errorf("NOTES.txt does not tell how to check the webhooks of %s in %s:\n%s", webhook, releaseNamespace, r.notes)
			}
		})
	}
}

// checkPod holds the manager's pod to the restricted Pod Security Standard,
// as the API server's pod security admission evaluates it, and to what a
// chart of this kind owes: read-only root, probes, requests and limits.
func checkPod(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	evaluator, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	results := evaluator.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec)
	if agg := psapolicy.AggregateCheckResults(results); !agg.Allowed {
		t.Errorf("the pod breaks the restricted Pod Security Standard: %s: %s", agg.ForbiddenReason(), agg.ForbiddenDetail())
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("the root filesystem is writable")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v, want GET /healthz", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want GET /readyz", c.ReadinessProbe)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("no %s limit", res)
		}
	}
	for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if probe != nil && probe.HTTPGet != nil && port(c, probe.HTTPGet.Port.String()) == 0 {
			t.Errorf("a probe targets port %s, which the container does not declare", probe.HTTPGet.Port.String())
		}
	}
	if arg(c, "--health-probe-bind-address") != fmt.Sprintf(":%d", port(c, "health")) {
		t.Errorf("the manager serves probes on %s, the container's health port is %d", arg(c, "--health-probe-bind-address"), port(c, "health"))
	}
	if d.Spec.Template.Spec.Affinity == nil {
		t.Error("no affinity")
	}
}

// checkMemory: Go's soft memory limit is manager.goMemLimit, or follows
// the container's memory limit (checkPod: there is one) through
// --memory-limit; GOGC is manager.goGC (50 by default).
func checkMemory(t *testing.T, d *appsv1.Deployment, v map[string]any) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if goMemLimit, _ := lookup(v, "manager", "goMemLimit").(string); goMemLimit != "" {
		if env["GOMEMLIMIT"].Value != goMemLimit || arg(c, "--memory-limit") != "" {
			t.Errorf("goMemLimit %s: GOMEMLIMIT %q, --memory-limit %q", goMemLimit, env["GOMEMLIMIT"].Value, arg(c, "--memory-limit"))
		}
	} else {
		ref := env["KUBIST_MEMORY_LIMIT"].ValueFrom
		if ref == nil || ref.ResourceFieldRef == nil || ref.ResourceFieldRef.Resource != "limits.memory" || ref.ResourceFieldRef.ContainerName != c.Name {
			t.Errorf("KUBIST_MEMORY_LIMIT is %+v, want the container's limits.memory", env["KUBIST_MEMORY_LIMIT"])
		}
		if arg(c, "--memory-limit") != "$(KUBIST_MEMORY_LIMIT)" {
			t.Errorf("--memory-limit=%q, want $(KUBIST_MEMORY_LIMIT)", arg(c, "--memory-limit"))
		}
	}
	want := "50"
	if m, ok := lookup(v, "manager").(map[string]any); ok {
		if g, set := m["goGC"]; set {
			want = fmt.Sprint(g)
		}
	}
	if env["GOGC"].Value != want {
		t.Errorf("GOGC=%q, want %q", env["GOGC"].Value, want)
	}
}

// arg returns the value of --name=value in the container's args.
func arg(c corev1.Container, name string) string {
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func port(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// checkRBAC: the manager's roles are exactly what controller-gen generated,
// with no wildcard, Secrets only in the release namespace, and bound to the
// pod's ServiceAccount.
func checkRBAC(t *testing.T, r *rendered, d *appsv1.Deployment) {
	t.Helper()
	f, err := os.Open("../../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	generated, err := manifest.Decode(f, "config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sa := d.Spec.Template.Spec.ServiceAccountName
	one[*corev1.ServiceAccount](t, r, "ServiceAccount", sa)
	for _, g := range generated {
		var rules []rbacv1.PolicyRule
		var renderedRules []rbacv1.PolicyRule
		switch g.GetKind() {
		case "ClusterRole":
			var cr rbacv1.ClusterRole
			mustConvert(t, g.Object, &cr)
			rules = cr.Rules
			renderedRules = one[*rbacv1.ClusterRole](t, r, "ClusterRole", boundRole(t, r, "ClusterRole", sa, rules)).Rules
		case "Role":
			var role rbacv1.Role
			mustConvert(t, g.Object, &role)
			rules = role.Rules
			rendered := one[*rbacv1.Role](t, r, "Role", boundRole(t, r, "Role", sa, rules))
			if rendered.Namespace != releaseNamespace {
				t.Errorf("the manager's Role is in %q, want the release namespace", rendered.Namespace)
			}
			renderedRules = rendered.Rules
		}
		if !equality.Semantic.DeepEqual(rules, renderedRules) {
			t.Errorf("the chart's %s differs from config/rbac's", g.GetKind())
		}
	}
	for _, o := range r.objects {
		var rules []rbacv1.PolicyRule
		cluster := false
		switch o := o.(type) {
		case *rbacv1.ClusterRole:
			rules, cluster = o.Rules, true
		case *rbacv1.Role:
			rules = o.Rules
		default:
			continue
		}
		for _, rule := range rules {
			for _, field := range [][]string{rule.Verbs, rule.Resources, rule.APIGroups, rule.NonResourceURLs} {
				if slices.Contains(field, "*") {
					t.Errorf("a rule has a wildcard: %+v", rule)
				}
			}
			if cluster && slices.Contains(rule.Resources, "secrets") {
				t.Errorf("a ClusterRole grants Secrets: %+v", rule)
			}
		}
	}
}

// boundRole finds the role of a kind bound to the ServiceAccount whose
// rules match, and returns its name.
func boundRole(t *testing.T, r *rendered, kind, sa string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	for _, o := range r.byKind[kind+"Binding"] {
		var ref rbacv1.RoleRef
		var subjects []rbacv1.Subject
		switch b := o.(type) {
		case *rbacv1.ClusterRoleBinding:
			ref, subjects = b.RoleRef, b.Subjects
		case *rbacv1.RoleBinding:
			ref, subjects = b.RoleRef, b.Subjects
		}
		if ref.Kind != kind || !slices.Contains(subjects, rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: releaseNamespace}) {
			continue
		}
		for _, role := range r.byKind[kind] {
			name := role.(interface{ GetName() string }).GetName()
			var roleRules []rbacv1.PolicyRule
			switch role := role.(type) {
			case *rbacv1.ClusterRole:
				roleRules = role.Rules
			case *rbacv1.Role:
				roleRules = role.Rules
			}
			if name == ref.Name && equality.Semantic.DeepEqual(roleRules, rules) {
				return name
			}
		}
	}
	t.Fatalf("no %s with the generated rules is bound to ServiceAccount %s", kind, sa)
	return ""
}

func mustConvert(t *testing.T, from map[string]any, to any) {
	t.Helper()
	data, err := yaml.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, to); err != nil {
		t.Fatal(err)
	}
}

// checkWebhooks: both configurations hold every generated webhook, each
// pointed at the Service that reaches the container's webhook port.
func checkWebhooks(t *testing.T, r *rendered, d *appsv1.Deployment, certManager bool) {
	t.Helper()
	genMutating, genValidating, err := config.WebhookConfigurations()
	if err != nil {
		t.Fatal(err)
	}
	mutating := one[*admissionregistrationv1.MutatingWebhookConfiguration](t, r, "MutatingWebhookConfiguration", "")
	validating := one[*admissionregistrationv1.ValidatingWebhookConfiguration](t, r, "ValidatingWebhookConfiguration", "")
	if mutating.Name != validating.Name {
		t.Errorf("the configurations are named %s and %s; the manager keeps one name", mutating.Name, validating.Name)
	}
	c := d.Spec.Template.Spec.Containers[0]
	var clientConfigs []admissionregistrationv1.WebhookClientConfig
	if len(mutating.Webhooks) != len(genMutating[0].Webhooks) || len(validating.Webhooks) != len(genValidating[0].Webhooks) {
		t.Errorf("%d mutating and %d validating webhooks rendered, %d and %d generated",
			len(mutating.Webhooks), len(validating.Webhooks), len(genMutating[0].Webhooks), len(genValidating[0].Webhooks))
	}
	for i, w := range mutating.Webhooks {
		if g := genMutating[0].Webhooks[i]; w.Name != g.Name || !equality.Semantic.DeepEqual(w.Rules, g.Rules) || *w.ClientConfig.Service.Path != *g.ClientConfig.Service.Path {
			t.Errorf("mutating webhook %s differs from the generated %s", w.Name, g.Name)
		}
		clientConfigs = append(clientConfigs, w.ClientConfig)
	}
	for i, w := range validating.Webhooks {
		if g := genValidating[0].Webhooks[i]; w.Name != g.Name || !equality.Semantic.DeepEqual(w.Rules, g.Rules) || *w.ClientConfig.Service.Path != *g.ClientConfig.Service.Path {
			t.Errorf("validating webhook %s differs from the generated %s", w.Name, g.Name)
		}
		clientConfigs = append(clientConfigs, w.ClientConfig)
	}
	for _, cc := range clientConfigs {
		ref := cc.Service
		if ref == nil || ref.Namespace != releaseNamespace || ref.Port == nil {
			t.Fatalf("a webhook's service is %+v", ref)
		}
		svc := one[*corev1.Service](t, r, "Service", ref.Name)
		found := false
		for _, p := range svc.Spec.Ports {
			// The Service port's target is the container port the
			// manager's webhook server listens on.
			if p.Port == *ref.Port && fmt.Sprint(port(c, p.TargetPort.String())) == arg(c, "--webhook-port") {
				found = true
			}
		}
		if !found {
			t.Errorf("Service %s port %d does not reach the manager's webhook port (%s)", ref.Name, *ref.Port, arg(c, "--webhook-port"))
		}
		if !equality.Semantic.DeepEqual(svc.Spec.Selector, d.Spec.Selector.MatchLabels) {
			t.Errorf("Service %s selects %v, the Deployment's pods are %v", svc.Name, svc.Spec.Selector, d.Spec.Selector.MatchLabels)
		}
		if len(cc.CABundle) != 0 {
			t.Error("the chart renders a caBundle; it is injected")
		}
	}
	for _, cfg := range []interface{ GetAnnotations() map[string]string }{mutating, validating} {
		_, injected := cfg.GetAnnotations()["cert-manager.io/inject-ca-from"]
		if injected != certManager {
			t.Errorf("inject-ca-from annotation present: %v, with cert-manager: %v", injected, certManager)
		}
	}
}

// certMount returns the Secret mounted at the webhook certificate
// directory, or "" for an emptyDir.
func certMount(t *testing.T, d *appsv1.Deployment) (secret string) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	dir := arg(c, "--webhook-cert-dir")
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				if v.Secret != nil {
					return v.Secret.SecretName
				}
				if v.EmptyDir == nil {
					t.Fatalf("the certificate directory is volume %+v", v)
				}
				return ""
			}
		}
	}
	t.Fatalf("nothing is mounted at the certificate directory %q", dir)
	return ""
}

// checkCertManager: self-signed Issuer → CA Certificate → CA Issuer →
// serving Certificate for the Service's names, mounted in the pod and
// injected into both configurations.
func checkCertManager(t *testing.T, r *rendered, d *appsv1.Deployment) {
	t.Helper()
	if len(r.byKind["Secret"]) != 0 {
		t.Error("a Secret is rendered alongside cert-manager")
	}
	mutating := one[*admissionregistrationv1.MutatingWebhookConfiguration](t, r, "MutatingWebhookConfiguration", "")
	ns, name, _ := strings.Cut(mutating.Annotations["cert-manager.io/inject-ca-from"], "/")
	if ns != releaseNamespace {
		t.Errorf("CA injected from namespace %q", ns)
	}
	serving := one[*certmanagerv1.Certificate](t, r, "Certificate", name)
	svc := mutating.Webhooks[0].ClientConfig.Service
	for _, want := range []string{svc.Name + "." + svc.Namespace + ".svc", svc.Name + "." + svc.Namespace + ".svc.cluster.local"} {
		if !slices.Contains(serving.Spec.DNSNames, want) {
			t.Errorf("the serving certificate names %v, not %s", serving.Spec.DNSNames, want)
		}
	}
	if got := certMount(t, d); got != serving.Spec.SecretName {
		t.Errorf("the pod mounts Secret %q, the certificate is in %q", got, serving.Spec.SecretName)
	}
	caIssuer := one[*certmanagerv1.Issuer](t, r, "Issuer", serving.Spec.IssuerRef.Name)
	if caIssuer.Spec.CA == nil {
		t.Fatalf("the serving certificate's issuer %s is not a CA issuer", caIssuer.Name)
	}
	var ca *certmanagerv1.Certificate
	for _, o := range r.byKind["Certificate"] {
		if c := o.(*certmanagerv1.Certificate); c.Spec.SecretName == caIssuer.Spec.CA.SecretName {
			ca = c
		}
	}
	if ca == nil || !ca.Spec.IsCA {
		t.Fatalf("no CA Certificate issues into %s", caIssuer.Spec.CA.SecretName)
	}
	if root := one[*certmanagerv1.Issuer](t, r, "Issuer", ca.Spec.IssuerRef.Name); root.Spec.SelfSigned == nil {
		t.Errorf("the CA is issued by %s, not a self-signed issuer", root.Name)
	}
	if c := d.Spec.Template.Spec.Containers[0]; arg(c, "--webhook-cert-secret") != "" {
		t.Error("the manager manages its certificate although cert-manager does")
	}
}

// checkSelfManagedCert: the manager keeps its certificate in a Secret the
// chart creates, and may update only that Secret and the two
// configurations.
func checkSelfManagedCert(t *testing.T, r *rendered, d *appsv1.Deployment) {
	t.Helper()
	for _, kind := range []string{"Certificate", "Issuer"} {
		if n := len(r.byKind[kind]); n != 0 {
			t.Errorf("%d cert-manager %ss rendered without cert-manager", n, kind)
		}
	}
	c := d.Spec.Template.Spec.Containers[0]
	secret := one[*corev1.Secret](t, r, "Secret", arg(c, "--webhook-cert-secret"))
	if len(secret.Data) != 0 || len(secret.StringData) != 0 {
		t.Error("the chart renders the certificate Secret's data; upgrades would wipe it")
	}
	if certMount(t, d) != "" {
		t.Error("the self-managed certificate directory is not an emptyDir")
	}
	webhook := arg(c, "--webhook-configuration")
	one[*admissionregistrationv1.MutatingWebhookConfiguration](t, r, "MutatingWebhookConfiguration", webhook)
	svc := one[*corev1.Service](t, r, "Service", arg(c, "--webhook-service"))
	if svc.Name != one[*admissionregistrationv1.MutatingWebhookConfiguration](t, r, "MutatingWebhookConfiguration", webhook).Webhooks[0].ClientConfig.Service.Name {
		t.Error("the certificate is issued for another Service than the webhooks call")
	}
	grants := func(rules []rbacv1.PolicyRule, resource, name string) bool {
		for _, rule := range rules {
			if slices.Contains(rule.Resources, resource) && slices.Equal(rule.ResourceNames, []string{name}) &&
				slices.Contains(rule.Verbs, "update") && slices.Contains(rule.Verbs, "get") {
				return true
			}
		}
		return false
	}
	var roles, clusterRoles []rbacv1.PolicyRule
	for _, o := range r.byKind["Role"] {
		roles = append(roles, o.(*rbacv1.Role).Rules...)
	}
	for _, o := range r.byKind["ClusterRole"] {
		clusterRoles = append(clusterRoles, o.(*rbacv1.ClusterRole).Rules...)
	}
	if !grants(roles, "secrets", secret.Name) {
		t.Errorf("no Role lets the manager update Secret %s, and only it", secret.Name)
	}
	for _, res := range []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} {
		if !grants(clusterRoles, res, webhook) {
			t.Errorf("no ClusterRole lets the manager update %s %s, and only it", res, webhook)
		}
	}
}

func checkMetrics(t *testing.T, r *rendered, d *appsv1.Deployment, v map[string]any) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	secure := flag(v, true, "metrics", "secure")
	if arg(c, "--metrics-secure") != fmt.Sprint(secure) {
		t.Errorf("--metrics-secure=%s, metrics.secure is %v", arg(c, "--metrics-secure"), secure)
	}
	var metricsSvc *corev1.Service
	for _, o := range r.byKind["Service"] {
		if s := o.(*corev1.Service); s.Labels["kubist.io/service"] == "metrics" {
			metricsSvc = s
		}
	}
	if metricsSvc == nil || metricsSvc.Spec.Ports[0].TargetPort.String() != "metrics" ||
		arg(c, "--metrics-bind-address") != fmt.Sprintf(":%d", port(c, "metrics")) {
		t.Fatalf("the metrics Service does not reach the manager's metrics endpoint (%s)", arg(c, "--metrics-bind-address"))
	}
	monitors := r.byKind["ServiceMonitor"]
	if !flag(v, false, "metrics", "serviceMonitor", "enabled") {
		if len(monitors) != 0 {
			t.Error("a ServiceMonitor is rendered although disabled")
		}
		return
	}
	if len(monitors) != 1 {
		t.Fatalf("%d ServiceMonitors rendered", len(monitors))
	}
	sm := monitors[0].(*monitoringv1.ServiceMonitor)
	for k, want := range sm.Spec.Selector.MatchLabels {
		if metricsSvc.Labels[k] != want {
			t.Errorf("the ServiceMonitor selects %s=%s, the metrics Service has %q", k, want, metricsSvc.Labels[k])
		}
	}
	if ep := sm.Spec.Endpoints[0]; ep.Port != metricsSvc.Spec.Ports[0].Name || (ep.Scheme != nil && *ep.Scheme == "https") != secure {
		t.Errorf("the ServiceMonitor scrapes port %q (scheme %v), the Service serves %q (secure %v)", ep.Port, ep.Scheme, metricsSvc.Spec.Ports[0].Name, secure)
	}
}

// checkCRDs: the chart's CRDs are the generated ones.
func checkCRDs(t *testing.T, rendered []any, generated []*apiextensionsv1.CustomResourceDefinition, keep bool) {
	t.Helper()
	if len(rendered) != len(generated) {
		t.Fatalf("%d CRDs rendered, %d generated", len(rendered), len(generated))
	}
	for _, g := range generated {
		found := false
		for _, o := range rendered {
			crd := o.(*apiextensionsv1.CustomResourceDefinition)
			if crd.Name != g.Name {
				continue
			}
			found = true
			if !equality.Semantic.DeepEqual(crd.Spec, g.Spec) {
				t.Errorf("CRD %s differs from config/crd's", g.Name)
			}
			if kept := crd.Annotations["helm.sh/resource-policy"] == "keep"; kept != keep {
				t.Errorf("CRD %s kept on uninstall: %v, crds.keep: %v", g.Name, kept, keep)
			}
		}
		if !found {
			t.Errorf("CRD %s is not rendered", g.Name)
		}
	}
}

// Values that break values.schema.json are refused with the field named.
func TestSchemaRefusesBadValues(t *testing.T) {
	for _, c := range []struct{ values, field string }{
		{`replicas: 2`, "replicas"},
		{`replicaCount: two`, "replicaCount"},
		{`replicaCount: 0`, "replicaCount"},
		{`certManager: {enable: false}`, "enable"},
		{`certManager: {enabled: "no"}`, "enabled"},
		{`webhook: {failurePolicy: Sometimes}`, "failurePolicy"},
		{`webhook: {timeoutSeconds: 60}`, "timeoutSeconds"},
		{`manager: {resyncPeriod: 5 minutes}`, "resyncPeriod"},
		{`manager: {prometheusURL: "prometheus:9090"}`, "prometheusURL"},
		{`manager: {extraArgs: ["leader-elect=false"]}`, "extraArgs"},
		{`manager: {logLevel: verbose}`, "logLevel"},
		{`manager: {goGC: 0}`, "goGC"},
		{`manager: {goGC: "off"}`, "goGC"},
		{`manager: {goMemLimit: 256Mi}`, "goMemLimit"},
		{`image: {digest: latest}`, "digest"},
		{`resources: {limits: {memory: lots}}`, "memory"},
		{`metrics: {serviceMonitor: {interval: often}}`, "interval"},
		{`podDisruptionBudget: {minAvailable: half}`, "minAvailable"},
		{`grafana: {dashboard: {enable: true}}`, "enable"},
		{`grafana: {dashboard: {labels: {grafana_dashboard: 1}}}`, "grafana_dashboard"},
		{`shards: [EU]`, "shards"},
		{`shards: [eu, eu]`, "shards"},
		{`shards: eu`, "shards"},
	} {
		_, err := render(t, values(t, c.values))
		if err == nil {
			t.Errorf("%s: rendered", c.values)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: the error does not name %s: %v", c.values, c.field, err)
		}
	}
}

// With shards, one Deployment (and PDB) per shard runs `--shard NAME`
// under its own selector; the first serves admission, behind the webhook
// Service, and the others do not.
func TestRenderShards(t *testing.T) {
	r := renderObjects(t, values(t, `shards: [default, eu]`))
	for i, shard := range []string{"default", "eu"} {
		d := one[*appsv1.Deployment](t, r, "Deployment", releaseName+"-"+shard)
		c := d.Spec.Template.Spec.Containers[0]
		if got := arg(c, "--shard"); got != shard {
			t.Errorf("%s: --shard=%q", d.Name, got)
		}
		if got := d.Spec.Selector.MatchLabels["kubist.io/shard"]; got != shard {
			t.Errorf("%s: selector kubist.io/shard=%q", d.Name, got)
		}
		if got := d.Spec.Template.Labels["kubist.io/shard"]; got != shard {
			t.Errorf("%s: pod label kubist.io/shard=%q", d.Name, got)
		}
		webhooks := arg(c, "--webhooks") != "false"
		if webhooks != (i == 0) {
			t.Errorf("%s: serves admission %v, want %v (the first shard alone)", d.Name, webhooks, i == 0)
		}
		checkPod(t, d)
		pdb := one[*policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget", releaseName+"-"+shard)
		if got := pdb.Spec.Selector.MatchLabels["kubist.io/shard"]; got != shard {
			t.Errorf("PDB %s selects shard %q", pdb.Name, got)
		}
	}
	if n := len(r.byKind["Deployment"]); n != 2 {
		t.Errorf("%d Deployments, want one per shard", n)
	}
	svc := one[*corev1.Service](t, r, "Service", releaseName+"-webhook")
	if got := svc.Spec.Selector["kubist.io/shard"]; got != "default" {
		t.Errorf("the webhook Service selects shard %q, want the first, default", got)
	}

	// Without shards: one Deployment for every Project, as before.
	d := one[*appsv1.Deployment](t, renderObjects(t, nil), "Deployment", releaseName)
	if got := arg(d.Spec.Template.Spec.Containers[0], "--shard"); got != "" {
		t.Errorf("no shards, yet --shard=%q", got)
	}
	if _, ok := d.Spec.Selector.MatchLabels["kubist.io/shard"]; ok {
		t.Error("no shards, yet a shard in the selector")
	}
}

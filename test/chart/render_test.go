package chart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/test/testenv"
)

const (
	releaseName      = "kubist"
	releaseNamespace = "kubist-system"
)

func chartDir(t testing.TB) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "charts", "kubist")
}

func loadChart(t testing.TB) *chartv2.Chart {
	t.Helper()
	c, err := loader.LoadDir(chartDir(t))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// kubeVersion is the version of the control plane the tests run (the
// Makefile's K8S_VERSION, the name of the assets directory), for the
// chart's kubeVersion constraint.
func kubeVersion(t testing.TB) *common.KubeVersion {
	t.Helper()
	assets, err := controlplane.FindAssets("")
	if err != nil {
		t.Fatal(err)
	}
	v, err := common.ParseKubeVersion(filepath.Base(assets))
	if err != nil {
		t.Fatalf("version of %s: %v", assets, err)
	}
	return v
}

// render renders the chart as `helm template` does, with the Helm SDK.
func render(t testing.TB, values map[string]any) (*releasev1.Release, error) {
	t.Helper()
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.KubeVersion = kubeVersion(t)
	install.Replace = true
	install.ReleaseName, install.Namespace = releaseName, releaseNamespace
	rel, err := install.Run(loadChart(t), values)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("release of type %T", rel)
	}
	return r, nil
}

// rendered are the objects of a rendered release, each decoded strictly
// into its Go type.
type rendered struct {
	objects []any
	byKind  map[string][]any
	notes   string
}

// newObject returns the Go type an apiVersion/kind decodes into.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	case "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration":
		return &admissionregistrationv1.MutatingWebhookConfiguration{}, nil
	case "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration":
		return &admissionregistrationv1.ValidatingWebhookConfiguration{}, nil
	case "apiextensions.k8s.io/v1/CustomResourceDefinition":
		return &apiextensionsv1.CustomResourceDefinition{}, nil
	case "cert-manager.io/v1/Issuer":
		return &certmanagerv1.Issuer{}, nil
	case "cert-manager.io/v1/Certificate":
		return &certmanagerv1.Certificate{}, nil
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, nil
	}
	return nil, fmt.Errorf("the chart renders %s %s, which no test knows", apiVersion, kind)
}

// decodeManifest splits a manifest and decodes every document strictly:
// a field its Go type does not have is an error.
func decodeManifest(manifest string) (*rendered, error) {
	out := &rendered{byKind: map[string][]any{}}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, err
		}
		obj, err := newObject(u.GetAPIVersion(), u.GetKind())
		if err != nil {
			return nil, err
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s %s does not decode strictly: %w", u.GetKind(), u.GetName(), err)
		}
		out.objects = append(out.objects, obj)
		out.byKind[u.GetKind()] = append(out.byKind[u.GetKind()], obj)
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			b.Write(line)
		}
	}
	return b.Bytes()
}

func renderObjects(t testing.TB, values map[string]any) *rendered {
	t.Helper()
	rel, err := render(t, values)
	if err != nil {
		t.Fatalf("render with %v: %v", values, err)
	}
	r, err := decodeManifest(rel.Manifest)
	if err != nil {
		t.Fatalf("render with %v: %v", values, err)
	}
	r.notes = rel.Info.Notes
	return r
}

// one returns the only object of a kind (and name, when given).
func one[T any](t testing.TB, r *rendered, kind, name string) T {
	t.Helper()
	var found []T
	for _, o := range r.byKind[kind] {
		if name != "" && o.(interface{ GetName() string }).GetName() != name {
			continue
		}
		found = append(found, o.(T))
	}
	if len(found) != 1 {
		t.Fatalf("%d %s named %q rendered, want 1", len(found), kind, name)
	}
	return found[0]
}

func kindsOf(r *rendered) []string {
	var kinds []string
	for k, objs := range r.byKind {
		kinds = append(kinds, fmt.Sprintf("%s×%d", k, len(objs)))
	}
	slices.Sort(kinds)
	return kinds
}

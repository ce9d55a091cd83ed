package reconciler

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/policies"
)

// TestPrometheusOf: a Cluster without prometheusSecretRef reads the
// manager's Prometheus; with one, the Secret's, built once per version of
// the Secret; a missing Secret or a url that is not one says which.
func TestPrometheusOf(t *testing.T) {
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kubist-system", Name: "eu-prometheus"},
		Data: map[string][]byte{"url": []byte("http://127.0.0.1:9090"), "token": []byte("s3cret")}}
	secrets := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(secret).Build()
	c := &Clusters{Secrets: secrets, Namespace: "kubist-system"}
	manager, err := policies.NewPrometheus("http://127.0.0.1:9091", nil)
	if err != nil {
		t.Fatal(err)
	}
	cluster := func(secret string) *v1alpha1.Cluster {
		cl := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "eu"}}
		if secret != "" {
			cl.Spec.PrometheusSecretRef = &v1alpha1.SecretReference{Name: secret}
		}
		return cl
	}

	if p, err := c.prometheusOf(ctx, cluster(""), manager); err != nil || p != manager {
		t.Errorf("without a Secret: %v, %v; want the manager's", p, err)
	}
	first, err := c.prometheusOf(ctx, cluster("eu-prometheus"), manager)
	if err != nil || first == nil || first == policies.MetricsProvider(manager) {
		t.Fatalf("with a Secret: %v, %v; want its own", first, err)
	}
	if again, _ := c.prometheusOf(ctx, cluster("eu-prometheus"), manager); again != first {
		t.Error("built again for the same version of the Secret")
	}
	secret.Data["url"] = []byte("http://127.0.0.1:9092")
	if err := secrets.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if changed, _ := c.prometheusOf(ctx, cluster("eu-prometheus"), manager); changed == first {
		t.Error("not built again when the Secret changed")
	}

	if _, err := c.prometheusOf(ctx, cluster("missing"), manager); err == nil || !strings.Contains(err.Error(), "Secret kubist-system/missing (spec.prometheusSecretRef of Cluster eu) does not exist") {
		t.Errorf("a missing Secret: %v", err)
	}
	secret.Data["url"] = []byte("prometheus:9090")
	if err := secrets.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := c.prometheusOf(ctx, cluster("eu-prometheus"), manager); err == nil || !strings.Contains(err.Error(), "key url must hold Prometheus's http(s) URL") {
		t.Errorf("a url without a scheme: %v", err)
	}
}

package reconciler

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The cache keeps of a Deployment what the executors read (application.go,
// destination.go, virtualcluster.go's import, cluster.go's istiod check)
// and drops the rest of its pod template.
func TestTrimDeployment(t *testing.T) {
	created := metav1.Now()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: "reviews-v2", Namespace: "bookinfo", CreationTimestamp: created,
			Labels:        map[string]string{"app": "reviews"},
			Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: `{"a huge":"manifest"}`, "team": "books"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "reviews", "version": "v2"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "reviews", "version": "v2"}, Annotations: map[string]string{"prometheus.io/scrape": "true"}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "reviews", Image: "docker.io/istio/examples-bookinfo-reviews-v2:1.20.2",
						Command: []string{"/opt/ibm/wlp/bin/server"}, Env: []corev1.EnvVar{{Name: "LOG_DIR", Value: "/tmp/logs"}},
						Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
					}},
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
		Status: appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 2, Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}},
	}
	want := d.DeepCopy()
	want.ManagedFields = nil
	want.Annotations = map[string]string{"team": "books"}
	want.Spec.Template.Annotations = nil
	want.Spec.Template.Spec = corev1.PodSpec{Containers: []corev1.Container{{Name: "reviews", Image: "docker.io/istio/examples-bookinfo-reviews-v2:1.20.2"}}}

	got, err := trimDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("trimmed to %+v, want %+v", got, want)
	}
	// Other kinds pass through.
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reviews"}}
	if got, _ := trimDeployment(svc); got != svc {
		t.Errorf("a Service came back as %v", got)
	}
}

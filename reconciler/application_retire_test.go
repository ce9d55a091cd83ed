package reconciler

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// TestPlanScaling: a version retired for scaleDownRetired goes to zero,
// its replicas kept; one retired for less is asked for again then; one
// that is needed again comes back to what was kept; without the
// parameter nothing is written.
func TestPlanScaling(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	deployment := func(version string, replicas int32, kept string) appsv1.Deployment {
		d := appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web-" + version, Labels: map[string]string{"version": version}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}}
		if kept != "" {
			d.Annotations = map[string]string{v1alpha1.AnnotationRetiredReplicas: kept}
		}
		return d
	}
	deployments := []appsv1.Deployment{deployment("v1", 3, ""), deployment("v2", 1, ""), deployment("v3", 0, "2")}
	ret := retirement{retired: map[string]metav1.MicroTime{
		"v1": metav1.NewMicroTime(now.Add(-11 * time.Minute)),
		"v2": metav1.NewMicroTime(now.Add(-4 * time.Minute)),
	}}
	plan, next := planScaling(deployments, "version", ret, 10*time.Minute, now)
	if len(plan) != 2 || plan[0].deployment != "web-v1" || plan[0].replicas != 0 || *plan[0].kept != 3 ||
		plan[1].deployment != "web-v3" || plan[1].replicas != 2 || plan[1].kept != nil {
		t.Fatalf("plan %+v", plan)
	}
	if next != 6*time.Minute {
		t.Errorf("next %v, want v2's turn in 6m", next)
	}
	if plan, _ := planScaling(deployments[:2], "version", ret, 0, now); len(plan) != 0 {
		t.Errorf("without scaleDownRetired: %+v", plan)
	}
}

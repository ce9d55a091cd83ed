package localmesh

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestOverrideFlags(t *testing.T) {
	for name, tc := range map[string]struct {
		args   []string
		values map[string]string
		want   []string
	}{
		"a flag with its value joined": {
			args: []string{"discovery", "--monitoringAddr=:15014"}, values: map[string]string{"--monitoringAddr": "127.0.0.1:1"},
			want: []string{"discovery", "--monitoringAddr=127.0.0.1:1"},
		},
		"a flag with its value as the next argument": {
			args: []string{"discovery", "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"}, values: map[string]string{"--domain": "example.local"},
			want: []string{"discovery", "--domain=example.local", "--keepaliveMaxServerConnectionAge", "30m"},
		},
		"flags the args lack are appended in name order": {
			args: []string{"discovery"}, values: map[string]string{"--httpAddr": "127.0.0.1:2", "--grpcAddr": "127.0.0.1:3"},
			want: []string{"discovery", "--grpcAddr=127.0.0.1:3", "--httpAddr=127.0.0.1:2"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			if got := OverrideFlags(tc.args, tc.values); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPodEnv(t *testing.T) {
	vars := []corev1.EnvVar{
		{Name: "REVISION", Value: "default"},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
	}
	got, err := PodEnv(vars, map[string]string{"metadata.namespace": "istio-system"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"REVISION=default", "POD_NAMESPACE=istio-system"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	// A resource field the caller gives, as the kubelet would: in units of
	// the divisor (bytes by default).
	memory := []corev1.EnvVar{
		{Name: "LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
		{Name: "LIMIT_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
	}
	got, err = PodEnv(memory, map[string]string{"limits.memory": "402653184"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"LIMIT=402653184", "LIMIT_MI=384"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = PodEnv([]corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "env NODE comes from field spec.nodeName") {
		t.Errorf("a field no pod here has: %v", err)
	}
}

func TestExpandArgs(t *testing.T) {
	env := []string{"LIMIT=402653184", "EMPTY="}
	got := ExpandArgs([]string{"--memory-limit=$(LIMIT)", "$(UNDEFINED)", "$$(LIMIT)", "a$(EMPTY)b", "cost $$5", "$(unclosed"}, env)
	want := []string{"--memory-limit=402653184", "$(UNDEFINED)", "$(LIMIT)", "ab", "cost $5", "$(unclosed"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

package policies

import "testing"

func TestClosest(t *testing.T) {
	candidates := []string{"CanaryReleaseExecutor", "ReadOnlyCanaryReleaseExecutor", "TimedCanaryRelease", "ManualGate", "max-weight"}
	tests := map[string]string{
		"CanaryReleaseExecuter": "CanaryReleaseExecutor", // a typo
		"timedcanaryrelease":    "TimedCanaryRelease",    // case
		"TimedCanary":           "TimedCanaryRelease",    // shortened
		"CanaryExecutor":        "CanaryReleaseExecutor", // a word left out: the shorter match wins
		"max-weigth":            "max-weight",
		"Gate":                  "ManualGate",
		"Foo":                   "",
		"RolloutExecutor":       "",
	}
	for name, want := range tests {
		if got := Closest(name, candidates); got != want {
			t.Errorf("Closest(%q) = %q, want %q", name, got, want)
		}
	}
}

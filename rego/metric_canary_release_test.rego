package kubist.policies.metric_canary_release_test

import data.kubist.policies.metric_canary_release as policy

q := `histogram_quantile(0.99, rate(latency_bucket{subset="{{subset}}"}[1m]))`

state := {
	"baseline": "v1", "canary": "v2",
	"weights": {"v1": 80, "v2": 20},
	"phase": "Progressing",
	"lastStepTime": "2026-11-24T12:00:00Z",
}

params := {"query": q, "min": 0, "max": 250, "step": 10, "period": "1m"}

metrics(v) := {"v2": {"queries": {q: v}}}

test_within_bounds_steps if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": metrics(120), "now": "2026-11-24T12:01:00Z"}
	d.state.weights == {"v1": 70, "v2": 30}
	d.outcome == "Step"
}

test_bounds_are_inclusive if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": metrics(250), "now": "2026-11-24T12:01:00Z"}
	d.outcome == "Step"
}

test_outside_bounds_rolls_back if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": metrics(251.5), "now": "2026-11-24T12:00:10Z"}
	d.state.weights == {"v1": 100, "v2": 0}
	d.state.phase == "RolledBack"
	d.message == "canary v2 query value 251.5 is outside [0, 250]"
}

test_only_max_given if {
	p := object.remove(params, ["min"])
	d := policy.decision with input as {"state": state, "parameters": p, "metrics": metrics(-5), "now": "2026-11-24T12:01:00Z"}
	d.outcome == "Step"
}

test_no_data_holds if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": {}, "now": "2026-11-24T12:05:00Z"}
	d.state == state
	d.outcome == "Hold"
}

test_collecting_since_the_step_holds_saying_until_when if {
	observed := {"collectingUntil": "2026-11-24T12:00:12Z"}
	d := policy.decision with input as {"state": state, "parameters": params, "observed": observed, "now": "2026-11-24T12:00:05Z"}
	d.outcome == "Hold"
	d.message == "holding: collecting subset v2's metrics since the last step until 2026-11-24T12:00:12Z"
}

test_within_bounds_not_due_holds if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": metrics(10), "now": "2026-11-24T12:00:45Z"}
	d.state == state
	d.requeueAfter == "15s"
}

test_a_promote_action_steps_without_data if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": {}, "now": "2026-11-24T12:00:05Z", "action": {"name": "Promote"}}
	d.state.weights == {"v1": 70, "v2": 30}
	d.outcome == "Step"
}

test_a_promote_action_does_not_override_a_value_out_of_bounds if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": metrics(300), "now": "2026-11-24T12:00:05Z", "action": {"name": "Promote"}}
	d.state.phase == "RolledBack"
}

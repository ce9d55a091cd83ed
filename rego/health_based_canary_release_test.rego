package kubist.policies.health_based_canary_release_test

import data.kubist.policies.health_based_canary_release as policy

state := {
	"baseline": "v1", "canary": "v2",
	"weights": {"v1": 70, "v2": 30},
	"phase": "Progressing",
	"lastStepTime": "2026-11-24T12:00:00Z",
}

params := {"step": 10, "period": "30s", "maxErrorRate": 0.3, "minRequests": 20, "rollback": "immediate"}

due := "2026-11-24T12:00:30Z"

healthy := {"v2": {"requests": 500, "errorRate": 0.01, "latencyP99Ms": 80}}

failing := {"v2": {"requests": 500, "errorRate": 0.5, "latencyP99Ms": 80}}

test_healthy_canary_steps_forward if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": healthy, "now": due}
	d.state.weights == {"v1": 60, "v2": 40}
	d.outcome == "Step"
}

test_healthy_canary_promotes if {
	s := object.union(state, {"weights": {"v1": 10, "v2": 90}})
	d := policy.decision with input as {"state": s, "parameters": params, "metrics": healthy, "now": due}
	d.state.weights == {"v1": 0, "v2": 100}
	d.state.phase == "Promoted"
	d.outcome == "Promote"
}

test_error_rate_at_threshold_is_healthy if {
	m := {"v2": {"requests": 100, "errorRate": 0.3}}
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": m, "now": due}
	d.outcome == "Step"
}

test_healthy_but_not_due_holds_for_the_time_left if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": healthy, "now": "2026-11-24T12:00:20Z"}
	d.state == state
	d.outcome == "Hold"
	d.requeueAfter == "10s"
	not d.events
}

test_unhealthy_rolls_back_immediately if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": failing, "now": "2026-11-24T12:00:05Z"}
	d.state.weights == {"v1": 100, "v2": 0}
	d.state.phase == "RolledBack"
	d.outcome == "RollBack"
	d.events[0].type == "Warning"
	contains(d.message, "error rate 50% is above maxErrorRate 0.3 (30%)")
}

test_unhealthy_gradual_steps_back_when_due if {
	p := object.union(params, {"rollback": "gradual"})
	d := policy.decision with input as {"state": state, "parameters": p, "metrics": failing, "now": due}
	d.state.weights == {"v1": 80, "v2": 20}
	d.state.phase == "Progressing"
	d.outcome == "StepBack"
}

test_unhealthy_gradual_holds_between_steps if {
	p := object.union(params, {"rollback": "gradual"})
	d := policy.decision with input as {"state": state, "parameters": p, "metrics": failing, "now": "2026-11-24T12:00:10Z"}
	d.state == state
	d.outcome == "Hold"
	d.requeueAfter == "20s"
}

test_unhealthy_gradual_reaching_zero_is_rolled_back if {
	p := object.union(params, {"rollback": "gradual"})
	s := object.union(state, {"weights": {"v1": 95, "v2": 5}})
	d := policy.decision with input as {"state": s, "parameters": p, "metrics": failing, "now": due}
	d.state.weights == {"v1": 100, "v2": 0}
	d.state.phase == "RolledBack"
}

test_gradual_goes_forward_again_once_healthy if {
	p := object.union(params, {"rollback": "gradual"})
	s := object.union(state, {"weights": {"v1": 80, "v2": 20}})
	d := policy.decision with input as {"state": s, "parameters": p, "metrics": healthy, "now": due}
	d.state.weights == {"v1": 70, "v2": 30}
	d.outcome == "Step"
}

test_missing_metrics_hold if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": {}, "now": due}
	d.state == state
	d.outcome == "Hold"
	d.message == "holding: no metrics for subset v2"
}

test_collecting_since_the_step_holds_saying_until_when if {
	observed := {"collectingUntil": "2026-11-24T12:00:12Z"}
	d := policy.decision with input as {"state": state, "parameters": params, "observed": observed, "now": due}
	d.state == state
	d.outcome == "Hold"
	d.message == "holding: collecting subset v2's metrics since the last step until 2026-11-24T12:00:12Z"
}

test_too_few_requests_hold if {
	m := {"v2": {"requests": 5, "errorRate": 1}}
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": m, "now": due}
	d.state == state
	d.outcome == "Hold"
	d.message == "holding: 5 requests to subset v2, fewer than minRequests 20"
}

test_first_step_needs_no_metrics if {
	s := object.remove(object.union(state, {"phase": "Pending", "weights": {"v1": 100, "v2": 0}}), ["lastStepTime"])
	d := policy.decision with input as {"state": s, "parameters": params, "metrics": {}, "now": due}
	d.state.weights == {"v1": 90, "v2": 10}
	d.state.phase == "Progressing"
}

promote := {"name": "Promote", "user": "alice", "time": "2026-11-24T12:00:05Z"}

test_a_promote_action_steps_without_metrics_and_before_the_period if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": {}, "now": "2026-11-24T12:00:05Z", "action": promote}
	d.state.weights == {"v1": 60, "v2": 40}
	d.outcome == "Step"
}

test_a_promote_action_does_not_override_an_unhealthy_canary if {
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": failing, "now": "2026-11-24T12:00:05Z", "action": promote}
	d.state.phase == "RolledBack"
	d.outcome == "RollBack"
}

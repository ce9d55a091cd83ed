package kubist.policies.webhook_gate_test

import data.kubist.policies.webhook_gate as policy

served := {"weights": {"v1": 80, "v2": 20}, "phase": "Progressing", "lastStepTime": "2026-11-24T12:00:00Z"}

proposal := {
	"baseline": "v1", "canary": "v2",
	"weights": {"v1": 70, "v2": 30},
	"phase": "Progressing",
	"lastStepTime": "2026-11-24T12:00:30Z",
}

params(when) := {"secretRef": "load-test", "timeout": "10s", "when": when, "retry": "10s"}

ok := {"load-test": {"statusCode": 200, "body": "", "latencyMs": 12.4}}

refused := {"load-test": {"statusCode": 412, "body": "change ticket CHG-42 is not approved", "latencyMs": 3}}

timed_out := {"load-test": {"error": "context deadline exceeded (Client.Timeout exceeded while awaiting headers)", "latencyMs": 10000}}

test_a_passing_hook_lets_the_step_through if {
	d := policy.decision with input as {"state": proposal, "observed": served, "parameters": params("step"), "hooks": ok}
	d.state == proposal
	d.outcome == "Pass"
	d.message == "hook load-test (on step) answered 200 in 12ms"
}

test_a_failing_hook_holds_the_step_and_says_why if {
	d := policy.decision with input as {"state": proposal, "observed": served, "parameters": params("step"), "hooks": refused}
	d.state.weights == served.weights
	d.state.lastStepTime == served.lastStepTime
	d.outcome == "Gate"
	d.message == "waiting for hook load-test (on step): it answered 412 in 3ms (change ticket CHG-42 is not approved)"
	d.requeueAfter == "10s"
}

test_a_hook_that_times_out_holds if {
	d := policy.decision with input as {"state": proposal, "observed": served, "parameters": params("step"), "hooks": timed_out}
	d.outcome == "Gate"
	startswith(d.message, "waiting for hook load-test (on step): it failed: context deadline exceeded")
}

test_a_hook_never_called_holds if {
	d := policy.decision with input as {"state": proposal, "observed": served, "parameters": params("step")}
	d.outcome == "Gate"
	d.message == "waiting for hook load-test (on step): it failed: the hook was not called"
}

test_rollbacks_pass_a_step_hook if {
	p := object.union(proposal, {"weights": {"v1": 100, "v2": 0}, "phase": "RolledBack"})
	d := policy.decision with input as {"state": p, "observed": served, "parameters": params("step"), "hooks": refused}
	d.state == p
	d.outcome == "Pass"
}

test_a_promotion_hook_lets_steps_through_and_holds_the_promotion if {
	step := policy.decision with input as {"state": proposal, "observed": served, "parameters": params("promotion"), "hooks": refused}
	step.outcome == "Pass"
	p := object.union(proposal, {"weights": {"v1": 0, "v2": 100}, "phase": "Promoted"})
	d := policy.decision with input as {"state": p, "observed": served, "parameters": params("promotion"), "hooks": refused}
	d.state.weights == served.weights
	d.outcome == "Gate"
}

test_a_rollback_hook_answering_2xx_rolls_back if {
	d := policy.decision with input as {"state": proposal, "observed": served, "parameters": params("rollback"), "hooks": ok, "now": "2026-11-24T12:00:40Z"}
	d.state.phase == "RolledBack"
	d.state.weights == {"v1": 100, "v2": 0}
	d.outcome == "RollBack"
}

test_a_rollback_hook_answering_otherwise_passes if {
	d := policy.decision with input as {"state": proposal, "observed": served, "parameters": params("rollback"), "hooks": refused}
	d.state == proposal
	d.outcome == "Pass"
}

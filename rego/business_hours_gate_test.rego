package kubist.policies.business_hours_gate_test

import data.kubist.policies.business_hours_gate as policy

params := {
	"timezone": "Europe/Amsterdam", "from": "09:00", "to": "17:00",
	"days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
	"allowRollback": true,
}

served := {"weights": {"v1": 80, "v2": 20}, "phase": "Progressing", "lastStepTime": "2026-11-24T06:00:00Z"}

proposal := {
	"baseline": "v1", "canary": "v2",
	"weights": {"v1": 70, "v2": 30},
	"phase": "Progressing",
	"lastStepTime": "2026-11-24T12:00:00Z",
}

run(now) := d if {
	d := policy.decision with input as {"state": proposal, "observed": served, "parameters": params, "now": now}
}

# 2026-11-24 is a Tuesday; Amsterdam is UTC+1 in November.
test_inside_the_window_passes if {
	d := run("2026-11-24T12:00:00Z")
	d.state == proposal
	d.outcome == "Pass"
}

test_before_opening_reverts_until_it_opens if {
	d := run("2026-11-24T06:30:00Z") # 07:30 in Amsterdam
	d.state.weights == served.weights
	d.state.lastStepTime == served.lastStepTime
	d.outcome == "Gate"
	d.requeueAfter == "90m"
}

test_end_is_exclusive if {
	d := run("2026-11-24T16:00:00Z") # 17:00 in Amsterdam
	d.outcome == "Gate"
	d.requeueAfter == "15m"
}

test_start_is_inclusive if {
	run("2026-11-24T08:00:00Z").outcome == "Pass" # 09:00 in Amsterdam
	run("2026-11-24T07:59:59Z").outcome == "Gate" # 08:59:59
	run("2026-11-24T15:59:59Z").outcome == "Pass" # 16:59:59
}

# The executor gives input.nowNs; a test's input without it decides alike.
test_now_ns_given_or_parsed_alike if {
	d := policy.decision with input as {
		"state": proposal, "observed": served, "parameters": params,
		"now": "2026-11-24T16:00:00Z", "nowNs": 1795536000000000000,
	}
	d == run("2026-11-24T16:00:00Z")
}

test_weekend_reverts if {
	d := run("2026-11-28T12:00:00Z") # Saturday
	d.outcome == "Gate"
}

test_rollback_passes_outside if {
	p := object.union(proposal, {"weights": {"v1": 100, "v2": 0}, "phase": "RolledBack"})
	d := policy.decision with input as {"state": p, "observed": served, "parameters": params, "now": "2026-11-28T12:00:00Z"}
	d.state == p
	d.outcome == "Pass"
}

test_rollback_gated_when_not_allowed if {
	p := object.union(proposal, {"weights": {"v1": 100, "v2": 0}, "phase": "RolledBack"})
	ps := object.union(params, {"allowRollback": false})
	d := policy.decision with input as {"state": p, "observed": served, "parameters": ps, "now": "2026-11-28T12:00:00Z"}
	d.state.weights == served.weights
	d.outcome == "Gate"
}

test_no_change_passes_outside if {
	p := object.union(proposal, {"weights": served.weights})
	d := policy.decision with input as {"state": p, "observed": served, "parameters": params, "now": "2026-11-28T12:00:00Z"}
	d.outcome == "Pass"
}

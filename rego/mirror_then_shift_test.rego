package kubist.policies.mirror_then_shift_test

import data.kubist.policies.mirror_then_shift

params := {"percent": 50, "duration": "1m", "whileShifting": false}

fresh := {"baseline": "v1", "canary": "v2", "weights": {"v1": 100, "v2": 0}, "phase": "Pending"}

# What a timed policy before it proposes: the first step.
stepped := object.union(fresh, {"weights": {"v1": 90, "v2": 10}, "phase": "Progressing", "lastStepTime": "2026-11-24T12:00:00Z"})

unshifted := {"weights": {"v1": 100, "v2": 0}, "phase": "Pending", "lastStepTime": null, "mirror": null}

test_starts_mirroring_before_the_first_shift if {
	d := mirror_then_shift.decision with input as {"state": stepped, "observed": unshifted, "parameters": params, "now": "2026-11-24T12:00:00Z"}
	d.state.weights == {"v1": 100, "v2": 0}
	d.state.phase == "Progressing"
	d.state.mirror == {"subset": "v2", "percent": 50, "since": "2026-11-24T12:00:00Z"}
	not d.state.lastStepTime
	d.outcome == "Mirror"
	d.requeueAfter == "1m"
	d.events[0].reason == "Mirror"
}

mirroring := object.union(unshifted, {"phase": "Progressing", "mirror": {"subset": "v2", "percent": 50, "since": "2026-11-24T12:00:00Z"}})

test_holds_the_shift_while_mirroring if {
	d := mirror_then_shift.decision with input as {"state": stepped, "observed": mirroring, "parameters": params, "now": "2026-11-24T12:00:45Z"}
	d.state.weights == {"v1": 100, "v2": 0}
	d.state.mirror.since == "2026-11-24T12:00:00Z"
	d.outcome == "Hold"
	d.requeueAfter == "15s"
	d.message == "mirroring 50% of the requests to v2; the first shift at 2026-11-24T12:01:00Z at the earliest"
	count(d.events) == 0
}

test_lets_the_first_shift_through_after_the_duration if {
	d := mirror_then_shift.decision with input as {"state": stepped, "observed": mirroring, "parameters": params, "now": "2026-11-24T12:01:00Z"}
	d.state.weights == {"v1": 90, "v2": 10}
	d.state.mirror == null
	d.outcome == "Pass"
}

test_keeps_mirroring_while_the_policies_before_hold if {
	held := object.union(fresh, {"phase": "Progressing"})
	d := mirror_then_shift.decision with input as {"state": held, "observed": mirroring, "parameters": params, "now": "2026-11-24T12:02:00Z"}
	d.state.weights == {"v1": 100, "v2": 0}
	d.state.mirror.since == "2026-11-24T12:00:00Z"
}

test_mirrors_while_shifting_when_asked if {
	p := object.union(params, {"whileShifting": true})
	observed := object.union(mirroring, {"weights": {"v1": 90, "v2": 10}})
	next := object.union(stepped, {"weights": {"v1": 80, "v2": 20}})
	d := mirror_then_shift.decision with input as {"state": next, "observed": observed, "parameters": p, "now": "2026-11-24T12:05:00Z"}
	d.state.weights == {"v1": 80, "v2": 20}
	d.state.mirror.percent == 50
}

test_a_rollback_on_mirrored_requests_ends_the_mirror if {
	rolled := object.union(fresh, {"phase": "RolledBack", "lastStepTime": "2026-11-24T12:00:30Z"})
	d := mirror_then_shift.decision with input as {"state": rolled, "observed": mirroring, "parameters": params, "now": "2026-11-24T12:00:30Z"}
	d.state.phase == "RolledBack"
	d.state.mirror == null
}

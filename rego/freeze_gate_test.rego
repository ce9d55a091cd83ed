package kubist.policies.freeze_gate_test

import data.kubist.policies.freeze_gate as policy

served := {"weights": {"v1": 80, "v2": 20}, "phase": "Progressing", "lastStepTime": "2026-12-24T06:00:00Z"}

forward := {
	"baseline": "v1", "canary": "v2",
	"weights": {"v1": 70, "v2": 30},
	"phase": "Progressing",
	"lastStepTime": "2026-12-24T12:00:00Z",
}

back := object.union(forward, {"weights": {"v1": 100, "v2": 0}, "phase": "RolledBack"})

frozen_tree := {
	"project": {"name": "shop", "labels": {}, "annotations": {"kubist.io/freeze": "incident 42"}},
	"cluster": {"name": "eu-1", "labels": {}, "annotations": {}},
}

window := {"from": "2026-12-24T00:00:00Z", "to": "2026-12-27T00:00:00Z", "reason": "holidays"}

run(state, tree, windows, now) := d if {
	d := policy.decision with input as {
		"state": state, "observed": served, "tree": tree,
		"parameters": {"windows": windows}, "now": now,
	}
}

test_not_frozen_passes if {
	d := run(forward, {"project": {"name": "shop", "labels": {}, "annotations": {}}}, [], "2026-12-24T12:00:00Z")
	d.outcome == "Pass"
	d.state == forward
}

test_a_frozen_project_holds_a_step if {
	d := run(forward, frozen_tree, [], "2026-12-24T12:00:00Z")
	d.outcome == "Gate"
	d.state.weights == served.weights
	d.state.lastStepTime == served.lastStepTime
	d.message == "Project shop is frozen: incident 42: keeping the weights served now"
	d.requeueAfter == "30s"
	d.events[0].reason == "Frozen"
}

test_a_rollback_passes_a_freeze if {
	d := run(back, frozen_tree, [window], "2026-12-25T12:00:00Z")
	d.outcome == "Pass"
	d.state == back
}

test_a_lowered_weight_passes_a_freeze if {
	d := run(object.union(forward, {"weights": {"v1": 90, "v2": 10}}), frozen_tree, [], "2026-12-24T12:00:00Z")
	d.outcome == "Pass"
}

test_a_window_holds_from_its_start_until_its_end if {
	run(forward, {}, [window], "2026-12-23T23:59:59Z").outcome == "Pass"
	d := run(forward, {}, [window], "2026-12-24T00:00:00Z")
	d.outcome == "Gate"
	d.message == "frozen from 2026-12-24T00:00:00Z to 2026-12-27T00:00:00Z: holidays: keeping the weights served now"
	run(forward, {}, [window], "2026-12-27T00:00:00Z").outcome == "Pass"
}

test_every_reason_is_named if {
	d := run(forward, frozen_tree, [window], "2026-12-25T00:00:00Z")
	d.message == "Project shop is frozen: incident 42; frozen from 2026-12-24T00:00:00Z to 2026-12-27T00:00:00Z: holidays: keeping the weights served now"
}

test_no_change_passes if {
	d := run(object.union(forward, {"weights": served.weights}), frozen_tree, [], "2026-12-24T12:00:00Z")
	d.outcome == "Pass"
	d.message == "no weight change proposed"
}

test_a_plan_revert_passes_a_freeze if {
	d := policy.decision with input as {
		"state": forward, "observed": served, "tree": frozen_tree,
		"parameters": {"windows": []}, "now": "2026-12-24T12:00:00Z",
		"resource": {"metadata": {"labels": {"kubist.io/plan-role": "revert"}}},
	}
	d.outcome == "Pass"
	d.state == forward
}

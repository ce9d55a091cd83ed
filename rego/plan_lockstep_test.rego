package kubist.policies.plan_lockstep_test

import data.kubist.policies.plan_lockstep as policy

served := {"weights": {"v1": 80, "v2": 20}, "phase": "Progressing", "lastStepTime": "2026-12-07T10:00:00Z"}

forward := {
	"baseline": "v1", "canary": "v2",
	"weights": {"v1": 60, "v2": 40},
	"phase": "Progressing",
	"lastStepTime": "2026-12-07T10:01:00Z",
}

plan(phase, group) := {"name": "shop", "phase": phase, "wave": 1, "group": group}

peer(route, phase, w) := {"route": route, "release": sprintf("shop-%s", [route]), "phase": phase, "canaryWeight": w}

run(state, p) := d if {
	d := policy.decision with input as {"state": state, "observed": served, "plan": p, "now": "2026-12-07T10:01:00Z"}
}

test_outside_a_plan_it_passes if {
	d := policy.decision with input as {"state": forward, "observed": served, "now": "2026-12-07T10:01:00Z"}
	d.outcome == "Pass"
	d.state == forward
}

test_a_release_steps_while_no_member_is_behind if {
	d := run(forward, plan("Progressing", [peer("reviews", "Progressing", 20)]))
	d.outcome == "Pass"
	d.state == forward
}

test_a_release_ahead_of_its_group_holds if {
	d := run(forward, plan("Progressing", [peer("reviews", "Progressing", 0)]))
	d.outcome == "Gate"
	d.state.weights == served.weights
	d.message == "in lockstep with its group (ReleasePlan shop): holding at 20% while reviews at 0%"
}

test_a_promoted_member_is_never_behind if {
	run(forward, plan("Progressing", [peer("reviews", "Promoted", 0)])).outcome == "Pass"
}

test_a_member_rolling_back_rolls_the_group_back if {
	d := run(forward, plan("Progressing", [peer("reviews", "RolledBack", 0)]))
	d.outcome == "RollBack"
	d.state.phase == "RolledBack"
	d.state.weights == {"v1": 100, "v2": 0}
	d.message == "rolling back with its group (ReleasePlan shop): reviews RolledBack"
}

test_a_plan_rolled_back_or_aborted_ends_its_releases if {
	d := run(forward, plan("RolledBack", []))
	d.state.phase == "RolledBack"
	d.state.weights == {"v1": 100, "v2": 0}
	a := run(forward, plan("Aborted", []))
	a.state.phase == "Aborted"
	a.message == "ReleasePlan shop is Aborted: back to v1"
}

test_a_paused_plan_holds_its_releases if {
	d := run(forward, plan("Paused", []))
	d.outcome == "Gate"
	d.state.weights == served.weights
}

test_an_ended_release_stays_as_it_is if {
	promoted := object.union(forward, {"phase": "Promoted", "weights": {"v1": 0, "v2": 100}})
	d := policy.decision with input as {"state": promoted, "observed": promoted, "plan": plan("RolledBack", []), "now": "2026-12-07T10:01:00Z"}
	d.state == promoted
}

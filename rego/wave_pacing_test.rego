package kubist.policies.wave_pacing_test

import data.kubist.policies.wave_pacing as policy

params := {"soak": "1m", "parallelism": 0, "onFailure": "Halt"}

member(vc, started, phase) := {"virtualCluster": vc, "started": started, "phase": phase}

plan(waves) := {"phase": "Progressing", "subset": "v2", "waves": waves}

fresh := object.union(plan([
	{"name": "canary", "members": [member("a", false, "Pending")]},
	{"name": "eu", "members": [member("b", false, "Pending"), member("c", false, "Pending")]},
	{"name": "rest", "members": [member("d", false, "Pending")]},
]), {"phase": "Pending"})

run(state, p, now) := d if {
	d := policy.decision with input as {"state": state, "parameters": p, "now": now}
}

started(d) := [[w.name, m.virtualCluster] | some w in d.state.waves; some m in w.members; m.started]

test_the_first_wave_starts_at_once if {
	d := run(fresh, params, "2026-12-07T10:00:00Z")
	d.outcome == "Start"
	d.state.phase == "Progressing"
	started(d) == [["canary", "a"]]
	d.message == "wave 1/3 canary started"
}

test_a_wave_holds_until_every_member_is_promoted if {
	s := plan([
		{"name": "canary", "members": [member("a", true, "Progressing")]},
		{"name": "eu", "members": [member("b", false, "Pending")]},
	])
	d := run(s, params, "2026-12-07T10:00:00Z")
	d.outcome == "Hold"
	d.state == s
	d.message == "wave 1/2 canary: 0/1 promoted"
}

promoted_first := plan([
	{"name": "canary", "promoted": "2026-12-07T10:00:00Z", "members": [member("a", true, "Promoted")]},
	{"name": "eu", "members": [member("b", false, "Pending"), member("c", false, "Pending")]},
])

test_the_next_wave_waits_for_the_soak if {
	d := run(promoted_first, params, "2026-12-07T10:00:30Z")
	d.outcome == "Hold"
	d.state == promoted_first
	d.message == "wave 1/2 canary promoted; wave 2/2 eu starts at 2026-12-07T10:01:00Z, after a soak of 1m"
	d.requeueAfter == "30s"
}

test_the_next_wave_starts_after_the_soak if {
	d := run(promoted_first, params, "2026-12-07T10:01:00Z")
	d.outcome == "Start"
	started(d) == [["canary", "a"], ["eu", "b"], ["eu", "c"]]
	d.message == "wave 2/2 eu started"
}

test_promote_wave_skips_the_soak if {
	d := policy.decision with input as {"state": promoted_first, "parameters": params, "now": "2026-12-07T10:00:01Z", "action": {"name": "Promote"}}
	d.outcome == "Start"
	started(d) == [["canary", "a"], ["eu", "b"], ["eu", "c"]]
}

test_parallelism_starts_a_wave_a_few_at_a_time if {
	p := object.union(params, {"parallelism": 1})
	d := run(promoted_first, p, "2026-12-07T10:01:00Z")
	started(d) == [["canary", "a"], ["eu", "b"]]
	# b still runs: c waits
	s := plan([
		{"name": "canary", "promoted": "2026-12-07T10:00:00Z", "members": [member("a", true, "Promoted")]},
		{"name": "eu", "members": [member("b", true, "Progressing"), member("c", false, "Pending")]},
	])
	run(s, p, "2026-12-07T10:02:00Z").outcome == "Hold"
	# b promoted: c starts, no soak within a wave
	s2 := plan([
		{"name": "canary", "promoted": "2026-12-07T10:00:00Z", "members": [member("a", true, "Promoted")]},
		{"name": "eu", "members": [member("b", true, "Promoted"), member("c", false, "Pending")]},
	])
	d2 := run(s2, p, "2026-12-07T10:02:00Z")
	d2.outcome == "Start"
	started(d2) == [["canary", "a"], ["eu", "b"], ["eu", "c"]]
	d2.message == "wave 2/2 eu: starting c"
}

test_the_last_wave_promoted_promotes_the_plan if {
	s := plan([{"name": "canary", "promoted": "2026-12-07T10:00:00Z", "members": [member("a", true, "Promoted")]}])
	d := run(s, params, "2026-12-07T10:00:00Z")
	d.outcome == "Promote"
	d.state.phase == "Promoted"
}

test_an_empty_wave_is_skipped if {
	s := plan([
		{"name": "canary", "promoted": "2026-12-07T10:00:00Z", "members": [member("a", true, "Promoted")]},
		{"name": "empty", "members": []},
		{"name": "rest", "members": [member("d", false, "Pending")]},
	])
	d := run(s, params, "2026-12-07T10:05:00Z")
	started(d) == [["canary", "a"], ["rest", "d"]]
	d.message == "wave 3/3 rest started"
	s2 := plan([
		{"name": "canary", "promoted": "2026-12-07T10:00:00Z", "members": [member("a", true, "Promoted")]},
		{"name": "empty", "members": []},
	])
	run(s2, params, "2026-12-07T10:05:00Z").state.phase == "Promoted"
}

failing := plan([
	{"name": "canary", "promoted": "2026-12-07T10:00:00Z", "members": [member("a", true, "Promoted")]},
	{"name": "eu", "members": [member("b", true, "RolledBack"), member("c", true, "Progressing")]},
	{"name": "rest", "members": [member("d", false, "Pending")]},
])

test_a_failure_halts_the_plan if {
	d := run(failing, params, "2026-12-07T10:05:00Z")
	d.outcome == "Halt"
	d.state.phase == "Halted"
	started(d) == [["canary", "a"], ["eu", "b"], ["eu", "c"]]
	d.message == "b RolledBack: halting the plan"
	d.events[0].type == "Warning"
}

test_a_failure_rolls_the_plan_back if {
	d := run(failing, object.union(params, {"onFailure": "Rollback"}), "2026-12-07T10:05:00Z")
	d.outcome == "RollBack"
	d.state.phase == "RolledBack"
}

test_an_ended_plan_is_done if {
	d := run(object.union(failing, {"phase": "Halted"}), params, "2026-12-07T10:05:00Z")
	d.outcome == "Done"
	d.message == "plan is Halted"
}

test_a_plan_that_reaches_nothing_holds if {
	d := run(object.union(plan([{"name": "all", "members": []}]), {"phase": "Pending"}), params, "2026-12-07T10:00:00Z")
	d.outcome == "Hold"
	d.state.phase == "Pending"
	d.message == "the plan reaches no VirtualCluster: none of its waves selects one yet"
}

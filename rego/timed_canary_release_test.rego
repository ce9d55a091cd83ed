package kubist.policies.timed_canary_release_test

import data.kubist.policies.timed_canary_release

base := {
	"baseline": "v1", "canary": "v2",
	"weights": {"v1": 90, "v2": 10},
	"phase": "Progressing",
	"lastStepTime": "2026-11-24T12:00:00Z",
}

params := {"step": 10, "period": "30s"}

test_steps_when_period_passed if {
	d := timed_canary_release.decision with input as {
		"state": base, "parameters": params, "now": "2026-11-24T12:00:30Z",
	}
	d.state.weights == {"v1": 80, "v2": 20}
	d.state.phase == "Progressing"
	d.state.lastStepTime == "2026-11-24T12:00:30Z"
	d.outcome == "Step"
	d.requeueAfter == "30s"
}

test_first_step_from_pending_without_last_step_time if {
	state := object.remove(object.union(base, {"phase": "Pending", "weights": {"v1": 100, "v2": 0}}), ["lastStepTime"])
	d := timed_canary_release.decision with input as {"state": state, "parameters": params, "now": "2026-11-24T12:00:00Z"}
	d.state.weights == {"v1": 90, "v2": 10}
	d.state.phase == "Progressing"
}

test_holds_with_time_left if {
	d := timed_canary_release.decision with input as {
		"state": base, "parameters": params, "now": "2026-11-24T12:00:12Z",
	}
	d.state == base
	d.outcome == "Hold"
	d.requeueAfter == "18s"
}

test_time_left_to_the_millisecond if {
	d := timed_canary_release.decision with input as {
		"state": base, "parameters": params, "now": "2026-11-24T12:00:29.500Z",
	}
	d.requeueAfter == "500ms"
	d.message == "next step at 2026-11-24T12:00:30Z"
}

test_time_left_rounds_up_to_a_millisecond if {
	d := timed_canary_release.decision with input as {
		"state": base, "parameters": params, "now": "2026-11-24T12:00:29.9999995Z",
	}
	d.requeueAfter == "1ms"
}

test_promotes_capped_at_100 if {
	state := object.union(base, {"weights": {"v1": 5, "v2": 95}})
	d := timed_canary_release.decision with input as {"state": state, "parameters": params, "now": "2026-11-24T12:01:00Z"}
	d.state.weights == {"v1": 0, "v2": 100}
	d.state.phase == "Promoted"
	d.outcome == "Promote"
}

test_done_releases_do_not_move if {
	every phase in ["Promoted", "RolledBack", "Failed"] {
		state := object.union(base, {"phase": phase})
		d := timed_canary_release.decision with input as {"state": state, "parameters": params, "now": "2026-11-24T13:00:00Z"}
		d.state == state
		d.outcome == "Done"
	}
}

promote := {"name": "Promote", "user": "alice", "time": "2026-11-24T12:00:05Z"}

test_a_promote_action_steps_before_the_period_is_over if {
	d := timed_canary_release.decision with input as {
		"state": base, "parameters": params, "now": "2026-11-24T12:00:05Z", "action": promote,
	}
	d.state.weights == {"v1": 80, "v2": 20}
	d.state.lastStepTime == "2026-11-24T12:00:05Z"
	d.outcome == "Step"
}

test_other_actions_do_not_step if {
	d := timed_canary_release.decision with input as {
		"state": base, "parameters": params, "now": "2026-11-24T12:00:05Z", "action": {"name": "Resume"},
	}
	d.state == base
	d.outcome == "Hold"
}

# The executor gives input.nowNs and input.sinceLastStepNs (from
# input.state.lastStepTime); a test's input without them decides alike.
test_precomputed_times_decide_alike if {
	every now in ["2026-11-24T12:00:12Z", "2026-11-24T12:00:30Z", "2026-11-24T12:00:29.500Z"] {
		without := timed_canary_release.decision with input as {"state": base, "parameters": params, "now": now}
		with_times := timed_canary_release.decision with input as {
			"state": base, "parameters": params, "now": now,
			"nowNs": time.parse_rfc3339_ns(now),
			"sinceLastStepNs": time.parse_rfc3339_ns(now) - time.parse_rfc3339_ns(base.lastStepTime),
		}
		without == with_times
	}
}

package kubist.policies.blue_green_release_test

import data.kubist.policies.blue_green_release

params := {"previewWindow": "5m", "header": "X-Kubist-Preview", "maxErrorRate": 0.05, "maxLatencyP99Ms": 0, "minRequests": 20}

fresh := {"baseline": "blue", "canary": "green", "weights": {"blue": 100, "green": 0}, "phase": "Pending"}

previewing := object.union(fresh, {"phase": "Progressing", "lastStepTime": "2026-11-24T12:00:00Z", "preview": live})

live := {"header": "x-kubist-preview", "value": "green", "since": "2026-11-24T12:00:00Z"}

healthy := {"green": {"requests": 120, "errorRate": 0.01, "latencyP99Ms": 40}}

test_opens_the_preview if {
	d := blue_green_release.decision with input as {"state": fresh, "observed": {"preview": null}, "parameters": params, "metrics": {}, "now": "2026-11-24T12:00:00Z"}
	d.state.weights == {"blue": 100, "green": 0}
	d.state.phase == "Progressing"
	d.state.preview == live
	d.outcome == "Preview"
	d.requeueAfter == "5m"
}

test_holds_during_the_window if {
	d := blue_green_release.decision with input as {"state": previewing, "observed": {"preview": live}, "parameters": params, "metrics": healthy, "now": "2026-11-24T12:04:00Z"}
	d.state.weights == {"blue": 100, "green": 0}
	d.state.preview == live
	d.outcome == "Hold"
	d.requeueAfter == "60s"
}

test_switches_in_one_step_when_healthy_after_the_window if {
	d := blue_green_release.decision with input as {"state": previewing, "observed": {"preview": live}, "parameters": params, "metrics": healthy, "now": "2026-11-24T12:05:00Z"}
	d.state.weights == {"blue": 0, "green": 100}
	d.state.phase == "Promoted"
	d.state.preview == null
	d.outcome == "Promote"
}

test_rolls_back_in_one_step_when_unhealthy if {
	d := blue_green_release.decision with input as {"state": previewing, "observed": {"preview": live}, "parameters": params,
		"metrics": {"green": {"requests": 100, "errorRate": 0.2}}, "now": "2026-11-24T12:01:00Z"}
	d.state.weights == {"blue": 100, "green": 0}
	d.state.phase == "RolledBack"
	d.state.preview == null
	d.outcome == "RollBack"
}

test_too_slow_is_unhealthy if {
	p := object.union(params, {"maxLatencyP99Ms": 100})
	d := blue_green_release.decision with input as {"state": previewing, "observed": {"preview": live}, "parameters": p,
		"metrics": {"green": {"requests": 100, "errorRate": 0, "latencyP99Ms": 250}}, "now": "2026-11-24T12:06:00Z"}
	d.state.phase == "RolledBack"
}

test_holds_without_enough_preview_requests if {
	d := blue_green_release.decision with input as {"state": previewing, "observed": {"preview": live}, "parameters": params,
		"metrics": {"green": {"requests": 3, "errorRate": 0}}, "now": "2026-11-24T12:06:00Z"}
	d.state.weights == {"blue": 100, "green": 0}
	d.outcome == "Hold"
	contains(d.message, "fewer than minRequests 20")
}

test_promote_waives_the_window if {
	d := blue_green_release.decision with input as {"state": previewing, "observed": {"preview": live}, "parameters": params,
		"metrics": {}, "action": {"name": "Promote", "user": "alice"}, "now": "2026-11-24T12:01:00Z"}
	d.state.phase == "Promoted"
	d.message == "promoted by alice: all traffic switched to green"
}

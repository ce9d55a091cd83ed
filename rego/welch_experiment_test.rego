package kubist.policies.welch_experiment_test

import data.kubist.policies.welch_experiment as policy

params := {"step": 10, "period": "1m", "alpha": 0.05}

state := {
	"subsets": ["v1", "v2"],
	"weights": {"v1": 50, "v2": 50},
	"phase": "Running",
	"lastStepTime": "2026-11-24T12:00:00Z",
}

resource := {"spec": {"goal": {"metric": "latency", "objective": "Minimize"}}}

clear := {
	"v1": {"goal": {"mean": 120, "stddev": 30, "n": 400}},
	"v2": {"goal": {"mean": 95, "stddev": 28, "n": 400}},
}

close := {
	"v1": {"goal": {"mean": 100, "stddev": 30, "n": 20}},
	"v2": {"goal": {"mean": 99, "stddev": 30, "n": 20}},
}

run(s, m, now) := d if {
	d := policy.decision with input as {"state": s, "parameters": params, "metrics": m, "resource": resource, "now": now}
}

test_significantly_better_subset_gains_weight if {
	d := run(state, clear, "2026-11-24T12:01:00Z")
	d.state.weights == {"v1": 40, "v2": 60}
	d.state.winner == "v2"
	d.state.phase == "Running"
	d.state.pValues.v1 < 0.001
	d.outcome == "Step"
}

test_maximize_flips_the_winner if {
	r := {"spec": {"goal": {"metric": "custom", "objective": "Maximize"}}}
	d := policy.decision with input as {"state": state, "parameters": params, "metrics": clear, "resource": r, "now": "2026-11-24T12:01:00Z"}
	d.state.weights == {"v1": 60, "v2": 40}
	d.state.winner == "v1"
}

test_concludes_when_the_winner_has_everything if {
	s := object.union(state, {"weights": {"v1": 5, "v2": 95}})
	d := run(s, clear, "2026-11-24T12:01:00Z")
	d.state.weights == {"v1": 0, "v2": 100}
	d.state.phase == "Concluded"
	d.outcome == "Conclude"
}

test_no_significant_difference_holds if {
	d := run(state, close, "2026-11-24T12:01:00Z")
	d.state.weights == state.weights
	d.state.pValues.v1 > 0.05
	d.outcome == "Hold"
}

test_missing_goal_metric_holds if {
	d := run(state, {"v1": clear.v1}, "2026-11-24T12:01:00Z")
	d.state == state
	d.message == "holding: no goal metric (n >= 2) for v2"
}

test_not_due_holds if {
	d := run(state, clear, "2026-11-24T12:00:40Z")
	d.state == state
	d.requeueAfter == "20s"
}

test_three_subsets_move_from_each_worse_one if {
	s := {
		"subsets": ["a", "b", "c"],
		"weights": {"a": 34, "b": 33, "c": 33},
		"phase": "Running",
		"lastStepTime": "2026-11-24T12:00:00Z",
	}
	m := {
		"a": {"goal": {"mean": 200, "stddev": 20, "n": 300}},
		"b": {"goal": {"mean": 100, "stddev": 20, "n": 300}},
		"c": {"goal": {"mean": 101, "stddev": 20, "n": 300}},
	}
	d := run(s, m, "2026-11-24T12:01:00Z")
	d.state.weights == {"a": 24, "b": 43, "c": 33}
	d.state.winner == ""
}

test_welch_t_test_builtin if {
	r := kubist.welch_t_test({"mean": 10, "stddev": 2, "n": 30}, {"mean": 12, "stddev": 3, "n": 25})
	# Reference: t = -2/sqrt(4/30 + 9/25) = -2.8475; Welch-Satterthwaite
	# df = 40.475; two-sided p = 0.006891 (numerical integration of the t pdf).
	abs(r.t + 2.8475) < 0.0001
	abs(r.df - 40.475) < 0.001
	abs(r.p - 0.006891) < 0.000005
}

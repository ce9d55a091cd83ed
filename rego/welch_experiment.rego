# METADATA
# title: WelchExperiment
# description: Each period, moves `step` weight from every subset that Welch's t-test finds significantly worse on the goal metric to the best one; declares the winner once it beats all others.
# custom:
#   kinds: [Experiment]
#   parameters:
#     type: object
#     properties:
#       step:
#         description: Percentage points moved from each worse subset per period.
#         type: integer
#         minimum: 1
#         maximum: 100
#         default: 10
#       period:
#         description: Time between two moves, a duration such as 1m.
#         type: string
#         pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
#         default: 1m
#       alpha:
#         description: Significance level of the test.
#         type: number
#         exclusiveMinimum: true
#         minimum: 0
#         maximum: 0.5
#         default: 0.05
package kubist.policies.welch_experiment

import data.kubist.lib.canary

params := input.parameters

state := input.state

subsets := state.subsets

objective := object.get(input.resource, ["spec", "goal", "objective"], "Minimize")

# stats per subset: the goal metric as {mean, stddev, n}.
stats[s] := input.metrics[s].goal if {
	some s in subsets
	input.metrics[s].goal.n >= 2
}

missing := [s | some s in subsets; not stats[s]]

better(a, b) if {
	objective == "Minimize"
	a.mean < b.mean
}

better(a, b) if {
	objective == "Maximize"
	a.mean > b.mean
}

# best is the subset no other beats; ties go to the first by name.
best := sort([s |
	some s in subsets
	every o in subsets {
		not better(stats[o], stats[s])
	}
])[0]

p_value[s] := kubist.welch_t_test(stats[best], stats[s]).p if {
	some s in subsets
	s != best
}

worse := {s | some s, p in p_value; p < params.alpha}

winner if count(worse) == count(subsets) - 1

moved[s] := min([params.step, canary.weight(state.weights, s)]) if some s in worse

weights := {s: w |
	some s in subsets
	w := new_weight(s)
}

new_weight(s) := canary.weight(state.weights, s) + sum([m | some m in moved]) if s == best

new_weight(s) := canary.weight(state.weights, s) - object.get(moved, s, 0) if s != best

# next replaces (not merges) the weights and p-values of the state.
next := object.union(object.remove(state, ["weights", "pValues"]), {
	"weights": weights,
	"lastStepTime": input.now,
	"pValues": p_value,
	"winner": winner_name,
	"phase": phase,
})

winner_name := best if winner else := ""

phase := "Concluded" if {
	winner
	weights[best] == 100
} else := "Running"

decision := {"state": state, "outcome": "Done", "message": sprintf("experiment is %s", [state.phase])} if {
	not state.phase in {"Pending", "Running"}
} else := {
	"state": state,
	"outcome": "Hold",
	"message": sprintf("holding: no goal metric (n >= 2) for %s", [concat(", ", missing)]),
	"requeueAfter": params.period,
} if {
	count(missing) > 0
} else := {
	"state": state,
	"outcome": "Hold",
	"message": sprintf("next move at %s", [canary.next_step_at(state, params.period)]),
	"requeueAfter": left,
} if {
	not canary.due(state, params.period, input.now)
	left := canary.time_left(state, params.period, input.now)
} else := {
	"state": object.union(object.remove(state, ["pValues"]), {"pValues": p_value, "phase": "Running", "lastStepTime": input.now}),
	"outcome": "Hold",
	"message": sprintf("%s leads, but no difference is significant at alpha %v yet", [best, params.alpha]),
	"requeueAfter": params.period,
} if {
	count(worse) == 0
} else := {
	"state": next,
	"outcome": {"Concluded": "Conclude", "Running": "Step"}[next.phase],
	"message": message,
	"events": [canary.event("Step", message)],
	"requeueAfter": params.period,
} if {
	message := sprintf("%s is better than %s; weights now %v", [best, concat(", ", sort(worse)), weights])
}

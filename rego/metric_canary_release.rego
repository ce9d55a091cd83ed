# METADATA
# title: MetricCanaryRelease
# description: Steps the canary forward while a PromQL query of it stays within [min, max]; rolls back outside. Holds without data.
# custom:
#   kinds: [CanaryRelease]
#   queries: [query]
#   parameters:
#     type: object
#     required: [query]
#     properties:
#       query:
#         description: PromQL template returning one number per subset; {{subset}}, {{namespace}} and {{service}} are substituted.
#         type: string
#         minLength: 1
#       min:
#         description: Lowest acceptable value.
#         type: number
#       max:
#         description: Highest acceptable value.
#         type: number
#       step:
#         description: Percentage points per step.
#         type: integer
#         minimum: 1
#         maximum: 100
#         default: 10
#       period:
#         description: Time between two steps, a duration such as 30s or 5m.
#         type: string
#         pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
#         default: 30s
package kubist.policies.metric_canary_release

import data.kubist.lib.canary

params := input.parameters

state := input.state

value := input.metrics[state.canary].queries[params.query]

above_min if not params.min

above_min if value >= params.min

below_max if not params.max

below_max if value <= params.max

within if {
	above_min
	below_max
}

no_value_message := sprintf("holding: collecting subset %s's metrics since the last step until %s", [state.canary, input.observed.collectingUntil]) if {
	input.observed.collectingUntil
} else := sprintf("holding: no value of the query for subset %s", [state.canary])

bounds := sprintf("[%v, %v]", [object.get(params, "min", "-inf"), object.get(params, "max", "+inf")])

decision := {"state": state, "outcome": "Done", "message": sprintf("release is %s", [state.phase])} if {
	not canary.active(state)
} else := {
	"state": state,
	"outcome": "Hold",
	"message": no_value_message,
	"requeueAfter": params.period,
} if {
	not value
	canary.canary_weight(state) > 0
	# A person's Promote waives the wait for data, not a value out of bounds.
	not canary.promoting
} else := {
	"state": canary.roll_back(state, input.now),
	"outcome": "RollBack",
	"message": message,
	"events": [canary.warning("RollBack", message)],
} if {
	value
	not within
	message := sprintf("canary %s query value %v is outside %s", [state.canary, value, bounds])
} else := {
	"state": next,
	"outcome": {"Promoted": "Promote", "Progressing": "Step"}[next.phase],
	"message": message,
	"events": [canary.event("Step", message)],
	"requeueAfter": params.period,
} if {
	canary.due(state, params.period, input.now)
	next := canary.step_forward(state, params.step, input.now)
	message := sprintf("canary %s at %d%%", [state.canary, canary.canary_weight(next)])
} else := {
	"state": state,
	"outcome": "Hold",
	"message": sprintf("within %s; next step at %s", [bounds, canary.next_step_at(state, params.period)]),
	"requeueAfter": left,
} if {
	left := canary.time_left(state, params.period, input.now)
}

# METADATA
# title: TimedCanaryRelease
# description: Raises the canary's weight by `step` percent every `period` until it carries all traffic.
# custom:
#   kinds: [CanaryRelease]
#   parameters:
#     type: object
#     properties:
#       step:
#         description: Percentage points added to the canary's weight at each step.
#         type: integer
#         minimum: 1
#         maximum: 100
#         default: 10
#       period:
#         description: Time between two steps, a duration such as 30s or 5m.
#         type: string
#         pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
#         default: 30s
package kubist.policies.timed_canary_release

import data.kubist.lib.canary

decision := {
	"state": next,
	"outcome": outcome,
	"message": message,
	"events": [{"type": "Normal", "reason": outcome, "message": message}],
	"requeueAfter": input.parameters.period,
} if {
	# canary.active(input.state), without the cost of a call
	input.state.phase in {"Pending", "Progressing"}
	canary.step_due(input.parameters.period)
	next := canary.step_forward(input.state, input.parameters.step, input.now)
	outcome := {"Promoted": "Promote", "Progressing": "Step"}[next.phase]
	message := sprintf("canary %s at %d%%", [input.state.canary, next.weights[input.state.canary]])
} else := {
	"state": input.state,
	"outcome": "Hold",
	"message": sprintf("next step at %s", [canary.next_step_at(input.state, input.parameters.period)]),
	"requeueAfter": left,
} if {
	input.state.phase in {"Pending", "Progressing"}
	left := canary.step_time_left(input.parameters.period)
} else := {
	"state": input.state,
	"outcome": "Done",
	"message": sprintf("release is %s", [input.state.phase]),
}

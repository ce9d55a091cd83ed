# METADATA
# title: HealthBasedCanaryRelease
# description: Steps the canary forward while its error rate stays at or under `maxErrorRate`; rolls back above it. Holds without enough data.
# custom:
#   kinds: [CanaryRelease]
#   parameters:
#     type: object
#     properties:
#       step:
#         description: Percentage points per step, forward or back.
#         type: integer
#         minimum: 1
#         maximum: 100
#         default: 10
#       period:
#         description: Time between two steps, a duration such as 30s or 5m.
#         type: string
#         pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
#         default: 30s
#       maxErrorRate:
#         description: Highest healthy share of 5xx responses of the canary, from 0 to 1.
#         type: number
#         minimum: 0
#         maximum: 1
#         default: 0.3
#       minRequests:
#         description: Fewest canary requests in the metrics window to judge its health.
#         type: integer
#         minimum: 1
#         default: 20
#       rollback:
#         description: immediate sends all traffic back to the baseline at once; gradual steps back by `step` each period and forward again once healthy.
#         type: string
#         enum: [immediate, gradual]
#         default: immediate
package kubist.policies.health_based_canary_release

import data.kubist.lib.canary
import data.kubist.lib.format

# The first step of a release that has not started yet sends no traffic to
# judge; it goes ahead like a timed step.
not_started if {
	input.state.phase == "Pending"
	canary.canary_weight(input.state) == 0
}

# The canary's metrics, input.metrics[input.state.canary], are read where
# they are used: a rule naming them would cost a lookup at every read.
enough_data if input.metrics[input.state.canary].requests >= input.parameters.minRequests

healthy if {
	enough_data
	input.metrics[input.state.canary].errorRate <= input.parameters.maxErrorRate
}

unhealthy if {
	enough_data
	input.metrics[input.state.canary].errorRate > input.parameters.maxErrorRate
}

no_data_message := sprintf("holding: collecting subset %s's metrics since the last step until %s", [input.state.canary, input.observed.collectingUntil]) if {
	not input.metrics[input.state.canary]
	input.observed.collectingUntil
} else := sprintf("holding: no metrics for subset %s", [input.state.canary]) if {
	not input.metrics[input.state.canary]
} else := sprintf("holding: %v requests to subset %s, fewer than minRequests %v", [input.metrics[input.state.canary].requests, input.state.canary, input.parameters.minRequests]) if {
	not enough_data
}

unhealthy_message := sprintf("canary %s error rate %s is above maxErrorRate %v (%s)", [input.state.canary, format.percent(input.metrics[input.state.canary].errorRate), input.parameters.maxErrorRate, format.percent(input.parameters.maxErrorRate)])

# Whether the next step is due, once for every branch below.
due if canary.step_due(input.parameters.period)

decision := {"state": input.state, "outcome": "Done", "message": sprintf("release is %s", [input.state.phase])} if {
	# not canary.active(input.state), without the cost of a call
	not input.state.phase in {"Pending", "Progressing"}
} else := roll_back_now if {
	unhealthy
	input.parameters.rollback == "immediate"
} else := step_back if {
	unhealthy
	input.parameters.rollback == "gradual"
	due
} else := hold(unhealthy_message, "Warning", canary.step_time_left(input.parameters.period)) if {
	unhealthy
} else := step_forward if {
	not_started
	due
} else := step_forward if {
	# A person's Promote waives the wait for data, not an unhealthy verdict.
	canary.promoting
} else := hold(no_data_message, "Normal", input.parameters.period) if {
	not enough_data
} else := step_forward if {
	healthy
	due
} else := {
	"state": input.state,
	"outcome": "Hold",
	"message": sprintf("healthy; next step at %s", [canary.next_step_at(input.state, input.parameters.period)]),
	"requeueAfter": left,
} if {
	healthy
	left := canary.step_time_left(input.parameters.period)
}

step_forward := {
	"state": next,
	"outcome": {"Promoted": "Promote", "Progressing": "Step"}[next.phase],
	"message": message,
	"events": [{"type": "Normal", "reason": "Step", "message": message}],
	"requeueAfter": input.parameters.period,
} if {
	next := canary.step_forward(input.state, input.parameters.step, input.now)
	message := sprintf("canary %s at %d%%", [input.state.canary, next.weights[input.state.canary]])
}

roll_back_now := {
	"state": canary.roll_back(input.state, input.now),
	"outcome": "RollBack",
	"message": unhealthy_message,
	"events": [{"type": "Warning", "reason": "RollBack", "message": unhealthy_message}],
}

step_back := {
	"state": next,
	"outcome": "StepBack",
	"message": message,
	"events": [{"type": "Warning", "reason": "StepBack", "message": message}],
	"requeueAfter": input.parameters.period,
} if {
	next := canary.step_back(input.state, input.parameters.step, input.now)
	message := sprintf("%s; canary back to %d%%", [unhealthy_message, next.weights[input.state.canary]])
}

# hold keeps the state and emits an Event of the given type.
hold(message, event_type, requeue) := {
	"state": input.state, "outcome": "Hold", "message": message, "requeueAfter": requeue,
	"events": [{"type": event_type, "reason": "Hold", "message": message}],
}

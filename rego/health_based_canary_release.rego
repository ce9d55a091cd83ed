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

params := input.parameters

state := input.state

# The first step of a release that has not started yet sends no traffic to
# judge; it goes ahead like a timed step.
not_started if {
	state.phase == "Pending"
	canary.canary_weight(state) == 0
}

canary_metrics := input.metrics[state.canary]

enough_data if canary_metrics.requests >= params.minRequests

healthy if {
	enough_data
	canary_metrics.errorRate <= params.maxErrorRate
}

unhealthy if {
	enough_data
	canary_metrics.errorRate > params.maxErrorRate
}

no_data_message := sprintf("holding: no metrics for subset %s", [state.canary]) if {
	not canary_metrics
} else := sprintf("holding: %v requests to subset %s, fewer than minRequests %v", [canary_metrics.requests, state.canary, params.minRequests]) if {
	not enough_data
}

unhealthy_message := sprintf("canary %s error rate %v is above maxErrorRate %v", [state.canary, canary_metrics.errorRate, params.maxErrorRate])

# Whether the next step is due, once for every branch below.
due if canary.step_due(params.period)

decision := {"state": state, "outcome": "Done", "message": sprintf("release is %s", [state.phase])} if {
	not canary.active(state)
} else := roll_back_now if {
	unhealthy
	params.rollback == "immediate"
} else := step_back if {
	unhealthy
	params.rollback == "gradual"
	due
} else := hold(unhealthy_message, "Warning", canary.step_time_left(params.period)) if {
	unhealthy
} else := step_forward if {
	not_started
	due
} else := step_forward if {
	# A person's Promote waives the wait for data, not an unhealthy verdict.
	canary.promoting
} else := hold(no_data_message, "Normal", params.period) if {
	not enough_data
} else := step_forward if {
	healthy
	due
} else := hold(sprintf("healthy; next step at %s", [canary.next_step_at(state, params.period)]), "", left) if {
	healthy
	left := canary.step_time_left(params.period)
}

step_forward := {
	"state": next,
	"outcome": {"Promoted": "Promote", "Progressing": "Step"}[next.phase],
	"message": message,
	"events": [{"type": "Normal", "reason": "Step", "message": message}],
	"requeueAfter": params.period,
} if {
	next := canary.step_forward(state, params.step, input.now)
	message := sprintf("canary %s at %d%%", [state.canary, next.weights[state.canary]])
}

roll_back_now := {
	"state": canary.roll_back(state, input.now),
	"outcome": "RollBack",
	"message": unhealthy_message,
	"events": [{"type": "Warning", "reason": "RollBack", "message": unhealthy_message}],
}

step_back := {
	"state": next,
	"outcome": "StepBack",
	"message": message,
	"events": [{"type": "Warning", "reason": "StepBack", "message": message}],
	"requeueAfter": params.period,
} if {
	next := canary.step_back(state, params.step, input.now)
	message := sprintf("%s; canary back to %d%%", [unhealthy_message, next.weights[state.canary]])
}

# hold keeps the state; a non-empty event type also emits an Event.
hold(message, event_type, requeue) := {"state": state, "outcome": "Hold", "message": message, "requeueAfter": requeue} if {
	event_type == ""
} else := {
	"state": state, "outcome": "Hold", "message": message, "requeueAfter": requeue,
	"events": [{"type": event_type, "reason": "Hold", "message": message}],
}

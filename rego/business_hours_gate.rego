# METADATA
# title: BusinessHoursGate
# description: Outside the window of `days` from `from` to `to` in `timezone`, reverts weight changes proposed by earlier policies to the weights served now. Rollbacks pass unless allowRollback is false.
# custom:
#   kinds: [CanaryRelease, Experiment]
#   gate: true
#   parameters:
#     type: object
#     properties:
#       timezone:
#         description: IANA time zone of the window, e.g. Europe/Amsterdam.
#         type: string
#         default: UTC
#       from:
#         description: Start of the window, HH:MM.
#         type: string
#         pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$'
#         default: "09:00"
#       to:
#         description: End of the window (exclusive), HH:MM.
#         type: string
#         pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$'
#         default: "17:00"
#       days:
#         description: Days the window is open.
#         type: array
#         items:
#           type: string
#           enum: [Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday]
#         default: [Monday, Tuesday, Wednesday, Thursday, Friday]
#       allowRollback:
#         description: Let rollbacks through outside the window.
#         type: boolean
#         default: true
package kubist.policies.business_hours_gate

import data.kubist.lib.canary

observed := object.get(input, "observed", {})

# The time of day in the window's time zone, HH:MM: such strings (the
# parameters' pattern) sort as the times they name.
now_hhmm := time.format([canary.now_ns, input.parameters.timezone, "15:04"])

day := time.weekday([canary.now_ns, input.parameters.timezone])

minutes(hhmm) := (to_number(substring(hhmm, 0, 2)) * 60) + to_number(substring(hhmm, 3, 2))

# A rollback lowers every weight that is not the baseline's.
rollback if input.state.phase == "RolledBack"

rollback if {
	input.state.canary
	canary.canary_weight(input.state) < canary.weight(observed.weights, input.state.canary)
}

# Opens later today: requeue when it does; otherwise look again in 15 minutes.
requeue := sprintf("%dm", [minutes(input.parameters.from) - minutes(now_hhmm)]) if {
	day in input.parameters.days
	now_hhmm < input.parameters.from
} else := "15m"

# The messages name the window (days, hours, time zone) each in its own
# sprintf: only one of them is written per decision.
decision := {
	"state": input.state, "outcome": "Pass",
	"message": sprintf("inside the window %s %s-%s %s", [concat(",", input.parameters.days), input.parameters.from, input.parameters.to, input.parameters.timezone]),
} if {
	# The window is open.
	day in input.parameters.days
	now_hhmm >= input.parameters.from
	now_hhmm < input.parameters.to
} else := {"state": input.state, "outcome": "Pass", "message": "no weight change proposed"} if {
	not canary.changed(input.state, observed)
} else := {"state": input.state, "outcome": "Pass", "message": "rollbacks pass outside the window"} if {
	input.parameters.allowRollback
	rollback
} else := {
	"state": canary.revert(input.state, observed),
	"outcome": "Gate",
	"message": message,
	"events": [canary.event("OutsideBusinessHours", message)],
	"requeueAfter": requeue,
} if {
	message := sprintf("outside the window %s %s-%s %s: keeping the weights served now", [concat(",", input.parameters.days), input.parameters.from, input.parameters.to, input.parameters.timezone])
}

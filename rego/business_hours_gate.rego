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

params := input.parameters

state := input.state

observed := object.get(input, "observed", {})

clock := time.clock([canary.now_ns, params.timezone])

day := time.weekday([canary.now_ns, params.timezone])

minutes(hhmm) := (to_number(substring(hhmm, 0, 2)) * 60) + to_number(substring(hhmm, 3, 2))

now_minutes := (clock[0] * 60) + clock[1]

# HH:MM strings (the parameters' pattern) sort as the times they name.
now_hhmm := sprintf("%02d:%02d", [clock[0], clock[1]])

open if {
	day in params.days
	now_hhmm >= params.from
	now_hhmm < params.to
}

# A rollback lowers every weight that is not the baseline's.
rollback if state.phase == "RolledBack"

rollback if {
	state.canary
	canary.canary_weight(state) < canary.weight(observed.weights, state.canary)
}

window := sprintf("%s %s-%s %s", [concat(",", params.days), params.from, params.to, params.timezone])

# Opens later today: requeue when it does; otherwise look again in 15 minutes.
requeue := sprintf("%dm", [minutes(params.from) - now_minutes]) if {
	day in params.days
	now_minutes < minutes(params.from)
} else := "15m"

decision := {"state": state, "outcome": "Pass", "message": sprintf("inside the window %s", [window])} if {
	open
} else := {"state": state, "outcome": "Pass", "message": "no weight change proposed"} if {
	not canary.changed(state, observed)
} else := {"state": state, "outcome": "Pass", "message": "rollbacks pass outside the window"} if {
	params.allowRollback
	rollback
} else := {
	"state": canary.revert(state, observed),
	"outcome": "Gate",
	"message": message,
	"events": [canary.event("OutsideBusinessHours", message)],
	"requeueAfter": requeue,
} if {
	message := sprintf("outside the window %s: keeping the weights served now", [window])
}

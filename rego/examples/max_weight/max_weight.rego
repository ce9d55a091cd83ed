# METADATA
# title: MaxWeight
# description: Caps the canary's weight at `max` percent, so a release never shifts more than that.
# custom:
#   kinds: [CanaryRelease]
#   parameters:
#     type: object
#     properties:
#       max:
#         description: Highest weight the canary may receive.
#         type: integer
#         minimum: 0
#         maximum: 100
#         default: 50
package policies.max_weight

import data.kubist.lib.canary

decision := {
	"state": canary.with_canary_weight(input.state, input.parameters.max),
	"outcome": "Cap",
	"message": message,
	"events": [canary.event("Capped", message)],
} if {
	canary.canary_weight(input.state) > input.parameters.max
	message := sprintf("canary %s capped at %d%%", [input.state.canary, input.parameters.max])
} else := {
	"state": input.state,
	"outcome": "Pass",
	"message": sprintf("canary %s at or under %d%%", [input.state.canary, input.parameters.max]),
}

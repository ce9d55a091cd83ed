# METADATA
# title: FreezeGate
# description: While a Project, Cluster or VirtualCluster above the release is frozen (the annotation kubist.io/freeze, which kubist freeze sets to the reason) or during one of its windows, reverts weight changes proposed by earlier policies to the weights served now. Rollbacks always pass. Meant for the releasePolicies of a Project, so that one command stops the line for everything below it.
# custom:
#   kinds: [CanaryRelease, Experiment]
#   gate: true
#   parameters:
#     type: object
#     properties:
#       windows:
#         description: 'Freezes between two times (RFC 3339), each {from, to, reason}: from is inclusive, to exclusive.'
#         type: array
#         maxItems: 16
#         items:
#           type: object
#           required: [from, to]
#           additionalProperties: false
#           properties:
#             from:
#               type: string
#               pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'
#             to:
#               type: string
#               pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'
#             reason:
#               type: string
#               maxLength: 256
#         default: []
package kubist.policies.freeze_gate

import data.kubist.lib.canary

observed := object.get(input, "observed", {})

# The levels above the release, from the top, as input.tree names them.
levels := [["project", "Project"], ["cluster", "Cluster"], ["virtualCluster", "VirtualCluster"]]

# Why the release is frozen now: each frozen level, each open window.
freezes contains sprintf("%s %s is frozen: %s", [pair[1], level.name, reason]) if {
	some pair in levels
	level := input.tree[pair[0]]
	reason := level.annotations["kubist.io/freeze"]
}

freezes contains sprintf("frozen from %s to %s: %s", [w.from, w.to, object.get(w, "reason", "a freeze window")]) if {
	some w in input.parameters.windows
	canary.now_ns >= time.parse_rfc3339_ns(w.from)
	canary.now_ns < time.parse_rfc3339_ns(w.to)
}

# A rollback (or an abort) lowers the canary's weight: it always passes.
rollback if input.state.phase in {"RolledBack", "Aborted"}

# So does the release that sends a Route back to its baseline when a
# ReleasePlan rolls back.
rollback if input.resource.metadata.labels["kubist.io/plan-role"] == "revert"

rollback if {
	input.state.canary
	canary.canary_weight(input.state) < canary.weight(observed.weights, input.state.canary)
}

message := sprintf("%s: keeping the weights served now", [concat("; ", sort(freezes))])

decision := {"state": input.state, "outcome": "Pass", "message": "not frozen"} if {
	count(freezes) == 0
} else := {"state": input.state, "outcome": "Pass", "message": "no weight change proposed"} if {
	not canary.changed(input.state, observed)
} else := {"state": input.state, "outcome": "Pass", "message": "rollbacks pass a freeze"} if {
	rollback
} else := {
	"state": canary.revert(input.state, observed),
	"outcome": "Gate",
	"message": message,
	"events": [canary.event("Frozen", message)],
	# Unfreezing changes the Project, not the release: look again soon.
	"requeueAfter": "30s",
}

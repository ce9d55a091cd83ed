# METADATA
# title: ManualGate
# description: Caps the canary's weight at the approved weight (kubist canary approve --weight N, or the annotation kubist.io/approved-weight); without one, at the weight served now. Lower proposals, such as rollbacks, pass.
# custom:
#   kinds: [CanaryRelease]
#   gate: true
package kubist.policies.manual_gate

import data.kubist.lib.canary

state := input.state

annotation := input.resource.metadata.annotations["kubist.io/approved-weight"]

annotated := to_number(annotation) if {
	regex.match(`^(100|[1-9]?[0-9])$`, annotation)
}

# An Approve action (kubist canary approve --weight N) stores its weight in
# the status; the higher of the two approvals counts.
approvals contains annotated

approvals contains w if {
	w := object.get(input.resource, ["status", "approvedWeight"], null)
	is_number(w)
}

approved := max(approvals) if count(approvals) > 0

served := canary.weight(object.get(input.observed, "weights", {}), state.canary)

cap := approved if approved != null else := served

proposed := canary.canary_weight(state)

how_to := "approve with kubist canary approve --weight N, or annotate kubist.io/approved-weight"

# A malformed annotation counts as absent, with a Warning event saying so.
warnings := [canary.warning("InvalidApproval", msg) |
	annotation
	not annotated
	msg := sprintf("annotation kubist.io/approved-weight=%s is not a whole number from 0 to 100", [annotation])
]

decision := {
	"state": state,
	"outcome": "Pass",
	"message": sprintf("approved up to %d%%", [cap]),
	"events": warnings,
} if {
	proposed <= cap
} else := {
	"state": canary.revert(state, input.observed),
	"outcome": "Gate",
	"message": message,
	"events": array.concat(warnings, [canary.event("WaitingForApproval", message)]),
} if {
	cap == served
	message := sprintf("waiting for approval: proposed %d%%, approved %d%%; %s", [proposed, cap, how_to])
} else := {
	"state": object.union(canary.with_canary_weight(state, cap), {"phase": "Progressing"}),
	"outcome": "Gate",
	"message": message,
	"events": array.concat(warnings, [canary.event("WaitingForApproval", message)]),
} if {
	message := sprintf("capped at the approved %d%% (proposed %d%%); %s", [cap, proposed, how_to])
}

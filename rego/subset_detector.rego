# METADATA
# title: SubsetDetector
# description: Derives a Destination's subsets from the values of a label on its application's Deployments, unless spec.subsets declares them.
# custom:
#   kinds: [Destination]
#   parameters:
#     type: object
#     properties:
#       label:
#         description: Deployment label whose values name the subsets.
#         type: string
#         minLength: 1
#         default: version
package kubist.policies.subset_detector

label := input.parameters.label

declared if count(object.get(input.resource, ["spec", "subsets"], [])) > 0

# Subset names are DNS labels: lower case, anything else becomes "-".
subset_name(value) := trim(regex.replace(lower(value), `[^a-z0-9-]+`, "-"), "-")

values contains d.labels[label] if {
	some d in object.get(input.observed, "deployments", [])
}

detected := [{"name": subset_name(v), "labels": {label: v}} | some v in sort(values)]

decision := {
	"state": input.state,
	"outcome": "Declared",
	"message": "spec.subsets declares the subsets",
} if {
	declared
} else := {
	"state": object.union(input.state, {"subsets": detected}),
	"outcome": "Detected",
	"message": sprintf("subsets %s from label %s", [concat(", ", [s.name | some s in detected]), label]),
} if {
	count(detected) > 0
} else := {
	"state": input.state,
	"outcome": "Hold",
	"message": sprintf("no Deployment of the application carries the label %s", [label]),
	"events": [{"type": "Warning", "reason": "NoSubsets", "message": sprintf("no Deployment of the application carries the label %s", [label])}],
}

# METADATA
# title: WebhookGate
# description: Holds the release until an outside system's HTTP hook answers 2xx, before each step (when step) or before the promotion (when promotion); with when rollback, rolls the release back when the hook answers 2xx, wherever it sits in the chain. The executor calls the hook before the chain runs.
# custom:
#   kinds: [CanaryRelease]
#   gate: true
#   webhook: true
#   # YAML 1.1 reads a bare key on as true: the parameter is when now.
#   renamed:
#     "on": when
#   parameters:
#     type: object
#     properties:
#       secretRef:
#         description: Name of a Secret in the Kubist manager's namespace whose key url is the hook's URL (and key token, if any, a bearer token).
#         type: string
#         minLength: 1
#       service:
#         description: A cluster-local Service as NAME.NAMESPACE:PORT/PATH; the hook is http://NAME.NAMESPACE.svc:PORT/PATH.
#         type: string
#         pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.[a-z0-9]([-a-z0-9]*[a-z0-9])?:[0-9]{1,5}(/.*)?$'
#       timeout:
#         description: How long the hook may take to answer, a duration such as 10s.
#         type: string
#         pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
#         default: 10s
#       when:
#         description: "What the hook gates: each step, the promotion, or (2xx rolls back) the rollback."
#         type: string
#         enum: [step, promotion, rollback]
#         default: step
#       retry:
#         description: How soon to ask the hook again while it holds the release.
#         type: string
#         pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
#         default: 10s
package kubist.policies.webhook_gate

import data.kubist.lib.canary

params := input.parameters

state := input.state

observed := input.observed

# target is how the executor keys the hook's answer: the Secret or the Service.
target := object.get(params, "secretRef", object.get(params, "service", ""))

hook := object.get(object.get(input, "hooks", {}), target, {"error": "the hook was not called"})

passed if {
	hook.statusCode >= 200
	hook.statusCode < 300
}

# answer says what the hook answered, for messages.
answer := sprintf("answered %v in %vms", [hook.statusCode, round(hook.latencyMs)]) if {
	hook.statusCode
	not hook.error
} else := sprintf("failed: %s", [hook.error])

# reason quotes the start of the body of a refusal, when there is one.
reason := sprintf(" (%s)", [substring(hook.body, 0, 120)]) if {
	not passed
	hook.body != ""
} else := ""

stepping if {
	canary.canary_weight(state) > canary.weight(object.get(observed, "weights", {}), state.canary)
}

promoting if {
	state.phase == "Promoted"
	object.get(observed, "phase", "") != "Promoted"
}

gated if {
	params.when == "step"
	stepping
}

gated if {
	params.when == "promotion"
	promoting
}

hold_message := sprintf("waiting for hook %s (on %s): it %s%s", [target, params.when, answer, reason])

decision := {
	"state": canary.revert(state, observed),
	"outcome": "Gate",
	"message": hold_message,
	"events": [canary.event("WaitingForHook", hold_message)],
	"requeueAfter": params.retry,
} if {
	gated
	not passed
} else := {
	"state": canary.roll_back(state, input.now),
	"outcome": "RollBack",
	"message": message,
	"events": [canary.warning("RollBack", message)],
} if {
	params.when == "rollback"
	canary.active(state)
	passed
	message := sprintf("the rollback hook %s %s", [target, answer])
} else := {
	"state": state,
	"outcome": "Pass",
	"message": sprintf("hook %s (on %s) %s", [target, params.when, answer]),
	"requeueAfter": params.retry,
} if {
	params.when == "rollback"
	canary.active(state)
} else := {
	"state": state,
	"outcome": "Pass",
	"message": sprintf("hook %s (on %s) %s", [target, params.when, answer]),
}

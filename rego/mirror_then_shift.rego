# METADATA
# title: MirrorThenShift
# description: Mirrors `percent` of the requests to the canary (their responses dropped) for `duration` before the policies before it shift any traffic, so that they judge the canary on real requests that no user depends on; with `whileShifting`, mirrors until the release ends. Put it after the canary policy (gates may follow it).
# custom:
#   kinds: [CanaryRelease]
#   afterSteps: it mirrors, but the first shift does not wait for the mirroring (the policies after it shift at once)
#   parameters:
#     type: object
#     properties:
#       percent:
#         description: Share of the requests mirrored to the canary, in percent.
#         type: integer
#         minimum: 1
#         maximum: 100
#         default: 100
#       duration:
#         description: How long the canary only receives mirrored requests before the first shift, a duration such as 1m.
#         type: string
#         pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
#         default: 1m
#       whileShifting:
#         description: Keep mirroring while the weights shift, until the release is promoted or rolled back.
#         type: boolean
#         default: false
package kubist.policies.mirror_then_shift

import data.kubist.lib.canary

params := input.parameters

state := input.state

observed := input.observed

live := observed.mirror if is_object(observed.mirror)

mirror := {"subset": state.canary, "percent": params.percent, "since": since}

since := live.since if live

since := input.now if not live

# Nothing shifted yet: the canary carries no weight in what is served.
unshifted if canary.weight(observed.weights, state.canary) == 0

elapsed_ns := time.parse_rfc3339_ns(input.now) - time.parse_rfc3339_ns(live.since)

mirrored_long_enough if {
	live
	elapsed_ns >= time.parse_duration_ns(params.duration)
}

# held keeps what is served, mirroring: the release is under way.
held := object.union(state, {"weights": observed.weights, "phase": "Progressing", "mirror": mirror, "lastStepTime": observed.lastStepTime}) if {
	is_string(observed.lastStepTime)
} else := object.remove(object.union(state, {"weights": observed.weights, "phase": "Progressing", "mirror": mirror}), ["lastStepTime"])

shift_at := time.format([time.parse_rfc3339_ns(since) + time.parse_duration_ns(params.duration), "UTC", "2006-01-02T15:04:05Z07:00"])

left := canary.duration(time.parse_duration_ns(params.duration) - elapsed_ns) if live

left := params.duration if not live

decision := {"state": object.union(state, {"mirror": null}), "outcome": "Pass", "message": sprintf("release is %s: no mirroring", [state.phase])} if {
	not canary.active(state)
} else := {
	"state": held,
	"outcome": outcome,
	"message": message,
	"events": [canary.event("Mirror", message) | not live],
	"requeueAfter": left,
} if {
	# Before the first shift: only mirrored requests reach the canary.
	unshifted
	not mirrored_long_enough
	outcome := {true: "Hold", false: "Mirror"}[is_live]
	message := sprintf("mirroring %d%% of the requests to %s; the first shift at %s at the earliest", [params.percent, state.canary, shift_at])
} else := {
	"state": object.union(state, {"mirror": mirror}),
	"outcome": "Pass",
	"message": sprintf("mirroring %d%% of the requests to %s while shifting", [params.percent, state.canary]),
} if {
	params.whileShifting
} else := {
	"state": object.union(state, {"mirror": mirror}),
	"outcome": "Pass",
	"message": sprintf("mirrored %d%% of the requests to %s since %s; mirroring until the first shift", [params.percent, state.canary, since]),
} if {
	# Mirrored long enough, but the policies before hold: keep mirroring,
	# so that they have the canary's figures to decide on.
	unshifted
	not canary.changed(state, observed)
} else := {
	"state": object.union(state, {"mirror": null}),
	"outcome": "Pass",
	"message": "shifting: no mirroring",
}

is_live if live

default is_live := false

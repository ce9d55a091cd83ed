# METADATA
# title: BlueGreenRelease
# description: Blue/green. Opens a preview route — requests with the header `header` set to the canary's subset name reach the canary — and, once the canary stayed healthy on them for `previewWindow`, switches all traffic to it in one step; rolls back in one step if it is unhealthy. Holds without enough preview requests.
# custom:
#   kinds: [CanaryRelease]
#   parameters:
#     type: object
#     properties:
#       previewWindow:
#         description: How long the canary is previewed, healthy, before the switch, a duration such as 5m.
#         type: string
#         pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
#         default: 5m
#       header:
#         description: Request header that selects the preview; its value is the canary's subset name.
#         type: string
#         pattern: '^[A-Za-z0-9-]+$'
#         default: x-kubist-preview
#       maxErrorRate:
#         description: Highest healthy share of 5xx responses of the canary, from 0 to 1.
#         type: number
#         minimum: 0
#         maximum: 1
#         default: 0.05
#       maxLatencyP99Ms:
#         description: Highest healthy 99th percentile latency of the canary in milliseconds; 0 does not check latency.
#         type: number
#         minimum: 0
#         default: 0
#       minRequests:
#         description: Fewest preview requests to the canary in the metrics window to judge its health.
#         type: integer
#         minimum: 1
#         default: 20
package kubist.policies.blue_green_release

import data.kubist.lib.canary
import data.kubist.lib.format

params := input.parameters

state := input.state

live := input.observed.preview if is_object(input.observed.preview)

canary_metrics := input.metrics[state.canary]

enough_data if canary_metrics.requests >= params.minRequests

too_slow if {
	params.maxLatencyP99Ms > 0
	canary_metrics.latencyP99Ms > params.maxLatencyP99Ms
}

unhealthy if {
	enough_data
	canary_metrics.errorRate > params.maxErrorRate
}

unhealthy if {
	enough_data
	too_slow
}

healthy if {
	enough_data
	not unhealthy
}

preview := {"header": lower(params.header), "value": state.canary, "since": since}

since := live.since if live

since := input.now if not live

elapsed_ns := time.parse_rfc3339_ns(input.now) - time.parse_rfc3339_ns(live.since)

previewed_long_enough if {
	live
	elapsed_ns >= time.parse_duration_ns(params.previewWindow)
}

left := canary.duration(time.parse_duration_ns(params.previewWindow) - elapsed_ns) if live

left := params.previewWindow if not live

switch_at := time.format([time.parse_rfc3339_ns(since) + time.parse_duration_ns(params.previewWindow), "UTC", "2006-01-02T15:04:05Z07:00"])

figures := sprintf("%v preview requests, error rate %s, p99 %s", [round(canary_metrics.requests), format.percent(canary_metrics.errorRate), p99])

p99 := format.ms(canary_metrics.latencyP99Ms) if {
	is_number(canary_metrics.latencyP99Ms)
} else := "n/a"

unhealthy_message := sprintf("canary %s unhealthy in preview (%s; maxErrorRate %v, maxLatencyP99Ms %v)", [state.canary, figures, params.maxErrorRate, params.maxLatencyP99Ms])

decision := {"state": object.union(state, {"preview": null}), "outcome": "Done", "message": sprintf("release is %s", [state.phase])} if {
	not canary.active(state)
} else := {
	"state": object.union(canary.roll_back(state, input.now), {"preview": null}),
	"outcome": "RollBack",
	"message": unhealthy_message,
	"events": [canary.warning("RollBack", unhealthy_message)],
} if {
	unhealthy
} else := switched(sprintf("canary %s healthy over the preview window (%s): all traffic switched to it", [state.canary, figures])) if {
	previewed_long_enough
	healthy
} else := switched(sprintf("promoted by %s: all traffic switched to %s", [input.action.user, state.canary])) if {
	# A person's Promote waives the wait, not an unhealthy verdict.
	live
	canary.promoting
} else := {
	"state": object.union(canary.with_canary_weight(state, 0), {"phase": "Progressing", "preview": preview, "lastStepTime": input.now}),
	"outcome": "Preview",
	"message": message,
	"events": [canary.event("Preview", message)],
	"requeueAfter": params.previewWindow,
} if {
	not live
	message := sprintf("previewing %s: requests with %s: %s reach it; the switch at %s at the earliest", [state.canary, preview.header, state.canary, switch_at])
} else := {
	"state": object.union(state, {"preview": preview}),
	"outcome": "Hold",
	"message": sprintf("previewing %s until %s (%s)", [state.canary, switch_at, figures]),
	"requeueAfter": left,
} if {
	not previewed_long_enough
	enough_data
} else := {
	"state": object.union(state, {"preview": preview}),
	"outcome": "Hold",
	"message": sprintf("previewing %s until %s at the earliest: %v preview requests so far, fewer than minRequests %v", [state.canary, switch_at, object.get(canary_metrics, "requests", 0), params.minRequests]),
	"requeueAfter": left,
} if {
	not previewed_long_enough
} else := {
	"state": object.union(state, {"preview": preview}),
	"outcome": "Hold",
	"message": sprintf("holding the switch: %v preview requests to %s, fewer than minRequests %v", [object.get(canary_metrics, "requests", 0), state.canary, params.minRequests]),
	"requeueAfter": "10s",
}

switched(message) := {
	"state": object.union(canary.with_canary_weight(state, 100), {"phase": "Promoted", "preview": null, "lastStepTime": input.now}),
	"outcome": "Promote",
	"message": message,
	"events": [canary.event("Promote", message)],
}

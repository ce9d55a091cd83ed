# Helpers shared by the canary policies, importable by user policies too as
# data.kubist.lib.canary. Weights are whole percentages per subset.
package kubist.lib.canary

# active holds while a release may still move traffic.
active(state) if state.phase in {"Pending", "Progressing"}

# weight of a subset in a weights object; absent subsets carry 0.
weight(weights, subset) := object.get(weights, subset, 0)

canary_weight(state) := object.get(state.weights, state.canary, 0)

# elapsed_ns since the last step; a release that never stepped is due at once.
elapsed_ns(state, now) := time.parse_rfc3339_ns(now) - time.parse_rfc3339_ns(state.lastStepTime) if {
	state.lastStepTime
}

due(state, period, now) if not state.lastStepTime

# A person's Promote action (kubist canary promote) makes the next step due now.
due(state, period, now) if promoting

# promoting holds in the run that applies a person's Promote action.
promoting if input.action.name == "Promote"

due(state, period, now) if elapsed_ns(state, now) >= time.parse_duration_ns(period)

# The same for input.state at input.now, faster: the chain gives each
# policy input.nowNs and input.sinceLastStepNs (from input.state's
# lastStepTime), so that no policy parses them again; inputs without them
# (a test's) get them parsed here.

# step_due holds when input.state's next step is due period after its
# last one (or at once: no step yet, or a person's Promote). OPA stops at
# the first definition that holds: the common one comes first, and a
# test's input without input.sinceLastStepNs is parsed last.
step_due(period) if input.sinceLastStepNs >= time.parse_duration_ns(period)

step_due(period) if not input.state.lastStepTime

step_due(period) if promoting

step_due(period) if {
	not input.sinceLastStepNs
	time.parse_rfc3339_ns(input.now) - time.parse_rfc3339_ns(input.state.lastStepTime) >= time.parse_duration_ns(period)
}

# step_time_left is time_left for input.state at input.now.
step_time_left(period) := kubist.format_duration(time.parse_duration_ns(period) - since_last_step_ns)

# now_ns is input.now in nanoseconds since the Unix epoch.
now_ns := input.nowNs if {
	input.nowNs
} else := time.parse_rfc3339_ns(input.now)

# since_last_step_ns is how long ago input.state's last step was.
since_last_step_ns := input.sinceLastStepNs if {
	input.sinceLastStepNs
} else := time.parse_rfc3339_ns(input.now) - time.parse_rfc3339_ns(input.state.lastStepTime)

# time_left until the next step, as a duration string: whole seconds when
# it is a whole number of them, otherwise milliseconds rounded up, so that
# a requeue falls due with the step and not up to a second later (the
# built-in kubist.format_duration).
time_left(state, period, now) := kubist.format_duration(time.parse_duration_ns(period) - elapsed_ns(state, now))

# duration formats nanoseconds as time_left does.
duration(ns) := kubist.format_duration(ns)

# next_step_at is when the next step falls due, to the second (RFC 3339,
# UTC): a hold's message names it rather than a countdown, so that holding
# again before then changes nothing in the resource's status.
next_step_at(state, period) := time.format([
	time.parse_rfc3339_ns(state.lastStepTime) + time.parse_duration_ns(period),
	"UTC", "2006-01-02T15:04:05Z07:00",
])

# with_canary_weight sets the canary's weight; the baseline gets the rest.
# (object.union merges objects recursively: the other subsets keep theirs.)
with_canary_weight(state, w) := object.union(state, {"weights": {state.canary: w, state.baseline: 100 - w}})

# step_forward raises the canary by step (capped at 100): Progressing, or
# Promoted once the canary carries everything. (The canary's weight and the
# phase are written out here rather than called for, here and in step_back:
# a call would cost more than the rest of the helper.)
step_forward(state, step, now) := object.union(state, {
	"weights": {state.canary: w, state.baseline: 100 - w},
	"phase": {true: "Promoted", false: "Progressing"}[w == 100],
	"lastStepTime": now,
}) if {
	w := min([100, object.get(state.weights, state.canary, 0) + step])
}

# step_back lowers the canary by step; at 0 the release is RolledBack.
step_back(state, step, now) := object.union(state, {
	"weights": {state.canary: w, state.baseline: 100 - w},
	"phase": {true: "RolledBack", false: "Progressing"}[w == 0],
	"lastStepTime": now,
}) if {
	w := max([0, object.get(state.weights, state.canary, 0) - step])
}

# roll_back sends every request to the baseline.
roll_back(state, now) := object.union(state, {
	"weights": {state.canary: 0, state.baseline: 100},
	"phase": "RolledBack",
	"lastStepTime": now,
})

# revert restores what is served now: weights, phase and last step time.
revert(state, observed) := object.union(state, {k: v |
	some k in {"weights", "phase", "lastStepTime"}
	v := observed[k]
})

# changed holds when a proposal moves weights away from what is served.
changed(state, observed) if state.weights != observed.weights

event(reason, message) := {"type": "Normal", "reason": reason, "message": message}

warning(reason, message) := {"type": "Warning", "reason": reason, "message": message}

# METADATA
# title: WavePacing
# description: 'Paces a ReleasePlan''s waves. The first wave starts at once; within a wave at most `parallelism` VirtualClusters release at a time (0 is all of them); the next wave starts once every release of the current one is promoted and `soak` has passed since the last promotion (a person''s promote-wave skips the soak). When a release fails (RolledBack, Aborted, Failed), `onFailure` says what the plan does: Halt starts nothing more; Rollback sends every VirtualCluster the plan reached back to the baseline.'
# custom:
#   kinds: [ReleasePlan]
#   parameters:
#     type: object
#     properties:
#       soak:
#         description: Time a promoted wave runs before the next wave starts, a duration such as 30s or 10m.
#         type: string
#         pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
#         default: 1m
#       parallelism:
#         description: Most VirtualClusters of a wave that release at once; 0 starts the whole wave together.
#         type: integer
#         minimum: 0
#         maximum: 64
#         default: 0
#       onFailure:
#         description: 'What a failed release does to the plan: Halt (start nothing more; the waves promoted keep the new subset) or Rollback (every VirtualCluster the plan reached goes back to the baseline).'
#         type: string
#         enum: [Halt, Rollback]
#         default: Halt
package kubist.policies.wave_pacing

import data.kubist.lib.canary

waves := input.state.waves

# The index of the last wave that started, -1 before the first.
current := max(array.concat([-1], [i | some i, w in waves; some m in w.members; m.started]))

started_members(w) := [m | some m in w.members; m.started]

# A wave is done when every member started and was promoted (a wave
# without members is done at once).
done(w) if {
	every m in w.members {
		m.started
		m.phase == "Promoted"
	}
}

failures := sort([sprintf("%s %s", [m.virtualCluster, m.phase]) |
	some w in waves
	some m in w.members
	m.started
	m.phase in {"Failed", "RolledBack", "Aborted"}
])

running(w) := count([m | some m in w.members; m.started; m.phase != "Promoted"])

# slots: how many more members of wave w may start now.
slots(w) := count(w.members) if input.parameters.parallelism == 0

slots(w) := input.parameters.parallelism - running(w) if input.parameters.parallelism > 0

unstarted(w) := [m.virtualCluster | some m in w.members; not m.started]

# start(i, n) marks the first n unstarted members of wave i started.
start(i, n) := object.union(input.state, {"waves": [wave |
	some j, w in waves
	wave := with_started(w, {vc | some vc in array.slice(unstarted(w), 0, n)}, i == j)
]})

with_started(w, names, true) := object.union(w, {"members": [m2 |
	some m in w.members
	m2 := object.union(m, {"started": is_started(m, names)})
]})

with_started(w, _, false) := w

is_started(m, _) if m.started

is_started(m, names) := m.virtualCluster in names if not m.started

# The next wave with members after the current one; none past the last.
next := min([i | some i, w in waves; i > current; count(w.members) > 0])

wave_name(i) := sprintf("wave %d/%d %s", [i + 1, count(waves), waves[i].name])

# When the current wave's soak ends.
soak_ends_ns := time.parse_rfc3339_ns(waves[current].promoted) + time.parse_duration_ns(input.parameters.soak)

soak_ends := time.format([soak_ends_ns, "UTC", "2006-01-02T15:04:05Z07:00"])

skipping_soak if input.action.name == "Promote"

decision := {"state": input.state, "outcome": "Done", "message": sprintf("plan is %s", [input.state.phase])} if {
	not input.state.phase in {"Pending", "Progressing"}
} else := {
	"state": object.union(input.state, {"phase": phase}),
	"outcome": outcome,
	"message": message,
	"events": [canary.warning(outcome, message)],
} if {
	count(failures) > 0
	[phase, outcome, verb] := {
		"Halt": ["Halted", "Halt", "halting the plan"],
		"Rollback": ["RolledBack", "RollBack", "rolling back every VirtualCluster the plan reached"],
	}[input.parameters.onFailure]
	message := sprintf("%s: %s", [concat(", ", failures), verb])
} else := {
	"state": input.state,
	"outcome": "Hold",
	"message": "the plan reaches no VirtualCluster: none of its waves selects one yet",
} if {
	count([m | some w in waves; some m in w.members]) == 0
} else := {
	"state": object.union(start(next, slots(waves[next])), {"phase": "Progressing"}),
	"outcome": "Start",
	"message": message,
	"events": [canary.event("WaveStarted", message)],
} if {
	current == -1
	message := sprintf("%s started", [wave_name(next)])
} else := {
	"state": start(current, n),
	"outcome": "Start",
	"message": message,
	"events": [canary.event("Started", message)],
} if {
	n := slots(waves[current])
	n > 0
	count(unstarted(waves[current])) > 0
	message := sprintf("%s: starting %s", [wave_name(current), concat(", ", array.slice(unstarted(waves[current]), 0, n))])
} else := {
	"state": input.state,
	"outcome": "Hold",
	"message": sprintf("%s: %d/%d promoted", [wave_name(current), count([m | some m in waves[current].members; m.phase == "Promoted"]), count(waves[current].members)]),
} if {
	not done(waves[current])
} else := {
	"state": object.union(input.state, {"phase": "Promoted"}),
	"outcome": "Promote",
	"message": message,
	"events": [canary.event("Promoted", message)],
} if {
	not next
	message := sprintf("every wave promoted %s", [input.state.subset])
} else := {
	"state": input.state,
	"outcome": "Hold",
	"message": sprintf("%s promoted; %s starts at %s, after a soak of %s", [wave_name(current), wave_name(next), soak_ends, input.parameters.soak]),
	"requeueAfter": canary.duration(soak_ends_ns - canary.now_ns),
} if {
	not skipping_soak
	canary.now_ns < soak_ends_ns
} else := {
	"state": start(next, slots(waves[next])),
	"outcome": "Start",
	"message": message,
	"events": [canary.event("WaveStarted", message)],
} if {
	message := sprintf("%s started", [wave_name(next)])
}

# METADATA
# title: PlanLockstep
# description: 'Keeps the releases a ReleasePlan started in one VirtualCluster (its group: one per Route of the plan) in lockstep. A release steps only while no other of its group is behind it, so that their weights never differ by more than one step; when one of them rolls back or is aborted, the others roll back with it; while the plan is paused they hold; when the plan rolls back or is aborted, so do they. A plan adds it, last, to the chain of every release it starts; elsewhere it passes.'
# custom:
#   kinds: [CanaryRelease]
#   gate: true
package kubist.policies.plan_lockstep

import data.kubist.lib.canary

observed := object.get(input, "observed", {})

plan := input.plan

mine := canary.weight(observed.weights, input.state.canary)

# A member's weight as the group compares it: a promoted one is at 100.
member_weight(m) := 100 if m.phase == "Promoted"

member_weight(m) := m.canaryWeight if m.phase != "Promoted"

behind := sort([sprintf("%s at %d%%", [m.route, member_weight(m)]) |
	some m in plan.group
	member_weight(m) < mine
])

fallen := sort([sprintf("%s %s", [m.route, m.phase]) |
	some m in plan.group
	m.phase in {"RolledBack", "Aborted", "Failed"}
])

live if input.state.phase in {"Pending", "Progressing", "Paused"}

ended_by_plan := {"RolledBack": "RolledBack", "Aborted": "Aborted"}

decision := {"state": input.state, "outcome": "Pass", "message": "not started by a ReleasePlan"} if {
	not input.plan
} else := {
	"state": object.union(canary.roll_back(input.state, input.now), {"phase": ended_by_plan[plan.phase]}),
	"outcome": "RollBack",
	"message": message,
	"events": [canary.warning("PlanEnded", message)],
} if {
	live
	ended_by_plan[plan.phase]
	message := sprintf("ReleasePlan %s is %s: back to %s", [plan.name, plan.phase, input.state.baseline])
} else := {
	"state": canary.roll_back(input.state, input.now),
	"outcome": "RollBack",
	"message": message,
	"events": [canary.warning("GroupRolledBack", message)],
} if {
	live
	count(fallen) > 0
	message := sprintf("rolling back with its group (ReleasePlan %s): %s", [plan.name, concat(", ", fallen)])
} else := {"state": input.state, "outcome": "Pass", "message": "no weight change proposed"} if {
	not canary.changed(input.state, observed)
} else := {"state": input.state, "outcome": "Pass", "message": "rollbacks pass"} if {
	canary.canary_weight(input.state) < mine
} else := {
	"state": canary.revert(input.state, observed),
	"outcome": "Gate",
	"message": sprintf("ReleasePlan %s is paused: keeping the weights served now", [plan.name]),
} if {
	plan.phase == "Paused"
} else := {
	"state": canary.revert(input.state, observed),
	"outcome": "Gate",
	"message": sprintf("in lockstep with its group (ReleasePlan %s): holding at %d%% while %s", [plan.name, mine, concat(", ", behind)]),
} if {
	count(behind) > 0
} else := {"state": input.state, "outcome": "Pass", "message": sprintf("in lockstep with its group (ReleasePlan %s)", [plan.name])}

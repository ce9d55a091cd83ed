package kubist.policies.manual_gate_test

import data.kubist.policies.manual_gate as policy

served := {"weights": {"v1": 80, "v2": 20}, "phase": "Progressing", "lastStepTime": "2026-11-24T12:00:00Z"}

proposal := {
	"baseline": "v1", "canary": "v2",
	"weights": {"v1": 70, "v2": 30},
	"phase": "Progressing",
	"lastStepTime": "2026-11-24T12:00:30Z",
}

resource(annotations) := {"metadata": {"name": "reviews-v2", "annotations": annotations}}

test_without_approval_holds_at_the_served_weight if {
	d := policy.decision with input as {"state": proposal, "observed": served, "resource": resource({})}
	d.state.weights == {"v1": 80, "v2": 20}
	d.state.lastStepTime == "2026-11-24T12:00:00Z"
	d.outcome == "Gate"
	startswith(d.message, "waiting for approval: proposed 30%, approved 20%")
}

test_approval_caps_a_larger_proposal if {
	p := object.union(proposal, {"weights": {"v1": 40, "v2": 60}})
	d := policy.decision with input as {"state": p, "observed": served, "resource": resource({"kubist.io/approved-weight": "50"})}
	d.state.weights == {"v1": 50, "v2": 50}
	d.state.lastStepTime == "2026-11-24T12:00:30Z"
	d.outcome == "Gate"
}

test_approved_proposal_passes if {
	d := policy.decision with input as {"state": proposal, "observed": served, "resource": resource({"kubist.io/approved-weight": "30"})}
	d.state == proposal
	d.outcome == "Pass"
	d.events == []
}

test_promotion_is_held_back_below_100 if {
	p := object.union(proposal, {"weights": {"v1": 0, "v2": 100}, "phase": "Promoted"})
	d := policy.decision with input as {"state": p, "observed": served, "resource": resource({"kubist.io/approved-weight": "90"})}
	d.state.weights == {"v1": 10, "v2": 90}
	d.state.phase == "Progressing"
}

test_rollbacks_pass if {
	p := object.union(proposal, {"weights": {"v1": 100, "v2": 0}, "phase": "RolledBack"})
	d := policy.decision with input as {"state": p, "observed": served, "resource": resource({})}
	d.state == p
	d.outcome == "Pass"
}

test_malformed_annotation_counts_as_absent if {
	d := policy.decision with input as {"state": proposal, "observed": served, "resource": resource({"kubist.io/approved-weight": "lots"})}
	d.state.weights == {"v1": 80, "v2": 20}
	d.events[0] == {"type": "Warning", "reason": "InvalidApproval", "message": "annotation kubist.io/approved-weight=lots is not a whole number from 0 to 100"}
}

test_an_approve_action_in_the_status_opens_the_gate if {
	r := object.union(resource({}), {"status": {"approvedWeight": 30}})
	d := policy.decision with input as {"state": proposal, "observed": served, "resource": r}
	d.state == proposal
	d.outcome == "Pass"
}

test_the_higher_of_annotation_and_approve_action_counts if {
	p := object.union(proposal, {"weights": {"v1": 40, "v2": 60}})
	r := object.union(resource({"kubist.io/approved-weight": "50"}), {"status": {"approvedWeight": 40}})
	d := policy.decision with input as {"state": p, "observed": served, "resource": r}
	d.state.weights == {"v1": 50, "v2": 50}
	d.outcome == "Gate"
}

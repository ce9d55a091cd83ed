package policies.max_weight_test

import data.policies.max_weight

state := {"baseline": "v1", "canary": "v2", "weights": {"v1": 30, "v2": 70}, "phase": "Progressing"}

test_caps_a_larger_weight if {
	d := max_weight.decision with input as {"state": state, "parameters": {"max": 50}}
	d.state.weights == {"v1": 50, "v2": 50}
	d.outcome == "Cap"
}

test_passes_a_smaller_weight if {
	d := max_weight.decision with input as {"state": state, "parameters": {"max": 80}}
	d.state == state
	d.outcome == "Pass"
}

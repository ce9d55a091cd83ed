package kubist.policies.subset_detector_test

import data.kubist.policies.subset_detector as policy

deployments := [
	{"name": "reviews-v2", "labels": {"app": "reviews", "version": "v2"}},
	{"name": "reviews-v1", "labels": {"app": "reviews", "version": "v1"}},
	{"name": "reviews-v1-canary", "labels": {"app": "reviews", "version": "v1"}},
	{"name": "reviews-next", "labels": {"app": "reviews", "version": "V3.0_rc"}},
	{"name": "reviews-debug", "labels": {"app": "reviews"}},
]

test_detects_one_subset_per_label_value if {
	d := policy.decision with input as {
		"resource": {"spec": {}}, "state": {"host": "reviews"},
		"observed": {"deployments": deployments}, "parameters": {"label": "version"},
	}
	d.state.host == "reviews"
	d.state.subsets == [
		{"name": "v3-0-rc", "labels": {"version": "V3.0_rc"}},
		{"name": "v1", "labels": {"version": "v1"}},
		{"name": "v2", "labels": {"version": "v2"}},
	]
	d.outcome == "Detected"
}

test_other_label if {
	d := policy.decision with input as {
		"resource": {"spec": {}}, "state": {},
		"observed": {"deployments": [{"labels": {"track": "stable"}}, {"labels": {"track": "canary"}}]},
		"parameters": {"label": "track"},
	}
	d.state.subsets == [
		{"name": "canary", "labels": {"track": "canary"}},
		{"name": "stable", "labels": {"track": "stable"}},
	]
}

test_declared_subsets_win if {
	state := {"subsets": [{"name": "blue", "labels": {"color": "blue"}}]}
	d := policy.decision with input as {
		"resource": {"spec": {"subsets": state.subsets}}, "state": state,
		"observed": {"deployments": deployments}, "parameters": {"label": "version"},
	}
	d.state == state
	d.outcome == "Declared"
}

test_nothing_to_detect_warns if {
	d := policy.decision with input as {
		"resource": {"spec": {}}, "state": {}, "observed": {"deployments": []}, "parameters": {"label": "version"},
	}
	d.state == {}
	d.events[0].type == "Warning"
}

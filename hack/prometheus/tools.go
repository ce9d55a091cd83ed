//go:build tools

// Package tools pins the Prometheus server that tests and `make run` run
// as the real metrics backend.
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"

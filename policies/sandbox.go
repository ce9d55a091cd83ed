package policies

import (
	"strings"
	"time"

	// Time zones for time.clock and time.weekday (BusinessHoursGate) must
	// not depend on the host's zoneinfo files.
	_ "time/tzdata"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Limits bound one policy evaluation.
type Limits struct {
	// Timeout of one evaluation; past it the evaluation is cancelled.
	Timeout time.Duration
	// MaxDecisionBytes bounds the decision's size as JSON.
	MaxDecisionBytes int
}

// DefaultLimits are the limits of the sandbox unless configured otherwise.
var DefaultLimits = Limits{Timeout: 100 * time.Millisecond, MaxDecisionBytes: 64 << 10}

// forbiddenBuiltins are removed from the sandbox: I/O, the runtime's
// environment, randomness and the clock (time comes from input.now, so that
// every decision can be replayed).
var forbiddenBuiltins = []string{
	"http.send",
	"net.",
	"opa.runtime",
	"rand.",
	"time.now_ns",
	"uuid.rfc4122",
	"trace",
}

func forbidden(name string) bool {
	for _, f := range forbiddenBuiltins {
		if name == f || (strings.HasSuffix(f, ".") && strings.HasPrefix(name, f)) {
			return true
		}
	}
	return false
}

// sandboxCapabilities are the capabilities policies compile against: this
// OPA version's built-ins less the forbidden ones, plus Kubist's own.
func sandboxCapabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	allowed := caps.Builtins[:0:0]
	for _, b := range caps.Builtins {
		if !forbidden(b.Name) {
			allowed = append(allowed, b)
		}
	}
	for _, b := range kubistBuiltins() {
		allowed = append(allowed, b.Decl)
	}
	caps.Builtins = allowed
	// No remote bundles or modules: nothing may be fetched.
	caps.AllowNet = []string{}
	return caps
}

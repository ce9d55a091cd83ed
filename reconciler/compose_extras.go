// What a CanaryRelease composes into its Route besides the weights: the
// mirroring of requests to the canary (MirrorThenShift), a preview route
// to it (BlueGreenRelease), and the sticky rule of a session affinity.

package reconciler

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"

	"k8s.io/utils/ptr"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// mirrorState is a release's mirroring as the policies' state holds it.
type mirrorState struct {
	Subset  string `json:"subset"`
	Percent int32  `json:"percent"`
	Since   string `json:"since,omitempty"`
}

// previewState is a release's preview route as the policies' state holds it.
type previewState struct {
	Header string `json:"header"`
	Value  string `json:"value"`
	Since  string `json:"since,omitempty"`
}

func mirrorOf(m *v1alpha1.CanaryMirror) *mirrorState {
	if m == nil {
		return nil
	}
	return &mirrorState{Subset: m.Subset, Percent: m.Percent, Since: formatTime(m.Since)}
}

func previewOf(p *v1alpha1.CanaryPreview) *previewState {
	if p == nil {
		return nil
	}
	return &previewState{Header: p.Header, Value: p.Value, Since: formatTime(p.Since)}
}

// value is the mirroring as a policy's input; nil without one.
func (m *mirrorState) value() any {
	if m == nil {
		return nil
	}
	out := map[string]any{"subset": m.Subset, "percent": int64(m.Percent)}
	if m.Since != "" {
		out["since"] = m.Since
	}
	return out
}

// value is the preview as a policy's input; nil without one.
func (p *previewState) value() any {
	if p == nil {
		return nil
	}
	out := map[string]any{"header": p.Header, "value": p.Value}
	if p.Since != "" {
		out["since"] = p.Since
	}
	return out
}

// checkExtras refuses a decided mirror or preview that names a subset the
// Destination lacks, a percentage out of range, a header name HTTP does not
// allow, or a time that is not RFC 3339.
func checkExtras(t *trafficTarget, s trafficState) error {
	if m := s.Mirror; m != nil {
		if err := t.requireSubsets("the policies' state.mirror.subset", m.Subset); err != nil {
			return err
		}
		if m.Percent < 0 || m.Percent > 100 {
			return userError(ReasonInvalidDecision, "the policies decided to mirror %d%% of the requests; a percentage is 0 to 100", m.Percent)
		}
		if _, err := parseTime(m.Since); err != nil {
			return err
		}
	}
	if p := s.Preview; p != nil {
		if err := t.requireSubsets("the policies' state.preview.value", p.Value); err != nil {
			return err
		}
		if !headerName.MatchString(p.Header) {
			return userError(ReasonInvalidDecision, "the policies decided a preview header %q, which is not an HTTP header name", p.Header)
		}
		if _, err := parseTime(p.Since); err != nil {
			return err
		}
	}
	return nil
}

// headerName is what BlueGreenRelease's header parameter allows.
var headerName = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// setExtras stores a decided mirror and preview in a canary's status; a
// release that is over keeps neither.
func setExtras(c *v1alpha1.CanaryRelease, s trafficState) {
	c.Status.Mirror, c.Status.Preview = nil, nil
	if c.Status.Phase != v1alpha1.CanaryPending && c.Status.Phase != v1alpha1.CanaryProgressing && c.Status.Phase != v1alpha1.CanaryPaused {
		return
	}
	if m := s.Mirror; m != nil {
		since, _ := parseTime(m.Since)
		c.Status.Mirror = &v1alpha1.CanaryMirror{Subset: m.Subset, Percent: m.Percent, Since: since}
	}
	if p := s.Preview; p != nil {
		since, _ := parseTime(p.Since)
		c.Status.Preview = &v1alpha1.CanaryPreview{Header: p.Header, Value: p.Value, Since: since}
	}
}

// extras are what a canary composes into a rule its split applies to:
// the mirror on the rule itself; ahead of it, a preview rule and a sticky
// rule, each with the rule's matches narrowed by a header or the cookie;
// and on the weighted route to the canary, the cookie in its responses.
// kept is the rule's weighted destinations, port their port.
func (l liveWeights) extras(rule *v1alpha1.HTTPRoute, kept []v1alpha1.RouteDestination, port int32) []v1alpha1.HTTPRoute {
	if m := l.mirror; m != nil && m.Percent > 0 {
		rule.Mirror = &v1alpha1.HTTPMirror{Destination: l.destination, Subset: m.Subset, Port: port, Percent: ptr.To(m.Percent)}
	}
	var ahead []v1alpha1.HTTPRoute
	to := func(name, subset string, narrow func(*v1alpha1.HTTPMatchRequest)) v1alpha1.HTTPRoute {
		out := v1alpha1.HTTPRoute{Name: ruleName(rule.Name, name), Retries: rule.Retries, Timeout: rule.Timeout,
			Route: []v1alpha1.RouteDestination{{Destination: l.destination, Subset: subset, Port: port}}}
		matches := rule.Match
		if len(matches) == 0 {
			matches = []v1alpha1.HTTPMatchRequest{{}}
		}
		for _, m := range matches {
			m := *m.DeepCopy()
			narrow(&m)
			out.Match = append(out.Match, m)
		}
		return out
	}
	if p := l.preview; p != nil {
		ahead = append(ahead, to("preview", p.Value, func(m *v1alpha1.HTTPMatchRequest) {
			if m.Headers == nil {
				m.Headers = map[string]v1alpha1.StringMatch{}
			}
			m.Headers[p.Header] = v1alpha1.StringMatch{Exact: p.Value}
		}))
	}
	if a := l.sticky; a != nil && !hasCookieMatch(rule) {
		cookie := cmp.Or(a.CookieName, "kubist-canary")
		ahead = append(ahead, to("sticky", l.canary, func(m *v1alpha1.HTTPMatchRequest) {
			m.Cookie = &v1alpha1.CookieMatch{Name: cookie, Value: v1alpha1.StringMatch{Exact: l.canary}}
		}))
		maxAge := a.MaxAge
		if maxAge == 0 {
			maxAge = 86400
		}
		for i := range kept {
			if kept[i].Destination == l.destination && kept[i].Subset == l.canary {
				kept[i].Headers = withResponseHeader(kept[i].Headers, "Set-Cookie", fmt.Sprintf("%s=%s; Max-Age=%d; Path=/", cookie, l.canary, maxAge))
			}
		}
	}
	return ahead
}

// ruleName names a composed rule after the rule it precedes.
func ruleName(rule, what string) string {
	if rule == "" {
		return what
	}
	return rule + "-" + what
}

func hasCookieMatch(rule *v1alpha1.HTTPRoute) bool {
	for _, m := range rule.Match {
		if m.Cookie != nil {
			return true
		}
	}
	return false
}

// withResponseHeader adds a response header to a destination's header
// operations.
func withResponseHeader(h *v1alpha1.Headers, name, value string) *v1alpha1.Headers {
	out := &v1alpha1.Headers{}
	if h != nil {
		out = h.DeepCopy()
	}
	if out.Response == nil {
		out.Response = &v1alpha1.HeaderOperations{}
	}
	out.Response.Add = maps.Clone(out.Response.Add)
	if out.Response.Add == nil {
		out.Response.Add = map[string]string{}
	}
	out.Response.Add[name] = value
	return out
}

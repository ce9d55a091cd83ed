package webhook

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// istioRetryOn are the retryOn conditions Istio accepts besides HTTP status
// codes: Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on policies.
var istioRetryOn = []string{
	"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
	"refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
	"http3-post-connect-failure",
	"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
}

// istioHeaderName is what Istio accepts as the name of a header a route
// matches: an RFC 7230 token (its tchars), an HTTP/2 pseudo-header, or a
// JWT claim (@request.auth.claims.NAME or @request.auth.claims[NAME]).
var (
	istioHeaderName   = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~A-Za-z0-9]+$")
	istioPseudoHeader = []string{":method", ":scheme", ":authority", ":path", ":status"}
	istioJWTClaim     = regexp.MustCompile(`^(?i:@request\.auth\.claims)(\..+|\[.+\])$`)
)

// validateRouteForIstio refuses, up front, the rules of a Route that
// Istio's own validation would refuse in the VirtualService composed from
// it: the mesh's wildcard host and a host twice (or covered by a wildcard
// beside it), retry conditions Envoy does not know, a retry policy with
// no attempts, durations under a millisecond or finer than one, header
// names that are not HTTP tokens, and regular expressions that are not
// RE2.
func validateRouteForIstio(r *v1alpha1.Route, spec *field.Path) field.ErrorList {
	errs := istioHosts(r, spec)
	for i, rule := range r.Spec.HTTP {
		path := spec.Child("http").Index(i)
		if rule.Timeout != "" {
			errs = append(errs, istioDuration(path.Child("timeout"), rule.Timeout)...)
		}
		if rt := rule.Retries; rt != nil {
			rpath := path.Child("retries")
			if rt.Attempts == 0 && (rt.RetryOn != "" || rt.PerTryTimeout != "") {
				errs = append(errs, field.Invalid(rpath.Child("attempts"), 0,
					"retryOn and perTryTimeout need attempts of at least 1 (Istio refuses a retry policy whose attempts are 0); raise attempts or remove retries"))
			}
			if rt.PerTryTimeout != "" {
				errs = append(errs, istioDuration(rpath.Child("perTryTimeout"), rt.PerTryTimeout)...)
			}
			if rt.RetryOn != "" {
				for _, cond := range strings.Split(rt.RetryOn, ",") {
					if code, err := strconv.Atoi(cond); err == nil && http.StatusText(code) != "" {
						continue
					}
					if !slices.Contains(istioRetryOn, cond) {
						errs = append(errs, field.NotSupported(rpath.Child("retryOn"), cond, append(slices.Clone(istioRetryOn), "an HTTP status code such as 503")))
					}
				}
			}
		}
		for j, m := range rule.Match {
			mpath := path.Child("match").Index(j)
			errs = append(errs, istioRegex(mpath.Child("uri"), m.URI)...)
			errs = append(errs, istioRegex(mpath.Child("method"), m.Method)...)
			for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
				v := m.Headers[name]
				hpath := mpath.Child("headers").Key(name)
				if !istioHeaderName.MatchString(name) && !slices.Contains(istioPseudoHeader, name) && !istioJWTClaim.MatchString(name) {
					errs = append(errs, field.Invalid(hpath, name,
						"not a header name Istio accepts: an HTTP token (letters, digits and !#$%&'*+-.^_`|~, no spaces), a pseudo-header such as :authority, or @request.auth.claims.NAME"))
				}
				errs = append(errs, istioRegex(hpath, &v)...)
			}
			for _, name := range slices.Sorted(maps.Keys(m.QueryParams)) {
				v := m.QueryParams[name]
				errs = append(errs, istioRegex(mpath.Child("queryParams").Key(name), &v)...)
			}
			if m.Cookie != nil {
				errs = append(errs, istioRegex(mpath.Child("cookie", "value"), &m.Cookie.Value)...)
			}
		}
	}
	return errs
}

// istioHosts refuses what Istio refuses of a VirtualService's hosts: *
// on a route of the mesh (no gateways, or the gateway mesh), and two
// hosts of which one covers the other (the same host twice, or a wildcard
// and a host it matches).
func istioHosts(r *v1alpha1.Route, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
	mesh := len(r.Spec.Gateways) == 0 || slices.Contains(r.Spec.Gateways, "mesh")
	for i, h := range r.Spec.Hosts {
		path := spec.Child("hosts").Index(i)
		if h == "*" && mesh {
			errs = append(errs, field.Invalid(path, h,
				"Istio refuses the wildcard host * on a route of the mesh (no gateways): name the hosts, or bind the route to a gateway"))
			continue
		}
		for j := range i {
			if hostsOverlap(r.Spec.Hosts[j], h) {
				errs = append(errs, field.Duplicate(path, h))
				errs[len(errs)-1].Detail = fmt.Sprintf("Istio refuses hosts that overlap: %s and hosts[%d] %s; keep one", h, j, r.Spec.Hosts[j])
				break
			}
		}
	}
	return errs
}

// hostsOverlap says whether one host matches the other, as Istio compares
// a VirtualService's hosts: equal, or a wildcard (*.example.com) and a
// host or narrower wildcard under it.
func hostsOverlap(a, b string) bool {
	aw, bw := strings.HasPrefix(a, "*"), strings.HasPrefix(b, "*")
	switch {
	case aw && bw:
		return strings.HasSuffix(a[1:], b[1:]) || strings.HasSuffix(b[1:], a[1:])
	case aw:
		return strings.HasSuffix(b, a[1:])
	case bw:
		return strings.HasSuffix(a, b[1:])
	}
	return a == b
}

// istioDuration refuses what Istio refuses of a duration: under 1ms, or
// not a whole number of milliseconds.
func istioDuration(path *field.Path, s string) field.ErrorList {
	d, err := time.ParseDuration(s)
	if err != nil {
		return field.ErrorList{field.Invalid(path, s, err.Error())}
	}
	if d < time.Millisecond || d%time.Millisecond != 0 {
		return field.ErrorList{field.Invalid(path, s, "Istio needs a duration of at least 1ms, in whole milliseconds")}
	}
	return nil
}

// istioRegex refuses a regex match that is not RE2, which Envoy runs.
func istioRegex(path *field.Path, m *v1alpha1.StringMatch) field.ErrorList {
	if m == nil || m.Regex == "" {
		return nil
	}
	if _, err := regexp.Compile(m.Regex); err != nil {
		return field.ErrorList{field.Invalid(path.Child("regex"), m.Regex, fmt.Sprintf("not an RE2 regular expression: %v", err))}
	}
	return nil
}

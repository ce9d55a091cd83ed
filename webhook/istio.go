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

// validateRouteForIstio refuses, up front, the rules of a Route that
// Istio's own validation would refuse in the VirtualService composed from
// it: retry conditions Envoy does not know, a retry policy with no
// attempts, durations under a millisecond or finer than one, and regular
// expressions that are not RE2.
func validateRouteForIstio(r *v1alpha1.Route, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
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
				errs = append(errs, istioRegex(mpath.Child("headers").Key(name), &v)...)
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

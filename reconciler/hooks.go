package reconciler

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubist-io/kubist/internal/manager/notify"
	"github.com/kubist-io/kubist/policies"
)

// A webhook policy (WebhookGate) names an outside HTTP hook that a step,
// the promotion or a rollback waits for. The skeleton calls the hooks
// before the chain runs (decide, in pipeline.go), so that policies stay
// pure and replayable: a hook's answer is the policies' input.hooks.

// hookBodyLimit is how much of a hook's answer the policies see.
const hookBodyLimit = 256

// hookClient calls the hooks; each call has its own deadline.
var hookClient = &http.Client{}

// hookParameters are a webhook policy's parameters (defaulted by its schema).
type hookParameters struct {
	SecretRef string `json:"secretRef"`
	Service   string `json:"service"`
	Timeout   string `json:"timeout"`
	When      string `json:"when"`
}

// callHooks calls the hooks of a chain's webhook policies with what the
// release is (hookSubject), and returns their answers by hook (its Secret
// or Service); nil when the chain has none.
func (s *scope) callHooks(ctx context.Context, chain policies.Chain, in policies.Input) map[string]any {
	var out map[string]any
	var subject map[string]any
	for _, step := range chain {
		if !step.Policy.Webhook || !step.Policy.Predefined {
			continue
		}
		var p hookParameters
		if err := fromMap(step.Parameters, &p); err != nil {
			continue
		}
		target := cmp.Or(p.SecretRef, p.Service)
		if out == nil {
			out, subject = map[string]any{}, hookSubject(s, in)
		}
		if _, called := out[target]; called {
			continue
		}
		out[target] = s.callHook(ctx, p, subject)
	}
	return out
}

// hookSubject is what a hook is told of the release: its kind and name,
// and from the chain's input its phase, weights, canary and baseline.
func hookSubject(s *scope, in policies.Input) map[string]any {
	out := map[string]any{"kind": s.kind, "namespace": s.obj.GetNamespace(), "name": s.obj.GetName()}
	for _, k := range []string{"phase", "weights", "canary", "baseline"} {
		if v, ok := in.State[k]; ok {
			out[k] = v
		}
	}
	return out
}

// callHook posts the release to one hook and returns what the policies
// see of the answer: statusCode, body (the first bytes), latencyMs, or an
// error that names no secret.
func (s *scope) callHook(ctx context.Context, p hookParameters, release map[string]any) map[string]any {
	url, token, err := s.hookURL(ctx, p)
	if err != nil {
		hookCalls.WithLabelValues("error").Inc()
		return map[string]any{"error": err.Error()}
	}
	timeout, err := time.ParseDuration(p.Timeout)
	if err != nil || timeout <= 0 {
		timeout = 10 * time.Second
	}
	payload := make(map[string]any, len(release)+2)
	for k, v := range release {
		payload[k] = v
	}
	// "on" is the parameter's old name, kept for receivers that read it.
	payload["when"], payload["on"] = p.When, p.When
	body, err := json.Marshal(payload)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		hookCalls.WithLabelValues("error").Inc()
		return map[string]any{"error": notify.Redact(err, url, token)}
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := hookClient.Do(req)
	latency := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		hookCalls.WithLabelValues("error").Inc()
		return map[string]any{"error": notify.Redact(err, url, token), "latencyMs": latency}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, hookBodyLimit))
	result := "2xx"
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		result = "non-2xx"
	}
	hookCalls.WithLabelValues(result).Inc()
	return map[string]any{"statusCode": int64(resp.StatusCode), "body": strings.TrimSpace(string(answer)), "latencyMs": latency}
}

// hookURL is where a hook is: the url (and token) of a Secret in the
// manager's namespace, or a cluster-local Service.
func (s *scope) hookURL(ctx context.Context, p hookParameters) (url, token string, err error) {
	switch {
	case p.SecretRef != "":
		var secret corev1.Secret
		if err := s.Client.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: p.SecretRef}, &secret); err != nil {
			return "", "", fmt.Errorf("secretRef %s: Secret %s/%s: %w", p.SecretRef, s.Namespace, p.SecretRef, err)
		}
		url = strings.TrimSpace(string(secret.Data["url"]))
		if url == "" {
			return "", "", fmt.Errorf("secretRef %s: Secret %s/%s has no key url", p.SecretRef, s.Namespace, p.SecretRef)
		}
		return url, strings.TrimSpace(string(secret.Data["token"])), nil
	case p.Service != "":
		// NAME.NAMESPACE:PORT/PATH, as the policy's schema checks it.
		host, path, _ := strings.Cut(p.Service, "/")
		name, port, _ := strings.Cut(host, ":")
		return fmt.Sprintf("http://%s.svc:%s/%s", name, port, path), "", nil
	}
	return "", "", fmt.Errorf("the policy names no hook: set secretRef or service")
}

package webhook

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// DefaultTargetTimeout bounds the check on a Route's or a Destination's
// cluster: the API server gives the whole validating call 5 s
// (timeoutSeconds), and the check is one part of it.
const DefaultTargetTimeout = 2 * time.Second

// TargetChecker submits the objects a Route or a Destination would make
// its cluster hold to that cluster as a server-side dry run, so that the
// cluster's own admission (Istio's webhook) judges them: it returns the
// cluster's refusals, each with the cluster's message, or an error when
// the check could not be made. The reconciler implements it
// (CheckOnTarget), composing the objects as the executors do.
type TargetChecker interface {
	CheckOnTarget(ctx context.Context, obj v1alpha1.Object) ([]string, error)
}

// checkOnTarget has a Route's or a Destination's cluster judge what it
// would make there. A refusal is an error at the field the cluster's
// message names (where one field of the spec holds the value it quotes),
// else at spec; a check that cannot be made in time admits the object
// with a warning that says so.
func (a *Admission) checkOnTarget(ctx context.Context, obj v1alpha1.Object, spec *field.Path) (field.ErrorList, []string) {
	timeout := cmp.Or(a.TargetTimeout, DefaultTargetTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		refusals []string
		err      error
	}
	// Building a client for a cluster first met does not heed ctx: the
	// check runs aside, and admission waits for it no longer than ctx.
	done := make(chan result, 1)
	go func() {
		refusals, err := a.Target.CheckOnTarget(ctx, obj)
		done <- result{refusals, err}
	}()
	kind := KindOf(obj)
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		res.err = fmt.Errorf("its cluster did not answer within %s", timeout)
	}
	if res.err != nil {
		return nil, []string{fmt.Sprintf("what this %s makes was not checked on its cluster (%v): it is admitted, and its Ready condition will say if the cluster refuses it", kind, res.err)}
	}
	var errs field.ErrorList
	value := reflect.ValueOf(obj).Elem().FieldByName("Spec")
	for _, msg := range res.refusals {
		detail := "its cluster refuses what this " + kind + " makes there: " + msg
		if path, v := quotedField(value, spec, msg); path != nil {
			errs = append(errs, field.Invalid(path, v, detail))
		} else {
			errs = append(errs, field.Forbidden(spec, detail))
		}
	}
	return errs, nil
}

// quoted are the values a refusal's message quotes.
var quoted = regexp.MustCompile(`"([^"]+)"`)

// quotedField finds the field of the spec that holds a value the message
// quotes, when exactly one field holds it (a map's key counts: a header
// name), and returns its path and the value; nil when none does or when
// several do.
func quotedField(spec reflect.Value, path *field.Path, msg string) (*field.Path, string) {
	if _, after, ok := strings.Cut(msg, "denied the request:"); ok {
		msg = after
	}
	var found []*field.Path
	var value string
	for _, m := range quoted.FindAllStringSubmatch(msg, -1) {
		var at []*field.Path
		holding(spec, path, m[1], &at)
		for _, p := range at {
			if !slices.ContainsFunc(found, func(f *field.Path) bool { return f.String() == p.String() }) {
				found, value = append(found, p), m[1]
			}
		}
	}
	if len(found) != 1 {
		return nil, ""
	}
	return found[0], value
}

// holding collects the paths under path whose string value (or map key)
// is want, walking the spec by its JSON field names.
func holding(v reflect.Value, path *field.Path, want string, at *[]*field.Path) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			holding(v.Elem(), path, want, at)
		}
	case reflect.String:
		if v.String() == want {
			*at = append(*at, path)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // raw JSON (parameters): not a field the cluster sees
		}
		for i := range v.Len() {
			holding(v.Index(i), path.Index(i), want, at)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			if k.Kind() == reflect.String && k.String() == want {
				*at = append(*at, path.Key(k.String()))
			}
			holding(v.MapIndex(k), path.Key(k.String()), want, at)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case !f.IsExported() || name == "-":
				continue
			case name == "":
				holding(v.Field(i), path, want, at) // embedded
			default:
				holding(v.Field(i), path.Child(name), want, at)
			}
		}
	}
}

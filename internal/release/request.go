package release

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Ask creates the ReleaseAction that asks for spec, with the client's
// credentials: the API server's RBAC and the admission webhook decide
// exactly as for any other request of that user. A refusal comes back as
// the error people need to read (see Refusal).
func Ask(ctx context.Context, c client.Client, namespace string, spec v1alpha1.ReleaseActionSpec) (*v1alpha1.ReleaseAction, error) {
	prefix := spec.Target.Name
	if len(prefix) > 200 {
		prefix = prefix[:200]
	}
	a := &v1alpha1.ReleaseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: prefix + "-" + strings.ToLower(string(spec.Action)) + "-"},
		Spec:       spec,
	}
	if err := c.Create(ctx, a); err != nil {
		return nil, Refusal(Target(namespace, spec), spec, err)
	}
	return a, nil
}

// Target names an action's release for messages: "canaryrelease ns/name",
// "releaseplan name".
func Target(namespace string, spec v1alpha1.ReleaseActionSpec) string {
	if spec.Target.Kind == "ReleasePlan" {
		return "releaseplan " + spec.Target.Name
	}
	return fmt.Sprintf("%s %s/%s", strings.ToLower(spec.Target.Kind), namespace, spec.Target.Name)
}

// ErrNotSettled is Await's error when the executor has not applied or
// refused the action in time.
var ErrNotSettled = errors.New("not applied yet")

// Await reads the action every poll until the release's executor has
// applied or refused it, or ctx ends (then ErrNotSettled).
func Await(ctx context.Context, c client.Reader, a *v1alpha1.ReleaseAction, poll time.Duration) (*v1alpha1.ReleaseAction, error) {
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	key := types.NamespacedName{Namespace: a.Namespace, Name: a.Name}
	for {
		err := c.Get(ctx, key, a)
		switch {
		case err != nil && ctx.Err() == nil:
			return a, fmt.Errorf("read releaseaction %s: %w", a.Name, err)
		case err == nil && (a.Status.Phase == v1alpha1.ActionApplied || a.Status.Phase == v1alpha1.ActionRefused):
			return a, nil
		}
		select {
		case <-ctx.Done():
			return a, ErrNotSettled
		case <-ticker.C:
		}
	}
}

// Refusal is the API server's answer to an action, as people need it:
// the admission webhook's reasons, or RBAC's message as it stands.
func Refusal(what string, spec v1alpha1.ReleaseActionSpec, err error) error {
	var status apierrors.APIStatus
	if apierrors.IsInvalid(err) && errors.As(err, &status) && status.Status().Details != nil {
		var reasons []string
		for _, cause := range status.Status().Details.Causes {
			// "Invalid value: \"Promote\": the reason" says the value the
			// user just typed; the reason is what they need.
			reasons = append(reasons, cause.Field+": "+invalidValue.ReplaceAllString(cause.Message, ""))
		}
		if len(reasons) > 0 {
			return &RefusedError{Err: err, Message: fmt.Sprintf("%s: %s refused: %s", what, spec.Summary(), strings.Join(reasons, "; "))}
		}
	}
	return &RefusedError{Err: err, Message: fmt.Sprintf("%s: %s refused: %v", what, spec.Summary(), err)}
}

// RefusedError is an action the API server refused; Err is its answer
// (apierrors can read the code from it).
type RefusedError struct {
	Err     error
	Message string
}

func (e *RefusedError) Error() string { return e.Message }
func (e *RefusedError) Unwrap() error { return e.Err }

// invalidValue is the start of a field error's message that repeats the value.
var invalidValue = regexp.MustCompile(`^Invalid value: (".*?"|[0-9]+): `)

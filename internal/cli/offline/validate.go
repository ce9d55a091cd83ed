package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/ancestry"
	kubeconfigpkg "github.com/kubist-io/kubist/internal/kubeconfig"
	"github.com/kubist-io/kubist/internal/manifest"
	"github.com/kubist-io/kubist/internal/release"
	"github.com/kubist-io/kubist/policies"
	"github.com/kubist-io/kubist/webhook"
)

// NewValidateCommand is kubist validate.
func NewValidateCommand() *cobra.Command {
	var paths []string
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "validate -f PATH",
		Short: "Check Kubist manifests offline, as the API server and Kubist's webhooks would",
		Long: "Check every kubist.io object in the files, directories (recursively) or\n" +
			"standard input (-f -) as the API server with Kubist's webhooks would on\n" +
			"creation: unknown fields, the CRDs' schemas and CEL rules, defaulting, then\n" +
			"executor, policy and kind validation. Policy objects in the input are\n" +
			"registered first. With --kubeconfig, the cluster's Policy objects are too,\n" +
			"and parents and siblings are looked up there (missing ones are warnings),\n" +
			"and each release's chain is printed as it would run there, with the\n" +
			"policies the Project, Cluster and VirtualCluster above it add.\n" +
			"Prints PATH: Kind/name: field.path: message per problem,\n" +
			"warnings as Warning: lines, and exits 1 when anything is invalid.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(paths) == 0 {
				return errors.New("-f is required: a file, a directory, or - for standard input")
			}
			var objects []manifest.Object
			for _, p := range paths {
				loaded, err := manifest.Load(p, cmd.InOrStdin())
				if err != nil {
					return err
				}
				objects = append(objects, loaded...)
			}
			engine, err := newEngine(cmd.Context())
			if err != nil {
				return err
			}
			compiler, registry := engine.Compiler, engine.Registry
			admission := &webhook.Admission{Registry: registry, Compiler: compiler, Executors: engine.Executors}
			if kubeconfig != "" {
				c, err := clusterClient(kubeconfig)
				if err != nil {
					return err
				}
				if err := registerClusterPolicies(cmd.Context(), c, compiler, registry, cmd.ErrOrStderr()); err != nil {
					return err
				}
				admission.Reader = c
			}
			offline, err := webhook.NewOffline(admission)
			if err != nil {
				return err
			}
			invalid := map[string]bool{}
			checked := 0
			for _, f := range offline.Check(cmd.Context(), objects) {
				fmt.Fprintln(cmd.OutOrStdout(), f)
				if !f.Warning {
					invalid[f.Source] = true
				}
			}
			for _, o := range objects {
				if o.GetAPIVersion() == "kubist.io/v1alpha1" {
					checked++
				}
			}
			if admission.Reader != nil {
				for _, o := range objects {
					if line := effectiveChain(cmd.Context(), admission, o); line != "" && !invalid[o.Source] {
						fmt.Fprintln(cmd.OutOrStdout(), line)
					}
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d Kubist objects checked, %d invalid\n", checked, len(invalid))
			if len(invalid) > 0 {
				return errSilentFailure
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&paths, "filename", "f", nil, "File, directory or - (stdin) with manifests; repeatable.")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "Also check against the cluster this kubeconfig reaches: its Policy objects and the objects the manifests refer to.")
	return cmd
}

// effectiveChain is the line that names a release's chain as it would
// run under the levels the cluster holds above its namespace, with where
// each policy comes from; "" for other objects, or a chain that does not
// resolve (its errors are printed already).
func effectiveChain(ctx context.Context, a *webhook.Admission, o manifest.Object) string {
	k, ok := v1alpha1.TreeKind(o.GetKind())
	if o.GetAPIVersion() != "kubist.io/v1alpha1" || !ok || (k.Kind != "CanaryRelease" && k.Kind != "Experiment" && k.Kind != "ReleasePlan") {
		return ""
	}
	obj := k.New()
	if runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, obj) != nil {
		return ""
	}
	refs := obj.GetStanzas().Policies
	if name, ok := policies.DefaultPolicies[k.Kind]; ok && len(refs) == 0 {
		refs = []v1alpha1.PolicyRef{{Name: name}}
	}
	own, errs := a.Registry.Chain(k.Kind, refs, field.NewPath("spec", "policies"))
	if len(errs) > 0 {
		return ""
	}
	levels := ancestry.For(ctx, a.Reader, obj)
	_, effective, errs := a.Registry.EffectiveChain(k.Kind, own, ancestry.PolicyLevels(levels))
	if len(errs) > 0 {
		return ""
	}
	obj.GetCommonStatus().EffectivePolicies = effective
	return fmt.Sprintf("%s: %s/%s: chain: %s", o.Source, k.Kind, o.GetName(), strings.Join(release.Chain(obj), " → "))
}

// clusterClient is a client for the cluster a kubeconfig reaches.
func clusterClient(kubeconfig string) (client.Client, error) {
	cfg, err := kubeconfigpkg.Load(kubeconfig)
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: v1alpha1.NewScheme()})
}

// registerClusterPolicies compiles the cluster's Policy objects into the
// registry; one that does not compile is reported and left out, as the
// manager leaves it out.
func registerClusterPolicies(ctx context.Context, c client.Client, compiler *policies.Compiler, registry *policies.Registry, out io.Writer) error {
	compiled, err := compileClusterPolicies(ctx, c, compiler)
	if err != nil {
		return err
	}
	for _, cp := range compiled {
		err := cp.err
		if err == nil {
			err = registry.SetPolicy(cp.policy)
		}
		if err != nil {
			fmt.Fprintf(out, "Policy %s in the cluster does not compile; stanzas naming it will fail: %s\n", cp.name, firstLine(err.Error()))
		}
	}
	return nil
}

// errSilentFailure fails the command after it has said why.
var errSilentFailure = errors.New("")

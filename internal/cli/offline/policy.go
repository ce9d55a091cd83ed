package offline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/policies"
)

// NewPolicyCommand is kubist policy.
func NewPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "List, test and evaluate policies offline",
	}
	cmd.AddCommand(newPolicyListCommand(), newPolicyTestCommand(), newPolicyEvalCommand())
	return cmd
}

func newPolicyListCommand() *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the predefined policies and, with --kubeconfig, the cluster's Policy objects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			engine, err := newEngine(ctx)
			if err != nil {
				return err
			}
			compiler, registry := engine.Compiler, engine.Registry
			out := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(out, "NAME\tKINDS\tDESCRIPTION")
			for _, p := range registry.Policies() {
				fmt.Fprintf(out, "%s\t%s\t%s\n", p.Name, strings.Join(p.Kinds, ","), p.Description)
			}
			if kubeconfig != "" {
				if err := listClusterPolicies(ctx, kubeconfig, compiler, out); err != nil {
					return err
				}
			}
			return out.Flush()
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "Also list the Policy objects of the cluster this kubeconfig reaches.")
	return cmd
}

func listClusterPolicies(ctx context.Context, kubeconfig string, compiler *policies.Compiler, out io.Writer) error {
	c, err := clusterClient(kubeconfig)
	if err != nil {
		return err
	}
	compiled, err := compileClusterPolicies(ctx, c, compiler)
	if err != nil {
		return err
	}
	for _, cp := range compiled {
		if cp.err != nil {
			fmt.Fprintf(out, "%s\t-\tdoes not compile: %s\n", cp.name, firstLine(cp.err.Error()))
			continue
		}
		fmt.Fprintf(out, "%s\t%s\t%s\n", cp.policy.Name, strings.Join(cp.policy.Kinds, ","), cp.policy.Description)
	}
	return nil
}

// clusterPolicy is one Policy object of a cluster, compiled or not.
type clusterPolicy struct {
	name   string
	policy *policies.Policy
	err    error
}

// compileClusterPolicies compiles every Policy object of a cluster.
func compileClusterPolicies(ctx context.Context, c client.Client, compiler *policies.Compiler) ([]clusterPolicy, error) {
	var list v1alpha1.PolicyList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list Policy objects: %w", err)
	}
	out := make([]clusterPolicy, 0, len(list.Items))
	for i := range list.Items {
		p, err := compiler.CompilePolicyObject(ctx, &list.Items[i])
		out = append(out, clusterPolicy{name: list.Items[i].Name, policy: p, err: err})
	}
	return out, nil
}

func newPolicyTestCommand() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [DIR|FILE...]",
		Short: "Run the test_* rules of Rego policies, as opa test does, with Kubist's built-ins",
		Long: "Run the test rules of the .rego files under the given paths, with Kubist's\n" +
			"sandbox, built-ins (kubist.welch_t_test, kubist.format_duration) and library\n" +
			"(data.kubist.lib).\n" +
			"Without paths, test the predefined policies. Exits 1 when a test fails.",
		RunE: func(cmd *cobra.Command, args []string) error {
			modules, err := policies.LoadModules(args)
			if err != nil {
				return err
			}
			compiler, err := policies.NewCompiler(policies.DefaultLimits)
			if err != nil {
				return err
			}
			summary, err := compiler.Test(cmd.Context(), modules, cmd.OutOrStdout(), verbose)
			if err != nil {
				return err
			}
			if !summary.OK() {
				return errors.New("policy tests failed")
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Print every test, not only failures.")
	return cmd
}

func newPolicyEvalCommand() *cobra.Command {
	var inputFile, moduleFile string
	cmd := &cobra.Command{
		Use:   "eval NAME --input FILE [--file MODULE.rego]",
		Short: "Evaluate one policy on an input document and print its decision as JSON",
		Long: "Evaluate a policy on FILE, a YAML or JSON input document (kind, resource,\n" +
			"parameters, observed, state, metrics, now). NAME is a predefined policy, or\n" +
			"with --file the name to give a module that is not registered yet.\n" +
			"Parameters are defaulted and checked against the policy's schema first.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if inputFile == "" {
				return errors.New("--input is required: a file holding the input document, or - for stdin")
			}
			return evalPolicy(cmd.Context(), cmd.OutOrStdout(), args[0], inputFile, moduleFile)
		},
	}
	cmd.Flags().StringVar(&inputFile, "input", "", "Input document (YAML or JSON); - reads stdin.")
	cmd.Flags().StringVar(&moduleFile, "file", "", "A Rego module to evaluate instead of a registered policy.")
	return cmd
}

// evalInput is the input document as a user writes it: a chain's input
// plus this policy's parameters.
type evalInput struct {
	policies.Input
	Parameters map[string]any `json:"parameters"`
}

func evalPolicy(ctx context.Context, out io.Writer, name, inputFile, moduleFile string) error {
	engine, err := newEngine(ctx)
	if err != nil {
		return err
	}
	compiler, registry := engine.Compiler, engine.Registry
	var policy *policies.Policy
	if moduleFile != "" {
		source, err := os.ReadFile(moduleFile)
		if err != nil {
			return err
		}
		if policy, err = compiler.Compile(ctx, policies.Source{Name: name, File: moduleFile, Rego: string(source)}); err != nil {
			return err
		}
	} else {
		var ok bool
		if policy, ok = registry.Policy(name); !ok {
			msg := fmt.Sprintf("no policy named %s", name)
			var names []string
			for _, p := range registry.Policies() {
				names = append(names, p.Name)
			}
			if closest := policies.Closest(name, names); closest != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", closest)
			}
			return errors.New(msg + "; `kubist policy list` lists them, --file evaluates a module")
		}
	}

	data, err := readInput(inputFile)
	if err != nil {
		return err
	}
	var in evalInput
	if err := yaml.UnmarshalStrict(data, &in); err != nil {
		return fmt.Errorf("%s: %w", inputFile, err)
	}
	if in.Kind != "" && !policy.AppliesTo(in.Kind) {
		return fmt.Errorf("policy %s applies to %s, not %s", policy.Name, strings.Join(policy.Kinds, ", "), in.Kind)
	}
	params, err := normaliseJSON(in.Parameters)
	if err != nil {
		return err
	}
	if errs := policy.Schema.Apply(params, field.NewPath("parameters")); len(errs) > 0 {
		return errors.New(joinFieldErrors(errs))
	}
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	res, err := policies.Chain{{Policy: policy, Parameters: params}}.Run(ctx, in.Input)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(res.Steps[0].Decision)
}

func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

// normaliseJSON re-decodes a value so that integers are int64, as the API
// server hands parameters to the schema validator.
func normaliseJSON(m map[string]any) (map[string]any, error) {
	out := map[string]any{}
	if m == nil {
		return out, nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := utiljson.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// newEngine is the engine with the sandbox's default limits: the
// predefined policies compiled and every executor declared.
func newEngine(ctx context.Context) (catalog.Engine, error) {
	return catalog.NewEngine(ctx, policies.DefaultLimits)
}

// joinFieldErrors prints field errors one per line.
func joinFieldErrors(errs field.ErrorList) string {
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

package policies

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	predefined "github.com/kubist-io/kubist/rego"
)

// TestSummary counts the outcome of a test run.
type TestSummary struct {
	Passed, Failed, Errors, Skipped int
}

// OK reports whether every test passed.
func (s TestSummary) OK() bool { return s.Failed == 0 && s.Errors == 0 && s.Passed > 0 }

// LoadModules reads every .rego file under the given directories (or
// files). With no paths it returns the predefined policies and their tests.
func LoadModules(paths []string) (map[string]string, error) {
	modules := map[string]string{}
	if len(paths) == 0 {
		err := fs.WalkDir(predefined.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") {
				return err
			}
			data, err := fs.ReadFile(predefined.FS, p)
			modules[filepath.Join("rego", p)] = string(data)
			return err
		})
		return modules, err
	}
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") {
				return err
			}
			data, err := os.ReadFile(p)
			modules[p] = string(data)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return modules, nil
}

// Test runs the test rules (test_*) of the given modules the way `opa test`
// does, with the sandbox's capabilities, Kubist's built-ins and library, and
// reports in opa test's format to out.
func (c *Compiler) Test(ctx context.Context, modules map[string]string, out io.Writer, verbose bool) (TestSummary, error) {
	parsed := make(map[string]*ast.Module, len(modules)+len(c.library))
	packages := map[string]bool{}
	for file, source := range modules {
		m, err := c.parse(file, source)
		if err != nil {
			return TestSummary{}, err
		}
		parsed[file] = m
		packages[m.Package.Path.String()] = true
	}
	// The library is always there, unless the modules bring their own copy.
	for file, m := range c.Library() {
		if !packages[m.Package.Path.String()] {
			parsed["kubist:"+file] = m
		}
	}
	compiler := ast.NewCompiler().WithCapabilities(c.caps).WithEnablePrintStatements(true)
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetDefaultRegoVersion(ast.RegoV1).
		RaiseBuiltinErrors(true).
		SetTimeout(c.limits.Timeout * 50).
		AddCustomBuiltins(kubistBuiltins())
	store := inmem.New()
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return TestSummary{}, err
	}
	defer store.Abort(ctx, txn)
	results, err := runner.SetStore(store).SetModules(parsed).RunTests(ctx, txn)
	if err != nil {
		return TestSummary{}, formatRegoError(err)
	}
	var summary TestSummary
	collected := make(chan *tester.Result)
	done := make(chan error, 1)
	go func() { done <- tester.PrettyReporter{Output: out, Verbose: verbose}.Report(collected) }()
	for r := range results {
		switch {
		case r.Error != nil:
			summary.Errors++
		case r.Skip:
			summary.Skipped++
		case r.Fail:
			summary.Failed++
		default:
			summary.Passed++
		}
		collected <- r
	}
	close(collected)
	if err := <-done; err != nil {
		return summary, err
	}
	if summary.Passed+summary.Failed+summary.Errors == 0 {
		fmt.Fprintln(out, "no test rules found (test_*)")
	}
	return summary, nil
}

package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

var _ = Describe("The kubist.io API as kubectl users see it", Ordered, func() {
	It("admits every sample with kubectl apply -f config/samples/", func(ctx SpecContext) {
		res := kubectl(nil, "apply", "-f", filepath.Join(repoRoot, "config", "samples"))
		// Other specs apply the samples too, in random order.
		for _, object := range []string{
			"project.kubist.io/demo", "cluster.kubist.io/local", "virtualcluster.kubist.io/bookinfo",
			"application.kubist.io/reviews", "destination.kubist.io/reviews", "route.kubist.io/reviews",
			"canaryrelease.kubist.io/reviews-v2",
		} {
			outcome := "created|unchanged"
			if object == "cluster.kubist.io/local" {
				// The suite applied it first with a chartRepository of its own.
				outcome += "|configured"
			}
			Expect(res.Stdout).To(MatchRegexp(`(?m)^%s (%s)$`, regexp.QuoteMeta(object), outcome))
		}

		canary := &v1alpha1.CanaryRelease{}
		Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: "bookinfo", Name: "reviews-v2"}, canary)).To(Succeed())
		Expect(canary.Spec.Policies).To(HaveLen(1))
		Expect(canary.Spec.Policies[0].Name).To(Equal("TimedCanaryRelease"))
		Expect(string(canary.Spec.Policies[0].Parameters["period"].Raw)).To(Equal(`"10s"`))
	})

	It("shows the CanaryRelease printer columns in kubectl get", func() {
		res := kubectl(nil, "get", "canaryreleases", "-n", "bookinfo")
		lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
		Expect(lines).To(HaveLen(2))
		Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "ROUTE", "SUBSET", "WEIGHT", "PHASE", "SERVED", "AGE"}))
		Expect(strings.Fields(lines[1])[:3]).To(Equal([]string{"reviews-v2", "reviews", "v2"}))
	})

	It("shows the Cluster printer columns and finds kinds by short name and category", func() {
		res := kubectl(nil, "get", "kcluster")
		Expect(strings.Fields(strings.Split(res.Stdout, "\n")[0])).To(Equal([]string{"NAME", "PROJECT", "ISTIO", "ISTIO-VERSION", "READY", "AGE"}))
		Expect(res.Stdout).To(MatchRegexp(`(?m)^local\s+demo\s`))

		res = kubectl(nil, "get", "kubist", "-A", "-o", "name")
		Expect(strings.Fields(res.Stdout)).To(ContainElements(
			"project.kubist.io/demo", "cluster.kubist.io/local", "virtualcluster.kubist.io/bookinfo",
			"application.kubist.io/reviews", "destination.kubist.io/reviews", "route.kubist.io/reviews",
			"canaryrelease.kubist.io/reviews-v2"))
	})

	It("documents fields for kubectl explain", func() {
		res := kubectl(nil, "explain", "canaryrelease.spec.subset")
		Expect(res.Stdout).To(ContainSubstring("Subset of the Destination that runs the new version."))
	})

	It("refuses to change a Cluster's project", func() {
		Expect(kubectlFails(nil, "patch", "cluster", "local", "--type=merge", "-p", `{"spec":{"project":"other"}}`)).To(ContainSubstring("spec.project: Invalid value: \"other\": project is immutable"))
	})

})

// Every manifest of the invalid corpora is refused through the real
// kubectl with the message its first line expects: test/testdata/crd by the
// API server's schemas, test/testdata/admission by Kubist's webhook.
var _ = Describe("Invalid manifests", func() {
	BeforeEach(func(ctx SpecContext) {
		ensureNamespace(ctx, "corpus")
	})

	for _, corpus := range []string{"admission"} {
		files, err := filepath.Glob(filepath.Join("..", "testdata", corpus, "invalid", "*.yaml"))
		if err != nil || len(files) == 0 {
			panic("no invalid manifests under test/testdata/" + corpus + "/invalid")
		}
		for _, file := range files {
			It("refuses "+corpus+"/"+filepath.Base(file)+" with the expected message", func() {
				expect := expectedMessage(file)
				Expect(kubectlFails(nil, "apply", "-f", file)).To(ContainSubstring(expect))
			})
		}
	}
})

// expectedMessage reads the "# expect: " first line of a manifest.
func expectedMessage(file string) string {
	f, err := os.Open(file)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	Expect(err).NotTo(HaveOccurred())
	expect, ok := strings.CutPrefix(strings.TrimSpace(line), "# expect: ")
	Expect(ok).To(BeTrue(), "%s must start with '# expect: <message>'", file)
	return expect
}

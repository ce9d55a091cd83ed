package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/kubist-io/kubist/test/testenv"
)

var _ = Describe("kubist dev", func() {
	It("brings up a control plane with the samples, and SIGTERM leaves no process behind", func() {
		binary := kubistBinary()
		dir := GinkgoT().TempDir()
		kubeconfig := filepath.Join(dir, "kubeconfig")
		cmd, session := startDev(kubeconfig)
		Expect(string(session.Out.Contents())).To(ContainSubstring("applied canaryrelease/reviews-v2"))

		kubectl := testenv.Kubectl{Path: filepath.Join(env.AssetsDir, "kubectl"), Kubeconfig: kubeconfig}
		res, err := kubectl.Run(nil, "get", "projects,clusters,virtualclusters", "-o", "name")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Expect(strings.Fields(res.Stdout)).To(ConsistOf(
			"project.kubist.io/demo", "cluster.kubist.io/local", "virtualcluster.kubist.io/bookinfo"))

		By("the sample Cluster's executor installed Istio's charts, istiod runs, and the tree shows the split the mesh serves following the canary to promotion")
		tree := func() string {
			out, err := exec.Command(binary, "tree", "--kubeconfig", kubeconfig).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			return string(out)
		}
		Eventually(tree, time.Minute).Should(ContainSubstring("IstioReady=True (Ready)"))
		Eventually(tree, time.Minute).Should(MatchRegexp(`Progressing  v1 (\d+)% / v2 (\d+)%  served v1 \d+% / v2 \d+%`))
		Eventually(tree, 3*time.Minute).Should(MatchRegexp(`Promoted  v1 0% / v2 100%  served v1 [01]% / v2 (99|100)%`))
		res, err = kubectl.Run(nil, "get", "cluster", "local", "-o", "jsonpath={.status.istio.version}")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Stdout).To(Equal(istio.Version))

		children := childProcesses(cmd.Process.Pid)
		Expect(children).To(HaveLen(4), "kubist dev runs etcd, kube-apiserver, Prometheus and istiod as its children")

		By("the terminal shows the stages and the tree, the logs are in files beside the kubeconfig")
		screen := string(session.Out.Contents())
		Expect(screen).To(ContainSubstring("[1/5] Starting etcd and kube-apiserver"))
		Expect(screen).To(ContainSubstring("[5/5] Installing Istio"))
		Expect(screen).NotTo(ContainSubstring("DEBUG"))
		Expect(screen).NotTo(ContainSubstring("INFO"))
		for _, name := range []string{"kubist.log", "kube-apiserver.log", "etcd.log", "istiod.log"} {
			info, err := os.Stat(filepath.Join(dir, name))
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Size()).To(BeNumerically(">", 0), name)
		}
		manager, err := os.ReadFile(filepath.Join(dir, "kubist.log"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(manager)).To(ContainSubstring("Starting Controller"))

		session.Signal(syscall.SIGTERM)
		Eventually(session, time.Minute).Should(gexec.Exit(0))
		for _, pid := range children {
			Expect(alive(pid)).To(BeFalse(), "process %d outlived kubist dev", pid)
		}
	})

	// However kubist dev ends, nothing it started outlives it: Ctrl-C
	// (SIGINT) and SIGTERM stop everything in order, a closed terminal
	// (SIGHUP) as well, and when it is killed outright the kernel kills
	// its children (their parent-death signal).
	DescribeTable("leaves no process behind however it ends",
		func(signal syscall.Signal, clean bool) {
			cmd, session := startDev(filepath.Join(GinkgoT().TempDir(), "kubeconfig"), "--samples=false", "--tree=false")
			children := childProcesses(cmd.Process.Pid)
			Expect(children).To(HaveLen(3), "kubist dev --samples=false runs etcd, kube-apiserver and Prometheus as its children")
			session.Signal(signal)
			if clean {
				Eventually(session, time.Minute).Should(gexec.Exit(0))
			} else {
				Eventually(session, time.Minute).Should(gexec.Exit())
			}
			for _, pid := range children {
				Eventually(func() bool { return alive(pid) }, 30*time.Second).Should(BeFalse(), "process %d outlived kubist dev", pid)
			}
		},
		Entry("Ctrl-C", syscall.SIGINT, true),
		Entry("a closed terminal", syscall.SIGHUP, true),
		Entry("killed outright", syscall.SIGKILL, false),
	)
})

// startDev runs kubist dev on the suite's binaries, its kubeconfig (and
// logs) at kubeconfig, until it says it is running.
func startDev(kubeconfig string, args ...string) (*exec.Cmd, *gexec.Session) {
	GinkgoHelper()
	cmd := exec.Command(kubistBinary(), append([]string{"dev",
		"--assets", env.AssetsDir,
		"--istio", filepath.Dir(istio.Pilot),
		"--kubeconfig-out", kubeconfig,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", "127.0.0.1:0"}, args...)...)
	session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { session.Kill() })
	Eventually(session.Out, 2*time.Minute).Should(gbytes.Say("Kubist is running on a local control plane."))
	return cmd, session
}

var (
	buildOnce   sync.Once
	builtKubist string
	buildErr    error
)

// kubistBinary builds the kubist command once for the suite.
func kubistBinary() string {
	GinkgoHelper()
	buildOnce.Do(func() {
		builtKubist, buildErr = gexec.Build("github.com/kubist-io/kubist/cmd/kubist", "-trimpath", "-ldflags", "-s -w")
	})
	Expect(buildErr).NotTo(HaveOccurred())
	return builtKubist
}

var _ = AfterSuite(gexec.CleanupBuildArtifacts)

// childProcesses lists the pids whose parent is pid, from /proc.
func childProcesses(pid int) []int {
	entries, err := os.ReadDir("/proc")
	Expect(err).NotTo(HaveOccurred())
	var children []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(child); ok && ppid == pid {
			children = append(children, child)
		}
	}
	return children
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != "Z"
}

// procStat reads the parent pid and state of a process.
func procStat(pid int) (ppid int, state string, ok bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", false
	}
	// The command name is in parentheses and may hold spaces; fields follow it.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0], err == nil
}

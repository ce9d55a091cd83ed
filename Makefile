# Kubist — run `make help` for the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

# Versions of the real control plane that tests and `make run` use.
K8S_VERSION  ?= v1.37.2
ETCD_VERSION ?= v3.6.16
# istiod and Istio's charts come from this pseudo-version of istio.io/istio
# (the module proxy serves no tags of it), pinned in hack/istio/go.mod; it is
# a development build of Istio 1.31, stamped as Istio stamps such builds.
ISTIO_MODULE  := $(shell awk '$$1 == "require" && $$2 == "istio.io/istio" {print $$3}' hack/istio/go.mod)
ISTIO_COMMIT  := $(lastword $(subst -, ,$(ISTIO_MODULE)))
ISTIO_VERSION ?= 1.31-alpha.$(ISTIO_COMMIT)
# Prometheus from its Go module (v0.3XX.Y is Prometheus 3.XX.Y), pinned in hack/prometheus/go.mod.
PROMETHEUS_MODULE := $(shell awk '$$1 == "require" && $$2 == "github.com/prometheus/prometheus" {print $$3}' hack/prometheus/go.mod)
# A node's runtime, each pinned in its hack/ module: containerd (with its
# CRI plugin), runc (with seccomp: cgo and Debian's libseccomp-dev) and the
# CNI plugins; the node's Kubernetes commands come from hack/k8s.
CONTAINERD_VERSION := $(shell awk '$$1 == "require" && $$2 == "github.com/containerd/containerd/v2" {print $$3}' hack/containerd/go.mod)
RUNC_VERSION       := $(shell awk '$$1 == "require" && $$2 == "github.com/opencontainers/runc" {print $$3}' hack/runc/go.mod)
CNI_VERSION        := $(shell awk '$$1 == "require" && $$2 == "github.com/containernetworking/plugins" {print $$3}' hack/cni/go.mod)

ROOT      := $(abspath .)
BIN       := $(ROOT)/bin
K8S_BIN   := $(BIN)/k8s/$(K8S_VERSION)
TOOLS_BIN := $(BIN)/tools
KUBIST    := $(BIN)/kubist
# The manager image `make image` builds, as the chart names it.
IMAGE     ?= ghcr.io/kubist-io/kubist:dev

KUBE_APISERVER := $(K8S_BIN)/kube-apiserver
KUBECTL        := $(K8S_BIN)/kubectl
ISTIO_BIN      := $(BIN)/istio/$(ISTIO_VERSION)
PILOT          := $(ISTIO_BIN)/pilot-discovery
ISTIO_CHARTS   := $(ISTIO_BIN)/charts/istiod/Chart.yaml
PROMETHEUS     := $(BIN)/prometheus/$(PROMETHEUS_MODULE)/prometheus
ETCD           := $(K8S_BIN)/etcd
# A node: the Kubernetes node commands beside the control plane's, the
# runtime under bin/node/.
NODE_K8S       := $(addprefix $(K8S_BIN)/,kubelet kube-controller-manager kube-scheduler kube-proxy)
CONTAINERD_BIN := $(BIN)/node/containerd-$(CONTAINERD_VERSION)
CONTAINERD     := $(addprefix $(CONTAINERD_BIN)/,containerd containerd-shim-runc-v2 ctr)
RUNC           := $(BIN)/node/runc-$(RUNC_VERSION)/runc
CNI_BIN        := $(BIN)/node/cni-$(CNI_VERSION)
CNI_PLUGINS    := $(addprefix $(CNI_BIN)/,bridge host-local loopback portmap)
CONTROLLER_GEN := $(TOOLS_BIN)/controller-gen
# Generated manifests the Helm chart renders, synced by `make manifests`.
CHART_FILES    := charts/kubist/files
GOLANGCI_LINT  := $(TOOLS_BIN)/golangci-lint

# Version stamps for the Kubernetes binaries, so clients (kubectl, Helm) see a
# real server version rather than v0.0.0-master.
K8S_MINOR   = $(word 2,$(subst ., ,$(K8S_VERSION)))
K8S_LDFLAGS = -s -w \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(K8S_MINOR) \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=$(K8S_MINOR)

ISTIO_LDFLAGS = -s -w \
	-X istio.io/istio/pkg/version.buildVersion=$(ISTIO_VERSION) \
	-X istio.io/istio/pkg/version.buildGitRevision=$(ISTIO_COMMIT) \
	-X istio.io/istio/pkg/version.buildStatus=Clean \
	-X istio.io/istio/pkg/version.buildTag=$(ISTIO_VERSION) \
	-X istio.io/istio/pkg/version.buildHub=registry.istio.io/testing \
	-X istio.io/istio/pkg/version.buildOS=linux \
	-X istio.io/istio/pkg/version.buildArch=amd64

export KUBEBUILDER_ASSETS := $(K8S_BIN)
# Tests and `kubist dev` find istiod and its charts here.
export KUBIST_ISTIO_DIR := $(ISTIO_BIN)
export KUBIST_PROMETHEUS := $(PROMETHEUS)
# Every go command here compiles with -trimpath, as the released binary and
# the control plane's binaries are built: the tests, the binaries the tests
# build and those of `make run` then share compiled packages in Go's build
# cache instead of compiling them once per set of flags.
export GOFLAGS := $(strip $(GOFLAGS) -trimpath)

GO_PACKAGES := ./...
# The released binary is stripped and built with the flags of the control
# plane's binaries below, so that the packages they share (k8s.io/...) are
# compiled once into Go's build cache.
GO_BUILD_FLAGS := -trimpath -ldflags '-s -w'

# A line when a build starts and one with its time when it ends, so that a
# first run says what it is doing.
stage = mkdir -p $(BIN); echo "==> building $(strip $(1) $(2))"; date +%s > "$(BIN)/.stage-$(1)"
built = echo "==> built $(strip $(1) $(2)) in $$(( $$(date +%s) - $$(cat "$(BIN)/.stage-$(1)") ))s"; rm -f "$(BIN)/.stage-$(1)"
GO_TEST_FLAGS ?= -count=1 -timeout=60m

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: run
run: ## Start a local control plane with Kubist, istiod, Prometheus and demo traffic running and the samples applied (kubist dev).
	@# The binaries build two at a time; a first run builds them all
	@# (see the README for how long), later runs find them under bin/.
	@$(MAKE) --no-print-directory -j2 build envtest
	$(KUBIST) dev --assets $(K8S_BIN)

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs, RBAC and webhook manifests into config/ and the Helm chart, and copy Istio's and the Gateway API's CRDs.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd
	$(CONTROLLER_GEN) rbac:roleName=kubist-manager paths=./reconciler/... paths=./webhook/... paths=./internal/manager/app/... output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) webhook paths=./webhook/... output:webhook:artifacts:config=config/webhook
	@mkdir -p config/istio
	@cp "$$(go list -m -f '{{.Dir}}' istio.io/api)/kubernetes/customresourcedefinitions.gen.yaml" config/istio/crds.yaml
	@chmod 644 config/istio/crds.yaml
	@mkdir -p config/gateway-api
	@d="$$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)/config/crd/standard"; \
		for f in gatewayclasses gateways httproutes grpcroutes referencegrants; do \
			echo "---"; cat "$$d/gateway.networking.k8s.io_$$f.yaml"; done > config/gateway-api/crds.yaml
	@chmod 644 config/gateway-api/crds.yaml
	@# The chart renders what controller-gen generated: never a hand copy.
	@rm -rf $(CHART_FILES) && mkdir -p $(CHART_FILES)/crds $(CHART_FILES)/rbac $(CHART_FILES)/webhook
	@cp config/crd/*.yaml $(CHART_FILES)/crds/
	@cp config/rbac/role.yaml $(CHART_FILES)/rbac/role.yaml
	@cp config/rbac/release-roles.yaml $(CHART_FILES)/rbac/release-roles.yaml
	@cp config/webhook/manifests.yaml $(CHART_FILES)/webhook/manifests.yaml

.PHONY: verify
verify: generate manifests ## Fail when generated files are stale, the code is not gofmt'ed or go vet complains.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "Not gofmt-formatted:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet $(GO_PACKAGES)
	@if [ -n "$$(git status --porcelain -- api config $(CHART_FILES))" ]; then \
		echo "Generated files are stale; run 'make generate manifests' and commit:"; \
		git status --porcelain -- api config $(CHART_FILES); git diff --stat -- api config $(CHART_FILES); exit 1; fi

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint with .golangci.yml.
	$(GOLANGCI_LINT) run $(GO_PACKAGES)

##@ Build

.PHONY: build
build: ## Build the kubist binary into bin/, and bin/kubectl-kubist, the same binary as a kubectl plugin.
	@$(call stage,kubist,)
	go build $(GO_BUILD_FLAGS) -o $(KUBIST) ./cmd/kubist
	ln -sf kubist $(BIN)/kubectl-kubist
	@$(call built,kubist,)

.PHONY: image
image: build ## Build the manager's image without Docker into bin/images/kubist.tar (the Dockerfile's build: the manager alone, static, at /kubist, uid 65532), for `ctr images import` or `docker load`.
	@mkdir -p $(BIN)/images
	CGO_ENABLED=0 go build -tags manager_only -trimpath -ldflags '-s -w' -o $(BIN)/images/kubist-manager ./cmd/kubist
	$(KUBIST) image --binary $(BIN)/images/kubist-manager --name kubist --ref $(IMAGE) --out $(BIN)/images/kubist.tar

.PHONY: envtest
envtest: $(KUBE_APISERVER) $(KUBECTL) $(ETCD) istio $(PROMETHEUS) ## Build kube-apiserver, kubectl, etcd, istiod and Prometheus into bin/ when missing.

.PHONY: istio
istio: $(PILOT) $(ISTIO_CHARTS) ## Build istiod (pilot-discovery) into bin/istio/<version>/ beside Istio's base and istiod charts, when missing.

# Each binary is built from the Go module proxy through a tool module under
# hack/ and written atomically, so an interrupted build never leaves a
# half-written binary that looks cached.
$(KUBE_APISERVER) $(KUBECTL):
	@mkdir -p $(K8S_BIN)
	@$(call stage,$(notdir $@),$(K8S_VERSION))
	cd hack/k8s && go build -trimpath -ldflags '$(K8S_LDFLAGS)' -o $@.tmp k8s.io/kubernetes/cmd/$(notdir $@)
	mv $@.tmp $@
	@$(call built,$(notdir $@),$(K8S_VERSION))

.PHONY: node
node: $(NODE_K8S) $(CONTAINERD) $(RUNC) $(CNI_PLUGINS) ## Build a node's binaries into bin/ when missing: kubelet, kube-controller-manager, kube-scheduler, kube-proxy, containerd, runc, the CNI plugins.

$(NODE_K8S):
	@mkdir -p $(K8S_BIN)
	@$(call stage,$(notdir $@),$(K8S_VERSION))
	cd hack/k8s && go build -trimpath -ldflags '$(K8S_LDFLAGS)' -o $@.tmp k8s.io/kubernetes/cmd/$(notdir $@)
	mv $@.tmp $@
	@$(call built,$(notdir $@),$(K8S_VERSION))

$(CONTAINERD):
	@mkdir -p $(CONTAINERD_BIN)
	@$(call stage,$(notdir $@),$(CONTAINERD_VERSION))
	cd hack/containerd && go build -trimpath \
		-ldflags '-s -w -X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)' \
		-o $@.tmp github.com/containerd/containerd/v2/cmd/$(notdir $@)
	mv $@.tmp $@
	@$(call built,$(notdir $@),$(CONTAINERD_VERSION))

$(RUNC):
	@mkdir -p $(dir $@)
	@$(call stage,runc,$(RUNC_VERSION))
	@test -e /usr/include/seccomp.h || { echo "runc needs libseccomp's headers: apt-get install libseccomp-dev" >&2; exit 1; }
	cd hack/runc && CGO_ENABLED=1 go build -trimpath -tags seccomp -ldflags '-s -w' -o $@.tmp github.com/opencontainers/runc
	mv $@.tmp $@
	@$(call built,runc,$(RUNC_VERSION))

$(CNI_PLUGINS):
	@mkdir -p $(CNI_BIN)
	@$(call stage,cni-$(notdir $@),$(CNI_VERSION))
	cd hack/cni && go build -trimpath -ldflags '-s -w' -o $@.tmp \
		github.com/containernetworking/plugins/plugins/$(if $(filter host-local,$(notdir $@)),ipam,$(if $(filter portmap,$(notdir $@)),meta,main))/$(notdir $@)
	mv $@.tmp $@
	@$(call built,cni-$(notdir $@),$(CNI_VERSION))

$(ETCD):
	@mkdir -p $(K8S_BIN)
	@$(call stage,etcd,$(ETCD_VERSION))
	cd hack/etcd && go build -trimpath -ldflags '-s -w' -o $@.tmp go.etcd.io/etcd/server/v3
	mv $@.tmp $@
	@$(call built,etcd,$(ETCD_VERSION))

# Prometheus with static scrape configs only (remove_all_sd): what the tests
# and `make run` use of it; its web UI's assets are not built in.
$(PROMETHEUS):
	@mkdir -p $(dir $@)
	@$(call stage,prometheus,$(PROMETHEUS_MODULE))
	cd hack/prometheus && go build -trimpath -tags remove_all_sd \
		-ldflags '-s -w -X github.com/prometheus/common/version.Version=$(PROMETHEUS_MODULE:v0.3%=3.%)' \
		-o $@.tmp github.com/prometheus/prometheus/cmd/prometheus
	mv $@.tmp $@
	@$(call built,prometheus,$(PROMETHEUS_MODULE))

# istiod is built from its own module (it needs other k8s.io versions than
# Kubist's go.mod), stamped with the version its charts carry.
$(PILOT):
	@mkdir -p $(ISTIO_BIN)
	@$(call stage,istiod,$(ISTIO_VERSION))
	cd hack/istio && go build -trimpath -ldflags '$(ISTIO_LDFLAGS)' -o $@.tmp istio.io/istio/pilot/cmd/pilot-discovery
	mv $@.tmp $@
	@$(call built,istiod,$(ISTIO_VERSION))

# Istio's own charts from the same module, stamped as Istio's release
# builder stamps them: chart version, appVersion and image tag.
$(ISTIO_CHARTS):
	@rm -rf $(ISTIO_BIN)/charts.tmp && mkdir -p $(ISTIO_BIN)/charts.tmp
	src="$$(cd hack/istio && go mod download -json istio.io/istio | awk -F'"' '$$2 == "Dir" {print $$4}')/manifests/charts"; \
	cp -R "$$src/base" $(ISTIO_BIN)/charts.tmp/base; \
	cp -R "$$src/istio-control/istio-discovery" $(ISTIO_BIN)/charts.tmp/istiod
	chmod -R u+w $(ISTIO_BIN)/charts.tmp
	sed -i -e 's/^version: .*/version: $(ISTIO_VERSION)/' -e 's/^appVersion: .*/appVersion: $(ISTIO_VERSION)/' $(ISTIO_BIN)/charts.tmp/*/Chart.yaml
	sed -i -e 's/^    tag: latest$$/    tag: $(ISTIO_VERSION)/' $(ISTIO_BIN)/charts.tmp/istiod/values.yaml
	grep -q '^    tag: $(ISTIO_VERSION)$$' $(ISTIO_BIN)/charts.tmp/istiod/values.yaml
	rm -rf $(ISTIO_BIN)/charts && mv $(ISTIO_BIN)/charts.tmp $(ISTIO_BIN)/charts

$(CONTROLLER_GEN):
	cd hack/tools && go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(GOLANGCI_LINT):
	cd hack/tools && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

##@ Test

.PHONY: test
test: envtest ## Run every test (unit and envtest suites) against the real control plane, istiod and Prometheus.
	go vet $(GO_PACKAGES)
	go test $(GO_TEST_FLAGS) $(GO_PACKAGES)

# Each fuzz target and its package; `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := webhook:FuzzAdmissionReview policies:FuzzChainInput policies:FuzzChainDocument policies:FuzzCompilePolicy
FUZZTIME ?= 2m

.PHONY: fuzz
fuzz: ## Fuzz admission, the policy chain and Policy compilation, each for FUZZTIME (2m); `make test` runs the seed corpora.
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		go test ./$$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

# The long fault tests carry the build tag `faults`; .ci/run runs them
# after `make test`.
FAULT_TESTS := TestManagerKilled|TestActionsUnderKills|TestNewVersionsUnderKills|TestPlanUnderKills|TestAPIServerDown|TestLeaderKilled|TestShards|TestLoad

.PHONY: test-faults
test-faults: envtest ## The long fault tests: 20 SIGKILLs, actions under 10 SIGKILLs, new versions under 15 SIGKILLs, a three-wave plan under 10 SIGKILLs, kube-apiserver down 20 s, the leader killed, two shards with one killed, 200 clients for 60 s.
	go vet -tags faults ./test/faults
	go test -tags faults $(GO_TEST_FLAGS) -v -run '^($(FAULT_TESTS))$$' ./test/faults

.PHONY: bench
bench: envtest ## Run every Go benchmark in the repository.
	go test -run '^$$' -bench . -benchmem $(GO_PACKAGES)

.PHONY: bench-scale
bench-scale: envtest ## Benchmark the manager on 11,110 Kubist resources (first pass, steady pass, peak RSS, step latency of 1,000 canaries), what each API write of a release costs, and the floor of a step's CPU.
	KUBIST_BENCH_SCALE=1 go test ./test/scale -run '^$$' -bench BenchmarkAPIWrite -benchtime 1000x -timeout 10m
	KUBIST_BENCH_SCALE=1 go test ./test/scale -run '^$$' -bench BenchmarkScale -benchtime 1x -timeout 60m -v
	KUBIST_BENCH_SCALE=1 go test ./test/scale -run '^$$' -bench BenchmarkStepFloor -benchtime 1x -timeout 30m -v

.PHONY: clean
clean: ## Remove built binaries (keeps the cached control plane, istiod and Prometheus under bin/).
	rm -rf $(KUBIST) $(TOOLS_BIN) $(BIN)/dev

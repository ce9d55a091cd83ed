# Kubist — run `make help` for the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

# Versions of the real control plane that tests and `make run` use.
K8S_VERSION  ?= v1.37.2
ETCD_VERSION ?= v3.6.16

ROOT      := $(abspath .)
BIN       := $(ROOT)/bin
K8S_BIN   := $(BIN)/k8s/$(K8S_VERSION)
TOOLS_BIN := $(BIN)/tools
KUBIST    := $(BIN)/kubist

KUBE_APISERVER := $(K8S_BIN)/kube-apiserver
KUBECTL        := $(K8S_BIN)/kubectl
ETCD           := $(K8S_BIN)/etcd
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

export KUBEBUILDER_ASSETS := $(K8S_BIN)

GO_PACKAGES := ./...
GO_TEST_FLAGS ?= -count=1 -timeout=60m

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: run
run: build envtest ## Start a local control plane with Kubist running and the samples applied (kubist dev).
	$(KUBIST) dev --assets $(K8S_BIN)

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs, RBAC and webhook manifests into config/ and the Helm chart, and copy Istio's CRDs.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd
	$(CONTROLLER_GEN) rbac:roleName=kubist-manager paths=./reconciler/... paths=./webhook/... paths=./internal/app/... output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) webhook paths=./webhook/... output:webhook:artifacts:config=config/webhook
	@mkdir -p config/istio
	@cp "$$(go list -m -f '{{.Dir}}' istio.io/api)/kubernetes/customresourcedefinitions.gen.yaml" config/istio/crds.yaml
	@chmod 644 config/istio/crds.yaml
	@# The chart renders what controller-gen generated: never a hand copy.
	@rm -rf $(CHART_FILES) && mkdir -p $(CHART_FILES)/crds $(CHART_FILES)/rbac $(CHART_FILES)/webhook
	@cp config/crd/*.yaml $(CHART_FILES)/crds/
	@cp config/rbac/role.yaml $(CHART_FILES)/rbac/role.yaml
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
build: ## Build the kubist binary into bin/.
	go build -o $(KUBIST) ./cmd/kubist

.PHONY: envtest
envtest: $(KUBE_APISERVER) $(KUBECTL) $(ETCD) ## Build kube-apiserver, kubectl and etcd into bin/k8s/<version>/ when missing.

# Each binary is built from the Go module proxy through a tool module under
# hack/ and written atomically, so an interrupted build never leaves a
# half-written binary that looks cached.
$(KUBE_APISERVER) $(KUBECTL):
	@mkdir -p $(K8S_BIN)
	cd hack/k8s && go build -trimpath -ldflags '$(K8S_LDFLAGS)' -o $@.tmp k8s.io/kubernetes/cmd/$(notdir $@)
	mv $@.tmp $@

$(ETCD):
	@mkdir -p $(K8S_BIN)
	cd hack/etcd && go build -trimpath -ldflags '-s -w' -o $@.tmp go.etcd.io/etcd/server/v3
	mv $@.tmp $@

$(CONTROLLER_GEN):
	cd hack/tools && go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(GOLANGCI_LINT):
	cd hack/tools && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

##@ Test

.PHONY: test
test: envtest ## Run every test (unit and envtest suites) against the real control plane.
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
FAULT_TESTS := TestManagerKilled|TestAPIServerDown|TestLeaderKilled|TestLoad

.PHONY: test-faults
test-faults: envtest ## The long fault tests: 20 SIGKILLs, kube-apiserver down 20 s, the leader killed, 200 clients for 60 s.
	go vet -tags faults ./test/faults
	go test -tags faults $(GO_TEST_FLAGS) -v -run '^($(FAULT_TESTS))$$' ./test/faults

.PHONY: bench
bench: envtest ## Run every Go benchmark in the repository.
	go test -run '^$$' -bench . -benchmem $(GO_PACKAGES)

.PHONY: bench-scale
bench-scale: envtest ## Benchmark the manager on 11,110 Kubist resources: first pass, steady pass, peak RSS, step latency of 1,000 canaries.
	KUBIST_BENCH_SCALE=1 go test ./test/scale -run '^$$' -bench BenchmarkScale -benchtime 1x -timeout 60m -v

.PHONY: clean
clean: ## Remove built binaries (keeps the cached control plane in bin/k8s).
	rm -rf $(KUBIST) $(TOOLS_BIN) $(BIN)/dev

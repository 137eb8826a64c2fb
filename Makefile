# One task runner: make setup | check | test | demo | deploy | deploy-local | lint | localstack-* | bench
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv/bin
LOCALSTACK := infra/localstack/harness.sh
export MEDIA_INGEST_STACK ?= media-ingest

help:  ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup:  ## install system packages and the Python venv (idempotent)
	@bash infra/setup.sh

check: setup  ## the fast gate, under 2 minutes (also the pre-commit hook): format, lint, types, template, unit and handler tests
	$(VENV)/ruff format --check .
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/cfn-lint template.yaml
	$(VENV)/pytest -m "not integration and not slow" -q -n 2  # two workers: about 1.5x faster on two cores

lint: setup  ## format check, lint, types, template checks (cfn-lint and checkov)
	$(VENV)/ruff format --check .
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/cfn-lint template.yaml
	.cache/checkov/bin/checkov --config-file .checkov.yaml --file template.yaml

unit: setup  ## unit and handler tests (moto), no LocalStack
	$(VENV)/pytest -m "not integration"

coverage: setup  ## unit and handler tests with the package's line coverage
	$(VENV)/pytest -m "not integration" -q --cov=media_ingest --cov-report=term-missing:skip-covered

test: check  ## everything: the fast gate, checkov, the slow moto tests, the LocalStack integration tests
	.cache/checkov/bin/checkov --config-file .checkov.yaml --file template.yaml
	$(VENV)/pytest -m "slow" -q
	bash infra/integration.sh

demo: setup  ## start LocalStack, deploy the stack, ingest a sample drop, show the result
	bash infra/demo.sh

deploy: setup  ## deploy to AWS with the current credentials (STACK=media-ingest)
	bash infra/deploy.sh $(MEDIA_INGEST_STACK)

deploy-local: setup localstack-start  ## deploy to the local LocalStack
	AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
	  AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 bash infra/deploy.sh $(MEDIA_INGEST_STACK)

localstack-start:  ## start LocalStack in host mode (installs it on first use)
	bash $(LOCALSTACK) start

localstack-stop:  ## stop LocalStack
	bash $(LOCALSTACK) stop

bench: setup  ## benchmarks vs the naive way (minutes; not part of test); add E2E=1 for LocalStack throughput
	$(VENV)/python -m bench $(if $(E2E),--e2e,)

clean:  ## remove build outputs
	rm -rf build

.PHONY: help setup check lint unit coverage test demo deploy deploy-local localstack-start localstack-stop bench clean

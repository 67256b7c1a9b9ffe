# stellar-carbon — every entry point a developer or CI needs.
#   make run     both services on built-in mock data and the demo inventory (no cluster, no key)
#   make test    the whole suite: lint, unit/integration, chart, end to end on a real control plane
#   make check   the fast inner loop: unit and integration tests only (no Go build needed)
#   make fuzz    the hostile-input properties (webhook reviews, reporter API) with many examples
#   make release the chart package, wheel and sdist in dist/, checked and started from a fresh venv
#   make image   the container image built without a daemon (buildah, debootstrap; root), smoke-run
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: venv run run-webhook run-reporter run-tiers test check fuzz lint e2e control-plane chart browser screenshot release image bench bench-quick demo clean

venv: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

run: venv
	$(BIN)/python -m tools.run_local

run-webhook: venv
	$(BIN)/python -m webhook

run-reporter: venv
	$(BIN)/python -m reporter

run-tiers: venv
	$(BIN)/python -m tiers

check: venv
	$(BIN)/pytest -q tests -m "not e2e and not chart and not browser" -p no:cacheprovider

# FUZZ_EXAMPLES examples per property (the suite runs 100).
FUZZ_EXAMPLES ?= 5000
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider \
		tests/unit/webhook/test_hostile_reviews.py tests/unit/reporter/test_fuzzing.py

lint: venv
	$(BIN)/ruff check shared webhook reporter tiers multicluster tests tools bench
	$(BIN)/ruff format --check shared webhook reporter tiers multicluster tests tools bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

control-plane:
	@bash tests/e2e/controlplane/build.sh

e2e: venv control-plane
	STELLAR_CARBON_BIN=$$(bash tests/e2e/controlplane/build.sh) $(BIN)/pytest -q tests/e2e -m e2e -p no:cacheprovider

chart: venv control-plane
	STELLAR_CARBON_BIN=$$(bash tests/e2e/controlplane/build.sh) $(BIN)/pytest -q tests/chart -p no:cacheprovider

# The dashboard in headless Chromium (Debian's chromium package, or STELLAR_CARBON_CHROMIUM).
browser: venv
	$(BIN)/pytest -q tests/browser -p no:cacheprovider

# docs/dashboard.png from a reporter on mock data.
screenshot: venv
	$(BIN)/python -m tools.dashboard_screenshot docs/dashboard.png

# One pytest run over every tier, so the summary line counts them all.
test: lint control-plane
	STELLAR_CARBON_BIN=$$(bash tests/e2e/controlplane/build.sh) $(BIN)/pytest tests -p no:cacheprovider

# tests/release is collected only with --dist: it checks what is in the artefacts and starts both
# console scripts from the wheel installed in a fresh venv.
release: venv control-plane
	# A stale build/ or egg-info (an older editable install's file list) would leak into the wheel.
	rm -rf dist build stellar_carbon.egg-info
	$(BIN)/python -m build --outdir dist .
	$$(bash tests/e2e/controlplane/build.sh)/helm package charts/stellar-carbon --destination dist
	$(BIN)/pytest -q tests/release --dist dist -p no:cacheprovider

image: venv
	bash tools/image.sh

bench: venv control-plane
	STELLAR_CARBON_BIN=$$(bash tests/e2e/controlplane/build.sh) $(BIN)/python -m bench

bench-quick: venv control-plane
	STELLAR_CARBON_BIN=$$(bash tests/e2e/controlplane/build.sh) $(BIN)/python -m bench --quick

demo: venv control-plane
	STELLAR_CARBON_BIN=$$(bash tests/e2e/controlplane/build.sh) $(BIN)/python -m tools.demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache dist build

# The two commands: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck security unit integration e2e emulator emulators bench clean deploy chromium

$(STAMP): requirements.txt functions/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The BullMQ peer of the pipeline benchmark, for its smoke test in `make test`. Where npm
# is missing or cannot reach its registry, that test skips and says why.
BULLMQ := bench/bullmq/node_modules/.package-lock.json

$(BULLMQ): bench/bullmq/package-lock.json
	@if command -v npm >/dev/null; then \
		cd bench/bullmq && npm ci --no-audit --no-fund --loglevel=error \
		|| echo "bench/bullmq: npm ci failed, the BullMQ smoke test will skip"; \
	else echo "bench/bullmq: no npm, the BullMQ smoke test will skip"; fi

# Debian's Chromium for the dashboard's browser tests: Playwright drives it and never downloads a
# browser of its own. Installed where it is missing and we are root; without it those tests skip.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1 \
		|| echo "chromium: apt-get install failed, the browser tests will skip"; fi

run: $(STAMP)
	$(BIN)/deepflix serve

test: $(STAMP) $(BULLMQ) chromium lint typecheck security
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check functions tests devtools bench
	$(BIN)/ruff format --check functions tests devtools bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Bandit over the deploy unit: clean, each finding answered where it is (`# nosec Bnnn - why`).
security: $(STAMP)
	$(BIN)/bandit -q -r functions

# One tier each (markers in pyproject.toml). `make test` runs them all, with the bench smoke.
# unit: pure and fast, starts nothing (no database file, process or emulator).
unit: $(STAMP)
	$(BIN)/pytest -m unit

# integration: SQLite, ffmpeg, worker processes, the embedded runtime; with the contract suites
# against the embedded adapters and local fakes.
integration: $(STAMP)
	$(BIN)/pytest -m "integration or contract"

e2e: $(STAMP) chromium
	$(BIN)/pytest -m e2e

# The Google adapters, the contract suites and the whole stack against the Google emulators
# (each skips, saying why, where an emulator cannot run).
emulator: $(STAMP)
	$(BIN)/pytest -m emulator

# Emulator mode: the Google Cloud adapters and functions against the Google emulators, running
# until stopped (`make emulator` is the test tier).
emulators: $(STAMP)
	$(BIN)/python -m devtools.stack

# Benchmarks (never part of `make test`, which runs a small smoke of each).
bench: $(STAMP)
	bash bench/setup.sh
	# Operation counts for the cost figures come from the emulator end-to-end run.
	BENCH_RESULTS_DIR=bench/results $(BIN)/pytest -q -p no:cacheprovider \
		tests/emulator/test_stack_e2e.py -k movies_complete
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Deploy with your own credentials (gcloud auth login; a project set with gcloud config):
# Cloud Build runs cloudbuild.yaml for ENV. prod deploys only through its approval-gated trigger.
ENV ?= dev
deploy:
	@test "$(ENV)" = dev || { echo "make deploy: ENV=$(ENV) refused; prod deploys through the approved Cloud Build trigger (infra/README.md)"; exit 2; }
	@test -n "$(TF_STATE_BUCKET)" || { echo "make deploy: set TF_STATE_BUCKET=<bucket> (infra/README.md)"; exit 2; }
	gcloud builds submit --config=cloudbuild.yaml \
		--substitutions=_ENV=$(ENV),_TF_STATE_BUCKET=$(TF_STATE_BUCKET) $(GCLOUD_FLAGS) .

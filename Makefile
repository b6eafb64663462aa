# make run: the service on 127.0.0.1:8000 · make test: the tests · make venv: .venv only · make bench: benchmarks · make lint: ruff · make fuzz: schemathesis · make chaos: the stack under fire
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

.PHONY: venv run test bench lint fuzz chaos

venv: $(STAMP)

# Reinstall only when requirements.txt changed since the last install.
$(STAMP): requirements.txt | $(BIN)/python
	@echo "installing requirements.txt into $(VENV)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(BIN)/python:
	@for py in python3.13 python3.12 python3.11 python3; do \
	  if $$py -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	    echo "creating $(VENV) with $$(command -v $$py)"; \
	    $$py -m venv $(VENV) && exit 0; rm -rf $(VENV); exit 1; \
	  fi; \
	done; \
	echo "Conveyor needs Python 3.11 or newer (looked for python3.13, python3.12, python3.11, python3)" >&2; exit 1

# scripts/run.py prepares secrets and Redis, migrates, collects static files, then starts the Procfile.
run: venv
	$(BIN)/python scripts/run.py

# Test processes (pytest-xdist; 0 runs the tests in this one): most tests wait on workers,
# sockets and subprocesses rather than the CPU, so two halve the wall time on two cores.
TEST_PROCESSES ?= 2

test: venv
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) $(ARGS)

# schemathesis against the API's own schema: every phase, thousands of generated requests.
fuzz: venv
	FUZZ_EXAMPLES=30 FUZZ_PHASES=examples,fuzzing,coverage $(BIN)/python -m pytest -p no:cacheprovider -s tests/test_fuzz.py $(ARGS)

# The whole stack under fire: minutes of load, 100 worker kills, flushes, an outage (chaos/).
chaos: venv
	$(BIN)/python -m chaos $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: venv
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python bench/run_all.py

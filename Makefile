# memberlake: the two commands are `make demo` and `make test`; both set everything up.
PYTHON ?= python3
VENV ?= .venv
SCALE ?= 0.005
SEED ?= 42
DATA ?= data
BIN = $(VENV)/bin

.PHONY: help check venv demo test test-extended test-cluster test-all bench clean clean-data

help:
	@echo "make demo   - venv, install, generate sample data (SCALE=$(SCALE)), run the pipeline locally"
	@echo "make test   - venv, install, run the test suite"
	@echo "make test-extended - the whole pipeline end to end, re-runs, faults, real-data parity (CI runs it)"
	@echo "make test-cluster - spark-submit the pipeline to a standalone cluster on loopback"
	@echo "make bench  - benchmark generate + ingest + clean (BENCH_SCALE=..., see bench/README.md)"

check:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "memberlake prerequisites: $(PYTHON) not found: install Python 3.10-3.13" >&2; exit 1; }
	@$(PYTHON) bin/check_prereqs.py

$(BIN)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[spark,test,bench]"
	@touch $@

venv: check $(BIN)/.installed

demo: venv
	@test -d $(DATA)/landing/members || $(BIN)/memberlake generate --scale $(SCALE) --seed $(SEED) --out $(DATA)/landing
	$(BIN)/memberlake pipeline --landing $(DATA)/landing --lakehouse $(DATA)/lakehouse
	$(BIN)/memberlake tables --lakehouse $(DATA)/lakehouse
	@echo "Delta tables are in $(DATA)/lakehouse; landing files and ground truth in $(DATA)/landing"
	@echo "Report: $(DATA)/lakehouse/_report/memberlake-report.html"
	@echo "MLflow runs: $(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(DATA))/lakehouse/_mlflow/mlflow.db"

# TEST_WORKERS=N runs the suite on N pytest-xdist workers, each with its own local Spark (a
# test file per worker, the e2e files together). Not measured on more cores; on 2 cores the two JVMs
# fight for the CPU and the e2e worker, the longest, got ~2.5x slower, so the default is one.
TEST_WORKERS ?= 0

test: venv
	$(BIN)/pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup,)

test-extended: venv
	$(BIN)/pytest -m extended

test-cluster: venv
	$(BIN)/pytest -m cluster

test-all: venv
	$(BIN)/pytest -m "slow or cluster or extended or not slow"

bench: venv
	$(BIN)/python bench/run.py $(if $(BENCH_SCALE),--scale $(BENCH_SCALE),)

clean-data:
	rm -rf $(DATA)

clean: clean-data
	rm -rf $(VENV) build dist lib/*.egg-info spark-warehouse metastore_db derby.log

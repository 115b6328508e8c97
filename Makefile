# rfmlake: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo
ORDER_LINES ?= 20000
BENCH_ORDER_LINES ?= 1000000
BENCH_ACTIVATION_CUSTOMERS ?= 100000
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export GX_ANALYTICS_ENABLED := false
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help demo test test-unit test-functional bench bench-api bench-10m install prereqs lint clean screenshots

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

prereqs: ## check Python 3.11 and Java 17 are present (says what is missing)
	@tools/check-prereqs.sh >/dev/null

$(VENV)/.installed: pyproject.toml | prereqs
	@py=$$(tools/check-prereqs.sh) && echo "creating $(VENV) with $$py" && $$py -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed ## create .venv and install rfmlake with its dev extras

demo: install ## generate sample data, run the whole pipeline, print the segment summary
	$(BIN)/rfmlake demo --dir $(DEMO_DIR) --order-lines $(ORDER_LINES)

test: install ## run the whole test suite (unit, functional, dbt)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

test-unit: install ## unit tests only (no Spark, no dbt)
	$(BIN)/python -m pytest -q tests/unit

test-functional: install ## functional tests only (Spark, DuckDB, dbt)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q tests/functional

bench: install ## benchmark pipeline (1M lines), quality stages, value models, activation, journeys, profile API; results in bench/results/
	$(BIN)/python bench/run_bench.py --order-lines $(BENCH_ORDER_LINES)
	$(BIN)/python bench/bench_quality.py --lake bench/work/$(BENCH_ORDER_LINES)/lake
	$(BIN)/python bench/bench_activation.py --customers $(BENCH_ACTIVATION_CUSTOMERS)
	$(BIN)/python bench/bench_journeys.py --customers $(BENCH_ACTIVATION_CUSTOMERS)
	$(BIN)/python bench/bench_value.py --customers 1000000
	$(MAKE) bench-api

bench-api: install ## profile API: GET /profiles/{id} and /customers/{id}/recommendations at 100k profiles over loopback (wrk if installed)
	$(BIN)/python bench/bench_api.py --profiles 100000 --duration 15
	$(BIN)/python bench/bench_api.py --profiles 100000 --duration 15 --route recommendations

bench-10m: install ## the same benchmark on 10M order lines
	$(BIN)/python bench/run_bench.py --order-lines 10000000

screenshots: install ## the marketing app's browser test, saving its screenshots to docs/app/ (needs npm ci, chromium)
	RFMLAKE_APP_SCREENSHOTS=docs/app $(BIN)/python -m pytest -q tests/functional/app/test_app_browser.py

lint: install ## ruff
	$(BIN)/ruff check src tests glue_jobs models lambdas bench infra

clean: ## remove the demo output and caches (keeps .venv)
	rm -rf $(DEMO_DIR) .pytest_cache bench/work

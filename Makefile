# `make run` and `make test` set up everything they need on a fresh Debian
# machine (as root) from a clean clone; every step is skipped when already done.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# pip reinstalls only when the project's metadata changed since the last install.
INSTALL_STAMP := $(VENV)/.installed
NODE_DIR := tests/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed

HOST ?= 127.0.0.1
PORT ?= 8000
APP ?= examples.starlette_app.app:app
PYTEST_ARGS ?=

.PHONY: help run test lint typecheck pytest pytest-pure bench setup system-deps node-deps \
	fuzz fuzz-smoke fuzz-deps

help:
	@echo "make run        serve $(APP) on $(HOST):$(PORT) (HOST/PORT overridable)"
	@echo "make test       lint, type-check and run the whole test suite"
	@echo "make lint       ruff check"
	@echo "make typecheck  mypy --strict on asgiws, tests, scripts, examples"
	@echo "make fuzz       fuzz every parser FUZZ_SECONDS each (default 600; FUZZ_TARGETS to choose);"
	@echo "                a new random seed each run (FUZZ_SEED=N to repeat one); the smoke run"
	@echo "                in make test uses FUZZ_SMOKE_SEED (default 1)"
	@echo "                the corpus stays in .fuzz/corpus, findings go to .fuzz/findings"
	@echo "make bench      run benchmarks/run.py (BENCH_ARGS=--quick for a smoke run;"
	@echo "                BENCH_ARGS='--only asgiws-fast asgiws-pure --baseline-rev REV' against git REV)"

# --- set-up ------------------------------------------------------------------

$(PY):
	@# Debian's own python3 needs python3-venv for `-m venv`; install it only then.
	$(PYTHON) -m venv $(VENV) || { \
		rm -rf $(VENV); \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv; \
		$(PYTHON) -m venv $(VENV); }

$(INSTALL_STAMP): pyproject.toml $(wildcard setup.py) | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[standard,dev]'
	touch $@

setup: $(INSTALL_STAMP)

# Browser tests need chromium, broadcast tests redis-server, interop tests node and curl,
# the deployment recipes (tests/deploy) nginx, haproxy, supervisor and systemd's
# systemd-socket-activate. apt-get runs only when one of them is missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v nginx >/dev/null || missing="$$missing nginx"; \
	command -v haproxy >/dev/null || missing="$$missing haproxy"; \
	command -v supervisord >/dev/null || missing="$$missing supervisor"; \
	command -v systemd-socket-activate >/dev/null || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json | system-deps
	cd $(NODE_DIR) && npm ci --no-audit --no-fund
	touch $@

node-deps: $(NODE_STAMP)

# --- targets -----------------------------------------------------------------

run: $(INSTALL_STAMP)
	$(VENV)/bin/asgiws $(APP) --host $(HOST) --port $(PORT)

lint: $(INSTALL_STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(INSTALL_STAMP)
	$(VENV)/bin/mypy --strict asgiws tests scripts examples

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
# $(call run_pytest,ENV,ARGS)
run_pytest = rc=0; $(1) $(PY) -m pytest -p no:cacheprovider $(2) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	exit $$rc

pytest: $(INSTALL_STAMP) system-deps node-deps
	@$(call run_pytest,,$(PYTEST_ARGS))

# The engine again without the C accelerator: the pure-Python fallback is a
# supported path, not a spare.
pytest-pure: $(INSTALL_STAMP)
	@$(call run_pytest,ASGIWS_NO_EXTENSIONS=1,-q tests/unit)

test: lint typecheck pytest pytest-pure fuzz-smoke

# --- fuzzing (tests/fuzz/) ---------------------------------------------------
# atheris (dev extra) instruments the Python code; clang builds the C
# accelerator with coverage hooks so the fuzzer sees inside it too.
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 20
# The smoke run in `make test` is reproducible: one seed, fresh corpora from
# tests/fuzz/seeds.py.  `make fuzz` draws a new seed each run to explore.
FUZZ_SMOKE_SEED ?= 1
FUZZ_SEED ?= 0
FUZZ_TARGETS ?= ws_engine ws_handshake ws_deflate http_parser uri
FUZZ_DIR := .fuzz
FUZZ_SPEEDUPS := $(FUZZ_DIR)/build/_speedups.so
FUZZ_HTTP_SPEEDUPS := $(FUZZ_DIR)/build/_http_speedups.so
FUZZ_CFLAGS = -shared -fPIC -O1 -g -fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp \
	-I$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')

fuzz-deps:
	@command -v clang >/dev/null || { \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang; }

$(FUZZ_SPEEDUPS): asgiws/websocket/_speedups.c | fuzz-deps
	mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $< -o $@

$(FUZZ_HTTP_SPEEDUPS): asgiws/http/_speedups.c | fuzz-deps
	mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $< -o $@

# $(call run_fuzz,SECONDS,SEED): each target in turn; the first finding stops the run.
run_fuzz = for target in $(FUZZ_TARGETS); do \
	$(PY) -m tests.fuzz.runner $$target --seconds $(1) --seed $(2) --corpus $(FUZZ_DIR)/corpus \
		--findings $(FUZZ_DIR)/findings --speedups $(FUZZ_SPEEDUPS) \
		--http-speedups $(FUZZ_HTTP_SPEEDUPS) 2>&1 | \
		grep -v -E '^\#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' ; \
	[ $${PIPESTATUS[0]} -eq 0 ] || { echo "fuzz: $$target found a bug, input in $(FUZZ_DIR)/findings/$$target"; exit 1; }; \
	done

fuzz: $(INSTALL_STAMP) $(FUZZ_SPEEDUPS) $(FUZZ_HTTP_SPEEDUPS)
	@$(call run_fuzz,$(FUZZ_SECONDS),$(FUZZ_SEED))

fuzz-smoke: $(INSTALL_STAMP) $(FUZZ_SPEEDUPS) $(FUZZ_HTTP_SPEEDUPS)
	@$(call run_fuzz,$(FUZZ_SMOKE_SECONDS),$(FUZZ_SMOKE_SEED))

# The peers and the load generator come from the `bench` extra; wrk from apt
# (installed only when missing).  BENCH_ARGS: e.g. --quick, --only asgiws-fast uvicorn-fast,
# --baseline-rev REV (also run asgiws of git REV from a temporary worktree; see benchmarks/README.md).
BENCH_STAMP := $(VENV)/.installed-bench
BENCH_ARGS ?=

$(BENCH_STAMP): pyproject.toml $(wildcard setup.py) | $(INSTALL_STAMP)
	$(PY) -m pip install --quiet -e '.[standard,dev,bench]'
	touch $@

bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null || { \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; }
	$(VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)

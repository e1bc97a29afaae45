# One command per task. `make demo` and `make test` set themselves up on a fresh Debian machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup tools demo test test-openai1 bench check clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

setup: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[cli,test,redis]'

tools:
	bash scripts/install-tools

demo: setup tools
	$(BIN)/otel-llm demo

test: setup tools
	$(BIN)/python -m pytest -q

# The core suite again against an openai 1.x release (the SDK before its httpx2 transport).
test-openai1:
	$(PY) -m venv .venv-openai1
	.venv-openai1/bin/pip install -q -e '.[cli,test]' 'openai==1.109.1'
	.venv-openai1/bin/python -m pytest -q tests/test_instrumentation.py tests/test_host_survives.py \
		tests/test_replay.py tests/test_pricing.py tests/test_attribution.py tests/test_loading.py \
		tests/test_retries.py tests/test_response_cache.py tests/test_metering.py tests/test_bounds.py \
		tests/test_secrets.py tests/test_content.py

bench: setup
	$(MAKE) -f bench/Makefile.inc bench

check: setup
	$(BIN)/pip install -q ruff mypy
	$(BIN)/ruff check otel_llm
	$(BIN)/mypy otel_llm

clean:
	rm -rf $(VENV) .venv-openai1 .bench-venv build *.egg-info

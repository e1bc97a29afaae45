# One command per task. `make demo` and `make test` set themselves up on a fresh Debian machine; the
# installers' own output goes to $(LOG), one line per step on the terminal.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOG ?= .setup.log
STEP := scripts/step $(LOG)
# Both cores (one worker per CPU); a test file's tests stay on one worker, so its module fixtures
# (a built wheel, a Prometheus) are made once.
XDIST ?= -n auto --dist loadfile
# The core suite: the instrumentation itself, no stack binaries, no packaging, no long reliability runs.
CORE_TESTS := tests/test_instrumentation.py tests/test_host_survives.py tests/test_replay.py \
	tests/test_pricing.py tests/test_attribution.py tests/test_loading.py tests/test_retries.py \
	tests/test_response_cache.py tests/test_lean_core.py tests/test_metering.py \
	tests/test_bounds.py tests/test_secrets.py tests/test_content.py tests/test_cardinality.py \
	tests/test_settings.py tests/test_prices_file.py tests/test_provider_cost_recorded.py tests/test_conventions.py \
	tests/test_semconv_view.py tests/test_cost_rollups.py tests/test_hosted_tools.py
# The same suite in the GenAI conventions' opt-in modes, less the files that test the modes themselves.
MODE_TESTS := $(filter-out tests/test_conventions.py tests/test_settings.py tests/test_semconv_view.py,$(CORE_TESTS))
# The lowest and highest Python that pyproject's requires-python claims (pyenv's, when present).
PY_LOWEST ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.11.*/bin/python) python3.11)
PY_HIGHEST ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13.*/bin/python) python3.13)

.PHONY: setup tools browser demo test test-fast test-modes test-openai-releases test-pythons bench bench-ablate bench-chunks bench-rules bench-report check clean

$(BIN)/python:
	@$(STEP) "Creating $(VENV)" $(PY) -m venv $(VENV)

# Reinstalled only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@$(STEP) "Installing otel-llm and its test tools into $(VENV) (pip, from PyPI)" \
		sh -c '$(BIN)/pip install --upgrade pip && $(BIN)/pip install -e ".[cli,test,redis]"'
	@touch $@

setup: $(VENV)/.installed

tools:
	@$(STEP) "Checking Prometheus, Alertmanager, Redis (apt-get installs them on the first run)" bash scripts/install-tools

# Headless Chromium, for the test that opens the HTML report as a person would (not needed by the demo).
browser:
	@$(STEP) "Checking Chromium (apt-get installs it on the first run)" bash scripts/install-chromium

demo: setup tools
	@$(BIN)/otel-llm demo

test: setup tools browser
	$(BIN)/python -m pytest -q $(XDIST)

# The core suite in under two minutes, for the edit-test loop (make test is the complete run).
test-fast: setup
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow" $(CORE_TESTS)

# The core suite again with the latest GenAI names, then with both shapes (OTEL_SEMCONV_STABILITY_OPT_IN's
# gen_ai_latest_experimental and .../dup): the same assertions, read back through tests/semconv_view.py,
# which also checks what only the latest shape carries.
test-modes: setup
	@for mode in latest both; do \
		echo "core suite, GenAI conventions mode $$mode:"; \
		$(BIN)/python -m pytest -q $(XDIST) -m "not slow" --semconv-mode $$mode $(MODE_TESTS) || exit 1; \
	done

# The core suite again on the openai releases pyproject allows besides the newest: the lowest (with the
# httpx it needs: before 1.55.3 the SDK's default client passes httpx's `proxies`, which httpx 0.28
# removed), the last 1.x and the last 2.x (the SDK before its httpx2 transport). A case that needs a
# part of the SDK such a release lacks (the Responses API, `parse`, `compact`, `decisions`, a newer
# keyword) is skipped there by name (tests/conftest.needs_sdk).
OPENAI_RELEASES := "1.26.0 httpx<0.28" "1.109.1" "2.54.0"
# What runs on each: the core suite, and an unchanged app under `opentelemetry-instrument`, as users load it.
RELEASE_TESTS := $(CORE_TESTS) tests/e2e/test_opentelemetry_instrument.py
test-openai-releases:
	@for release in $(OPENAI_RELEASES); do \
		set -- $$release; version=$$1; shift; venv=.venv-openai-$$version; \
		test -x $$venv/bin/python || $(STEP) "Creating $$venv" $(PY) -m venv $$venv || exit 1; \
		$(STEP) "Installing otel-llm with openai $$version into $$venv" \
			$$venv/bin/pip install -e '.[cli,test]' "openai==$$version" "$$@" || exit 1; \
		echo "core suite on openai $$version:"; \
		$$venv/bin/python -m pytest -q $(XDIST) -m "not slow" $(RELEASE_TESTS) || exit 1; \
	done

# The core suite on the lowest and the highest Python that requires-python claims.
test-pythons:
	@for py in $(PY_LOWEST) $(PY_HIGHEST); do \
		version=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])') || exit 1; \
		venv=.venv-py$$version; \
		test -x $$venv/bin/python || $(STEP) "Creating $$venv" $$py -m venv $$venv || exit 1; \
		$(STEP) "Installing otel-llm into $$venv" $$venv/bin/pip install -e '.[cli,test]' || exit 1; \
		echo "core suite on Python $$version:"; \
		$$venv/bin/python -m pytest -q $(XDIST) -m "not slow" $(CORE_TESTS) || exit 1; \
	done

bench: setup
	$(MAKE) -f bench/Makefile.inc bench

bench-ablate: setup  ## where the per-call overhead goes in context, piece by piece (issue 20, targets 1, 2 and 4)
	$(MAKE) -f bench/Makefile.inc bench-ablate

bench-chunks: setup  ## per streamed chunk in context, three fresh processes in a row (issue 20, target 3; ~2 min)
	$(MAKE) -f bench/Makefile.inc bench-chunks

bench-rules: tools  ## the budget rules on a real Prometheus at 1k/10k/100k raw series (issue 20, target 6)
	$(MAKE) -f bench/Makefile.inc bench-rules

bench-report: setup tools  ## otel-llm report over a month with a container crash-looping under one id (1,439 restarts), exact and timed
	$(BIN)/python -m bench.report_restarts --json bench/report_restarts.json

check: setup
	@$(STEP) "Installing ruff and mypy" $(BIN)/pip install ruff mypy
	$(BIN)/ruff check otel_llm bench tests
	$(BIN)/mypy otel_llm

clean:
	rm -rf $(VENV) .venv-openai-* .venv-py3.* .bench-venv build dist *.egg-info $(LOG)

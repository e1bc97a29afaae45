"""The core package is a library: it depends on the OpenTelemetry API, not the SDK, and needs neither
PyYAML nor the command line; those sit behind extras (pyproject.toml)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import tomllib

import otel_llm

PYPROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
OUTSIDE_CORE = ("otel_llm.cli", "otel_llm.simulator")


def _core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(otel_llm.__path__, "otel_llm.")
                  if not m.name.startswith(OUTSIDE_CORE))


def test_core_dependencies_are_the_api_not_the_sdk_nor_yaml() -> None:
    names = [dep.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower()
             for dep in PYPROJECT["project"]["dependencies"]]
    assert "opentelemetry-api" in names
    assert not {"opentelemetry-sdk", "pyyaml", "openai"} & set(names)
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(dep.lower().startswith("pyyaml") for dep in extras["yaml"])
    assert any(dep.startswith("opentelemetry-sdk") for dep in extras["cli"])


def test_importing_and_instrumenting_the_core_loads_no_sdk_yaml_or_cli() -> None:
    modules = _core_modules()
    assert "otel_llm.instrumentor" in modules and "otel_llm.pricing" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        "import otel_llm\n"
        "otel_llm.OpenAIInstrumentor().instrument()\n"
        "import openai\n"
        "openai.OpenAI(api_key='sk-x', base_url='http://127.0.0.1:9/v1')\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'yaml', 'otel_llm.cli', "
        "'otel_llm.simulator')))\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

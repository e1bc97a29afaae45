"""Loading: the entry point, declared dependencies, the peer warning, names and settings."""

from __future__ import annotations

import logging
import sys
import types
from importlib.metadata import entry_points
from typing import Any

import openai
import pytest
from opentelemetry.semconv._incubating.attributes import (
    error_attributes,
    gen_ai_attributes,
    openai_attributes,
    server_attributes,
    session_attributes,
    user_attributes,
)
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

import otel_llm
from otel_llm import semconv as sc
from otel_llm.instrumentor import OpenAIInstrumentor
from otel_llm.settings import ENV_VARIABLES, Settings, load_settings
from tests.conftest import chat_module, total


def test_public_api_is_pinned() -> None:
    assert otel_llm.__all__ == sorted(otel_llm.__all__) == ["OpenAIInstrumentor", "__version__", "attributes"]


def test_entry_point_is_named_otel_llm_not_openai() -> None:
    found = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.value.startswith("otel_llm")]
    assert [(ep.name, ep.value) for ep in found] == [("otel_llm", "otel_llm.instrumentor:OpenAIInstrumentor")]
    assert found[0].load() is OpenAIInstrumentor


def test_declares_the_openai_range() -> None:
    assert list(OpenAIInstrumentor().instrumentation_dependencies()) == ["openai >= 1.26, < 4"]


def test_warns_once_naming_another_openai_instrumentation(instrument: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from otel_llm import instrumentor as module

    monkeypatch.setattr(module, "_peers_warned", set())
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.openai_v2", types.ModuleType("peer"))
    module._warn_peer("opentelemetry-instrumentation-openai-v2", None)  # as its import hook would
    instrument()
    instrument()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "another openai" in r.getMessage()]
    assert len(warnings) == 1
    assert "opentelemetry-instrumentation-openai-v2" in warnings[0]
    assert "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS" in warnings[0] and "OTEL_LLM_ENABLED" in warnings[0]


def test_standard_names_match_the_semantic_conventions_package() -> None:
    packages = (gen_ai_attributes, openai_attributes, server_attributes, error_attributes, session_attributes,
                user_attributes, gen_ai_metrics)
    official = {name: getattr(p, name) for p in packages for name in dir(p) if name.isupper()}
    ours = {name: getattr(sc, name) for name in sc.__all__ if name in official}
    assert len(ours) >= 35
    assert ours == {name: official[name] for name in ours}
    # our own names never invent gen_ai.* keys
    own = [v for k, v in vars(sc).items() if k.isupper() and isinstance(v, str) and v.startswith("otel_llm")]
    assert own and not any(v.startswith("gen_ai.") for v in own)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_LLM_ENABLED", "maybe"),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "sometimes"),
        ("OTEL_LLM_INCLUDE_STREAM_USAGE", "  "),
        ("OTEL_LLM_METRIC_ATTRIBUTES", "user,planet"),
        ("OTEL_LLM_METRIC_USER_LIMIT", "-5"),
        ("OTEL_LLM_METRIC_SERIES_LIMIT", "0"),
        ("OTEL_LLM_TRUST_BAGGAGE", "perhaps"),
        ("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest"),
        ("OTEL_LLM_RESPONSE_CACHE", "postgres://x"),
        ("OTEL_LLM_RESPONSE_CACHE_TTL", "soon"),
        ("OTEL_LLM_RESPONSE_CACHE_MAX_ENTRIES", "0"),
        ("OTEL_LLM_RESPONSE_CACHE_MAX_BYTES", "lots"),
        ("OTEL_LLM_RESPONSE_CACHE_STREAMS", "2"),
        ("OTEL_LLM_RESPONSE_CACHE_NONDETERMINISTIC", "perhaps"),
        ("OTEL_LLM_RESPONSE_CACHE_TIMEOUT", "never"),
    ],
)
def test_a_wrong_value_warns_once_naming_it_and_falls_back(variable: str, value: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings({variable: value})
    assert settings == Settings()
    (record,) = [r for r in caplog.records if r.name == "otel_llm"]
    assert record.levelno == logging.WARNING and variable in record.getMessage() and repr(value) in record.getMessage()


def test_every_variable_is_tested_above() -> None:
    tested = {case[0] for case in test_a_wrong_value_warns_once_naming_it_and_falls_back.pytestmark[0].args[1]}  # type: ignore[attr-defined]
    untested = set(ENV_VARIABLES) - tested - {"OTEL_LLM_PRICES", "OTEL_LLM_REFERENCE_MODEL", "OTEL_LLM_FINGERPRINT_KEY"}  # free text
    assert untested == set()


def test_settings_are_read_once_and_frozen() -> None:
    settings = load_settings({"OTEL_LLM_METRIC_ATTRIBUTES": "user,feature", "OTEL_LLM_INCLUDE_STREAM_USAGE": "never"})
    assert settings.metric_attributes == frozenset({"user", "feature"})
    assert not settings.stream_usage_for("api.openai.com")
    with pytest.raises(AttributeError):
        settings.enabled = False  # type: ignore[misc]
    with pytest.raises(TypeError, match="unknown setting"):
        load_settings({}, colour="blue")


def test_disabled_instruments_nothing(instrument: Any) -> None:
    chat = chat_module()
    before = chat.Completions.__dict__["create"]
    instrument(enabled=False)
    assert chat.Completions.__dict__["create"] is before


def test_a_second_instance_uninstruments_what_the_first_patched(tracer_provider: Any, meter_provider: Any) -> None:
    chat = chat_module()
    before = chat.Completions.__dict__["create"]
    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    assert chat.Completions.__dict__["create"] is not before
    OpenAIInstrumentor().uninstrument()
    assert chat.Completions.__dict__["create"] is before


def test_counters_keep_counting_when_instrumented_again(instrument: Any, api: Any, reader: Any) -> None:
    """uninstrument() then instrument() with the same meter provider: the SDK hands back the first
    observable counters, so the sums they read must be the same ones (cost is not lost)."""
    instrument()
    api.call("chat.completions.create", model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    one_call = total(reader, "otel_llm.cost")
    assert one_call > 0
    instrument()  # the fixture uninstruments first
    for _ in range(2):
        api.call("chat.completions.create", model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert total(reader, "otel_llm.calls") == 3
    assert total(reader, "otel_llm.cost") == pytest.approx(3 * one_call)


LAZY = """
import sys, openai, otel_llm
if "openai.resources.embeddings" in sys.modules:
    print("eager")  # an openai release that imports its resources with the package (1.26): nothing to wait for
    sys.exit()
instrumentor = otel_llm.OpenAIInstrumentor()
instrumentor.instrument()
assert "openai.resources.embeddings" not in sys.modules, "instrument() must not import the SDK's resources"
{between}
openai.OpenAI(api_key="sk-x").embeddings  # the SDK imports the module on first use
import openai.resources.embeddings as module
print(type(module.Embeddings.__dict__["create"]).__name__)
"""


@pytest.mark.parametrize(("between", "expected"), [
    ("", "FunctionWrapper"),
    ("instrumentor.uninstrument()", "function"),
    ("instrumentor.uninstrument(); instrumentor.instrument()", "FunctionWrapper"),
])
def test_sdk_modules_are_patched_when_the_app_first_imports_them(between: str, expected: str) -> None:
    import subprocess

    done = subprocess.run([sys.executable, "-c", LAZY.format(between=between)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    if done.stdout.strip() == "eager":
        pytest.skip(f"openai {openai.__version__} imports its resources with the package")
    assert done.stdout.strip() == expected


PEER_AFTER = """
import logging, sys, types, otel_llm
logging.basicConfig(level=logging.WARNING, format="%(message)s")
otel_llm.OpenAIInstrumentor().instrument()
print("instrumented", flush=True)
import openinference.instrumentation.openai  # a peer loaded after us, as opentelemetry-instrument may do
"""


def test_warns_about_a_peer_imported_after_us(tmp_path: Any) -> None:
    import subprocess

    peer = tmp_path / "openinference" / "instrumentation" / "openai"
    peer.mkdir(parents=True)
    for folder in (peer, peer.parent, peer.parent.parent):
        (folder / "__init__.py").write_text("")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", PEER_AFTER], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("another openai instrumentation") == 1
    assert "openinference-instrumentation-openai" in done.stderr

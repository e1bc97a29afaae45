"""One parser for a setting, whether it comes from the environment or an `instrument()` keyword.

Keyword values from a config file are often strings (`capture_content="false"`): they are parsed as
the environment's are; a value of the wrong type warns once, naming the keyword in words a user reads
(not Python reprs), and falls back to the default. Credentials in URLs never reach a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from otel_llm.settings import ENV_VARIABLES, Settings, load_settings

# field, a string as a config file would give it, what it means, a value of the wrong type
CASES: list[tuple[str, str, Any, Any]] = [
    ("enabled", "false", False, 3.5),
    ("capture_content", "false", False, ["yes"]),
    ("prices", "/etc/otel-llm/prices.yaml", "/etc/otel-llm/prices.yaml", 42),
    ("reference_model", "deepseek-chat", "deepseek-chat", 7),
    ("include_stream_usage", "never", "never", 1),
    ("metric_attributes", "user,feature", frozenset({"user", "feature"}), 5),
    ("metric_user_limit", "1000", 1000, 2.5),
    ("metric_series_limit", "3000", 3000, True),
    ("response_cache", "memory://", "memory://", 1),
    ("response_cache_ttl", "3600", 3600.0, {"seconds": 3600}),
    ("response_cache_max_entries", "50", 50, 1.5),
    ("response_cache_max_bytes", "1024", 1024, [1024]),
    ("response_cache_streams", "true", True, 2),
    ("response_cache_nondeterministic", "false", False, object()),
    ("response_cache_timeout", "0.2", 0.2, [0.2]),
    ("fingerprint_key", "deployment-secret", "deployment-secret", 12345),
    ("trust_baggage", "true", True, 1.0),
    ("semconv_mode", "gen_ai_latest_experimental", "latest", 3),
]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "otel_llm" and r.levelno >= logging.WARNING]


def test_every_setting_is_tested() -> None:
    import dataclasses

    assert {case[0] for case in CASES} == {f.name for f in dataclasses.fields(Settings)}


@pytest.mark.parametrize(("field", "text", "meaning", "_wrong"), CASES)
def test_a_keyword_string_is_parsed_as_the_environment_would(
    field: str, text: str, meaning: Any, _wrong: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert getattr(load_settings({}, **{field: text}), field) == meaning
    assert _warnings(caplog) == []


@pytest.mark.parametrize(("field", "_text", "meaning", "_wrong"), CASES)
def test_a_keyword_of_the_right_type_is_taken(
    field: str, _text: str, meaning: Any, _wrong: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert getattr(load_settings({}, **{field: meaning}), field) == meaning
    assert _warnings(caplog) == []


@pytest.mark.parametrize(("field", "_text", "_meaning", "wrong"), CASES)
def test_a_keyword_of_the_wrong_type_warns_once_naming_it_and_falls_back(
    field: str, _text: str, _meaning: Any, wrong: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings({}, **{field: wrong})
    assert getattr(settings, field) == getattr(Settings(), field)
    (message,) = _warnings(caplog)
    assert f"{field}=" in message and "using the default" in message
    for internal in ("frozenset", "None", "<object", "{'"):
        assert internal not in message, message


def test_the_strings_a_config_file_gives_mean_what_they_say(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings({}, capture_content="false", enabled="false", metric_user_limit="1000",
                             response_cache_ttl="3600")
    assert (settings.capture_content, settings.enabled, settings.metric_user_limit, settings.response_cache_ttl) == (
        False, False, 1000, 3600.0)


def test_a_path_object_names_the_prices_file() -> None:
    assert load_settings({}, prices=Path("/etc/prices.yaml")).prices == "/etc/prices.yaml"


def test_a_list_of_metric_attributes_is_taken() -> None:
    assert load_settings({}, metric_attributes=["user", "api_key"]).metric_attributes == frozenset({"user", "api_key"})


@pytest.mark.parametrize(
    ("variable", "value", "default_text"),
    [
        ("OTEL_LLM_METRIC_ATTRIBUTES", "user,planet", "using the default: user,team,api_key"),
        ("OTEL_LLM_RESPONSE_CACHE", "postgres://x", "using the default: off"),
        ("OTEL_LLM_ENABLED", "maybe", "using the default: true"),
        ("OTEL_LLM_RESPONSE_CACHE_TTL", "soon", "using the default: 3600"),
    ],
)
def test_warnings_speak_the_users_language(variable: str, value: str, default_text: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    load_settings({variable: value})
    (message,) = _warnings(caplog)
    assert default_text in message and "None" not in message and "frozenset" not in message, message


@pytest.mark.parametrize("value", ["alway", "auto,nevr", "aut0", "api.openai.com,alwyas", "http://x/"])
def test_a_stream_usage_typo_is_never_a_host(value: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings({"OTEL_LLM_INCLUDE_STREAM_USAGE": value})
    assert settings.include_stream_usage == "auto"
    (message,) = _warnings(caplog)
    assert "OTEL_LLM_INCLUDE_STREAM_USAGE" in message


@pytest.mark.parametrize("value", ["gateway.internal,api.openai.com", "localhost", "vllm", "10.0.0.7", "my-gateway"])
def test_plausible_hosts_are_taken(value: str, caplog: pytest.LogCaptureFixture) -> None:
    assert load_settings({"OTEL_LLM_INCLUDE_STREAM_USAGE": value}).include_stream_usage == value
    assert _warnings(caplog) == []


@pytest.mark.parametrize(
    "value",
    [
        "postgres://:SECRET@db.internal:5432/0",
        "redis//:SECRET@cache.internal:6379/0",
        "redis:/user:SECRET@cache.internal",
        "user:SECRET@cache.internal",
        "mysql://cache.internal/0?password=SECRET",
    ],
)
def test_a_bad_cache_url_is_never_echoed_with_its_password(value: str, caplog: pytest.LogCaptureFixture) -> None:
    load_settings({"OTEL_LLM_RESPONSE_CACHE": value})
    load_settings({}, response_cache=value)
    messages = _warnings(caplog)
    assert len(messages) == 2
    assert not any("SECRET" in m for m in messages), messages
    assert all("cache.internal" in m or "db.internal" in m for m in messages)


def test_every_variable_maps_to_a_field() -> None:
    import dataclasses

    from otel_llm.settings import _ENV

    assert {field for field, _ in _ENV.values()} == {f.name for f in dataclasses.fields(Settings)}
    assert len(ENV_VARIABLES) == len(_ENV)

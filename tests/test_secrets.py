"""No fragment of a credential in any exported attribute, event, status or log line: real 401 bodies."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

from otel_llm.scrub import scrub
from tests.conftest import API_KEY, Api, FakeAPI, Reply, fixture_json, only_span

MESSAGES = [{"role": "user", "content": "hi"}]
FRAGMENTS = {
    "401_openai.json": ("sk-test-", "INEL"),
    "401_azure.json": (),
    "401_litellm.json": ("sk-...INEL", "INEL", "5ea43e256ed93ce3082d9e89be60b7b2ff5709391df2b35b2eca0e493eeb4c72", "5ea43e25"),
}


@pytest.mark.parametrize("fixture", list(FRAGMENTS))
def test_a_401_body_leaves_no_key_fragment_in_telemetry(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, caplog: pytest.LogCaptureFixture, fixture: str,
) -> None:
    fake.reply(Reply(401, fixture_json(fixture)))
    with pytest.raises(openai.AuthenticationError) as caught:
        api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    for fragment in FRAGMENTS[fixture]:
        assert fragment in str(caught.value)  # the app still gets the provider's message untouched

    span = only_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    exported = span.to_json() + reader.get_metrics_data().to_json() + "".join(r.getMessage() for r in caplog.records)
    for fragment in (*FRAGMENTS[fixture], API_KEY, API_KEY[:8], API_KEY[-4:]):
        assert fragment not in exported
    description = span.status.description or ""
    assert "401" in description and "key" in description.lower()  # still says what went wrong


@pytest.mark.parametrize(("text", "kept"), [
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc", "Authorization"),
    ("api-key: 0123456789abcdef0123456789abcdef", "api-key"),
    ('{"x-portkey-api-key": "pk-live-abcdef123456"}', "x-portkey-api-key"),
    ("Incorrect API key provided: sk-proj-abcd****************************wxyz.", "Incorrect API key provided"),
    ("openrouter key sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "openrouter"),
    ("groq gsk_abcdEFGH1234ijklMNOP5678qrstUVWX9012yzab", "groq"),
])
def test_key_shapes_are_scrubbed(text: str, kept: str) -> None:
    out = scrub(text)
    assert kept in out and "[REDACTED]" in out
    assert not any(secret in out for secret in ("eyJ", "0123456789abcdef0123", "pk-live", "abcd****", "sk-or-v1", "gsk_"))


@pytest.mark.parametrize("text", [
    "The model `gpt-4.1-2025-04-14` does not exist or you do not have access to it.",
    "Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min (TPM): Limit 200000.",
    "This model's maximum context length is 128000 tokens.",
])
def test_ordinary_messages_are_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_fixture_bodies_are_what_the_sdk_parses() -> None:
    for name in FRAGMENTS:
        assert set(json.loads((__import__("pathlib").Path(__file__).parent / "fixtures" / name).read_text())) == {"error"}

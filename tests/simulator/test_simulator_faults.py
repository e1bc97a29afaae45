"""Failure modes through the real openai SDK, sync and async: what each fault raises, and how the
SDK's retries walk a fail sequence."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from sim_helpers import Api, post

from otel_llm.simulator import Simulator

USER: list[Any] = [{"role": "user", "content": "Where is my refund?"}]


def _chat(api: Api, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return api.call(
        "chat.completions.create", model="gpt-4.1", messages=USER, extra_headers=headers, **kwargs
    )


def test_invalid_key_is_always_a_401(make_api: Any) -> None:
    api = make_api(api_key="sk-invalid-rotated-key", max_retries=2)
    with pytest.raises(openai.AuthenticationError) as caught:
        _chat(api)
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    assert "sk-invalid" not in caught.value.message  # the key is redacted, as OpenAI does


def test_missing_key_is_a_401(sim: Simulator) -> None:
    status, _, body = post(sim.base_url + "/chat/completions", {"model": "gpt-4.1", "messages": USER},
                           headers={"authorization": ""})  # fmt: skip
    assert status == 401 and "didn't provide an API key" in json.loads(body)["error"]["message"]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("401", openai.AuthenticationError),
        ("403", openai.PermissionDeniedError),
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("503", openai.InternalServerError),
    ],
)
def test_fault_header_raises_the_sdk_error(api: Api, fault: str, error: type[openai.APIStatusError]) -> None:
    with pytest.raises(error) as caught:
        _chat(api, {"x-simulator-fail": fault})
    assert caught.value.status_code == int(fault)
    body = caught.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}


def test_429_carries_openais_backoff_headers(api: Api) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(api, {"x-simulator-fail": "429"})
    headers = caught.value.response.headers
    assert caught.value.code == "rate_limit_exceeded"
    assert headers["retry-after-ms"] == "1" and headers["retry-after"] == "1"
    assert {
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    } <= set(headers)


def test_persistent_429_exhausts_sdk_retries(make_api: Any, sim: Simulator) -> None:
    api = make_api(max_retries=2)
    with pytest.raises(openai.RateLimitError):
        _chat(api, {"x-simulator-fail": "429"})
    assert sim.stats()["models"]["gpt-4.1"]["status_codes"] == {"429": 3}


def test_sdk_retries_walk_a_fail_sequence_and_succeed_on_the_third_attempt(
    make_api: Any, sim: Simulator
) -> None:
    api = make_api(max_retries=2)
    reply = _chat(api, {"x-simulator-fail-sequence": "429,500"})
    assert reply.choices[0].message.content
    assert sim.stats()["models"]["gpt-4.1"]["status_codes"] == {"200": 1, "429": 1, "500": 1}


def test_fail_sequence_keyed_by_request_id_without_sdk_retries(make_api: Any) -> None:
    api, retrying = make_api(), make_api(max_retries=1)
    headers = {"x-simulator-fail-sequence": "429,503,ok,500", "x-simulator-request-id": "call-1"}
    with pytest.raises(openai.RateLimitError):
        _chat(api, headers)
    with pytest.raises(openai.InternalServerError):
        _chat(api, headers)
    assert _chat(api, headers).choices
    with pytest.raises(openai.InternalServerError):
        _chat(api, headers)
    assert _chat(api, headers).choices  # past the end: success
    assert _chat(retrying, {"x-simulator-fail-sequence": "429", "x-simulator-request-id": "call-2"}).choices


def test_dropped_connection_is_an_api_connection_error(api: Api) -> None:
    with pytest.raises(openai.APIConnectionError):
        _chat(api, {"x-simulator-fail": "drop"})


def test_stream_dropped_mid_way_raises_while_iterating(api: Api) -> None:
    with pytest.raises(openai.APIConnectionError):
        api.stream(
            "chat.completions.create",
            model="gpt-4.1",
            messages=USER,
            extra_headers={"x-simulator-fail": "drop"},
        )


def test_random_fault_rate_hits_every_request_at_rate_one(make_sim: Any, make_api: Any) -> None:
    api = make_api(make_sim(rate_500=1.0))
    with pytest.raises(openai.InternalServerError):
        _chat(api)
    with pytest.raises(openai.InternalServerError):
        api.call("embeddings.create", model="text-embedding-3-small", input="x")
    assert api.call("models.list").data  # listing models is never randomly failed


def test_rpm_limit_is_per_key(make_sim: Any, make_api: Any) -> None:
    sim = make_sim(rpm_limit=2)
    team_a, team_b = make_api(sim, api_key="sk-team-a"), make_api(sim, api_key="sk-team-b")
    _chat(team_a), _chat(team_a)
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(team_a)
    assert caught.value.type == "requests" and "RPM" in caught.value.message
    assert int(caught.value.response.headers["retry-after"]) > 0
    assert _chat(team_b).choices


def test_tpm_limit_rejects_once_the_window_is_spent(make_sim: Any, make_api: Any) -> None:
    api = make_api(make_sim(tpm_limit=10))
    _chat(api)  # about 50 tokens: spends the window
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(api)
    assert caught.value.type == "tokens"

"""The SDK's own retries, made visible: the real openai client against a mock server that answers
429, 500, connection errors and 401 before (or instead of) 200; sync and async, plain and streamed.

Each test runs the same script twice, without and then with instrumentation, and checks that the app
got the same thing both times and that the telemetry says exactly what the server did.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import openai
import pytest

from otel_llm import record as record_module
from otel_llm import retries
from otel_llm import semconv as sc
from otel_llm.attribution import fingerprint
from tests.conftest import API_KEY, Api, FakeAPI, Reply, finished, httpx, only_span, points

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
KEY_ID = fingerprint(API_KEY)
WAIT = "0.02"  # retry-after the mock server asks for, in seconds (the SDK honours it)
WHERE = {sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "gpt-4.1", sc.SERVER_ADDRESS: "api.openai.com"}


def rate_limited(wait: str | None = WAIT) -> Reply:
    headers = {"retry-after": wait} if wait is not None else {}
    return Reply(429, {"error": {"message": "Rate limit reached", "type": "requests"}}, headers=headers)


def server_error() -> Reply:
    return Reply(500, {"error": {"message": "The server had an error", "type": "server_error"}})


def unauthorized() -> Reply:
    return Reply(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                 "code": "invalid_api_key"}})


@pytest.fixture(autouse=True)
def _short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without retry-after the SDK backs off from 0.5 s: start from 10 ms instead (still a real sleep)."""
    monkeypatch.setattr("openai._base_client.INITIAL_RETRY_DELAY", 0.01)


def chat(api: Api, max_retries: int, stream: bool = False) -> Any:
    """What the app gets: the completion, the streamed chunks, or the exception the SDK raised."""
    client = api.client.with_options(max_retries=max_retries)
    try:
        result = api.run(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=stream))
    except openai.APIError as exc:
        return (type(exc), getattr(exc, "status_code", None), str(exc), exc.body)
    if stream:
        return [chunk.model_dump() for chunk in api.consume(result)]
    return result.model_dump()


def replay(instrument: Any, api: Api, fake: FakeAPI, replies: list[Reply], max_retries: int, stream: bool = False) -> Any:
    """Run the script without us, then with us; the app must see the same result and the server the
    same requests. Returns the instrumented outcome."""
    fake.reply(*replies)
    expected = chat(api, max_retries, stream)
    sent = [r.headers.get("x-stainless-retry-count") for r in fake.requests]
    fake.requests.clear()
    instrument()
    fake.reply(*replies)
    got = chat(api, max_retries, stream)
    assert got == expected
    assert [r.headers.get("x-stainless-retry-count") for r in fake.requests] == sent
    return got


def attempts(reader: Any) -> dict[tuple[str, int | None], float]:
    """otel_llm.http.attempts by (status class, status code), each point's other labels checked."""
    out = {}
    for point in points(reader, sc.HTTP_ATTEMPTS):
        attrs = dict(point.attributes)
        key = (attrs.pop(sc.STATUS_CLASS), attrs.pop(sc.HTTP_RESPONSE_STATUS_CODE, None))
        assert attrs == {**WHERE, sc.API_KEY_FINGERPRINT: KEY_ID}
        out[key] = point.value
    return out


def backoffs(reader: Any) -> tuple[int, float]:
    found = points(reader, sc.HTTP_BACKOFF)
    assert all(dict(p.attributes) == WHERE for p in found)
    return sum(p.count for p in found), sum(p.sum for p in found)


def events(span: Any) -> list[dict[str, Any]]:
    assert all(e.name == retries.ATTEMPT_FAILED for e in span.events)
    return [dict(e.attributes) for e in span.events]


def failed(resend: int, status: int | None, error: str, retry_after: float | None = None, **extra: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        sc.HTTP_REQUEST_RESEND_COUNT: resend, sc.ERROR_TYPE: error, sc.STATUS_CLASS: retries.status_class(status),
    }
    if status is not None:
        attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status
    if retry_after is not None:
        attrs[retries.RETRY_AFTER_SECONDS] = retry_after
    return {**attrs, **extra}


def waits(found: list[dict[str, Any]]) -> list[float]:
    return [e[sc.BACKOFF_SECONDS] for e in found if sc.BACKOFF_SECONDS in e]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_429_then_500_then_200(instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, stream: bool) -> None:
    started = time.perf_counter()
    replay(instrument, api, fake, [rate_limited(), server_error()], max_retries=3, stream=stream)
    elapsed = time.perf_counter() - started

    span = only_span(spans)
    found = events(span)
    waited = waits(found)
    assert found == [
        failed(0, 429, "RateLimitError", 0.02, **{sc.BACKOFF_SECONDS: waited[0]}),
        failed(1, 500, "InternalServerError", **{sc.BACKOFF_SECONDS: waited[1]}),
    ]
    assert waited[0] >= 0.02 and waited[1] >= 0.01 * 0.75  # the server's retry-after, then the SDK's jittered backoff
    assert sum(waited) < elapsed
    assert span.attributes[sc.HTTP_REQUEST_RESEND_COUNT] == 2
    assert span.attributes[sc.BACKOFF_SECONDS] == pytest.approx(sum(waited))
    assert span.events[0].timestamp < span.events[1].timestamp < span.end_time
    assert span.status.is_ok
    assert attempts(reader) == {("429", 429): 1, ("5xx", 500): 1, ("2xx", 200): 1}
    count, seconds = backoffs(reader)
    assert count == 2 and seconds == pytest.approx(sum(waited))


def test_429_without_retry_after_uses_the_sdk_backoff(instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    replay(instrument, api, fake, [rate_limited(None)], max_retries=2)
    found = events(only_span(spans))
    assert found == [failed(0, 429, "RateLimitError", **{sc.BACKOFF_SECONDS: waits(found)[0]})]
    assert attempts(reader) == {("429", 429): 1, ("2xx", 200): 1}


def test_retry_after_ms_is_read_as_the_sdk_reads_it(instrument: Any, api: Api, fake: FakeAPI, spans: Any) -> None:
    reply = Reply(429, {"error": {"message": "slow down"}}, headers={"retry-after-ms": "15", "retry-after": "9"})
    replay(instrument, api, fake, [reply], max_retries=1)
    (event,) = events(only_span(spans))
    assert event[retries.RETRY_AFTER_SECONDS] == 0.015 and event[sc.BACKOFF_SECONDS] >= 0.015


def test_401_is_not_retried_and_counted_apart(instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    got = replay(instrument, api, fake, [unauthorized()], max_retries=3)
    assert got[:2] == (openai.AuthenticationError, 401)

    span = only_span(spans)
    assert events(span) == [failed(0, 401, "AuthenticationError")]
    assert sc.HTTP_REQUEST_RESEND_COUNT not in span.attributes and sc.BACKOFF_SECONDS not in span.attributes
    assert span.attributes[sc.ERROR_TYPE] == "AuthenticationError"
    assert attempts(reader) == {("401", 401): 1}
    assert backoffs(reader) == (0, 0)


def test_403_has_its_own_class(instrument: Any, api: Api, fake: FakeAPI, reader: Any) -> None:
    replay(instrument, api, fake, [Reply(403, {"error": {"message": "region not supported"}})], max_retries=3)
    assert attempts(reader) == {("403", 403): 1}


def test_retries_exhausted_leave_one_event_per_attempt(instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    got = replay(instrument, api, fake, [rate_limited()] * 3, max_retries=2)
    assert got[:2] == (openai.RateLimitError, 429)

    span = only_span(spans)
    found = events(span)
    waited = waits(found)
    assert found == [
        failed(0, 429, "RateLimitError", 0.02, **{sc.BACKOFF_SECONDS: waited[0]}),
        failed(1, 429, "RateLimitError", 0.02, **{sc.BACKOFF_SECONDS: waited[1]}),
        failed(2, 429, "RateLimitError", 0.02),  # the last: the SDK gave up, no wait
    ]
    assert span.attributes[sc.HTTP_REQUEST_RESEND_COUNT] == 2
    assert span.attributes[sc.ERROR_TYPE] == "RateLimitError"
    assert attempts(reader) == {("429", 429): 3}
    assert backoffs(reader)[0] == 2


def test_connection_error_then_success(instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    replay(instrument, api, fake, [Reply(raise_exc=httpx.ConnectError("connection refused"))], max_retries=2)
    found = events(only_span(spans))
    assert found == [
        failed(0, None, "APIConnectionError", **{retries.EXCEPTION_TYPE: "ConnectError", sc.BACKOFF_SECONDS: waits(found)[0]})
    ]
    assert attempts(reader) == {("none", None): 1, ("2xx", 200): 1}


def test_timeouts_until_the_sdk_gives_up(instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    timeout = Reply(raise_exc=httpx.ReadTimeout("read timed out"))
    got = replay(instrument, api, fake, [timeout, timeout], max_retries=1)
    assert got[0] is openai.APITimeoutError
    found = events(only_span(spans))
    assert found == [
        failed(0, None, "APITimeoutError", **{retries.EXCEPTION_TYPE: "ReadTimeout", sc.BACKOFF_SECONDS: waits(found)[0]}),
        failed(1, None, "APITimeoutError", **{retries.EXCEPTION_TYPE: "ReadTimeout"}),
    ]
    assert attempts(reader) == {("none", None): 2}


def test_no_retry_no_events(instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    replay(instrument, api, fake, [], max_retries=3)
    span = only_span(spans)
    assert span.events == ()
    assert sc.HTTP_REQUEST_RESEND_COUNT not in span.attributes and sc.BACKOFF_SECONDS not in span.attributes
    assert attempts(reader) == {("2xx", 200): 1}
    assert backoffs(reader) == (0, 0)


def test_key_fingerprint_label_follows_the_metric_attributes_setting(instrument: Any, api: Api, fake: FakeAPI, reader: Any) -> None:
    instrument(metric_attributes="user,team")
    fake.reply(rate_limited())
    chat(api, max_retries=1)
    assert [dict(p.attributes).get(sc.API_KEY_FINGERPRINT) for p in points(reader, sc.HTTP_ATTEMPTS)] == [None, None]


def test_the_apps_own_retry_loop_gives_one_span_per_sdk_call(instrument: Any, api: Api, fake: FakeAPI, spans: Any,
                                                             tracer_provider: Any) -> None:
    """The README's recipe: wrap the loop in a span of the app's own; each SDK call nests under it."""
    instrument()
    fake.reply(rate_limited(), rate_limited())
    tracer = tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("answer question") as loop:
        for attempt in range(3):
            loop.set_attribute("app.retry.attempt", attempt)
            if not isinstance(chat(api, max_retries=0), tuple):
                break
    calls = [s for s in finished(spans) if s.name == "chat gpt-4.1"]
    (parent,) = [s for s in finished(spans) if s.name == "answer question"]
    assert len(calls) == 3 and all(s.parent.span_id == parent.context.span_id for s in calls)
    assert [len(s.events) for s in calls] == [1, 1, 0]


# --- the host survives ----------------------------------------------------------------------------
def _spy_on_backoff(monkeypatch: pytest.MonkeyPatch) -> tuple[list[float], list[float]]:
    """The waits the SDK chose (its own `_calculate_retry_timeout`) and the sleeps it then made, on this
    thread: equal lists mean nothing of ours added, cut or lengthened a wait (no clock involved)."""
    chosen: list[float] = []
    slept: list[float] = []
    base = openai._base_client
    calculate, sleep, asleep = base.BaseClient._calculate_retry_timeout, base.time.sleep, base.anyio.sleep
    here = threading.get_ident()

    def spy_calculate(self: Any, *args: Any, **kwargs: Any) -> float:
        timeout: float = calculate(self, *args, **kwargs)
        chosen.append(timeout)
        return timeout

    def spy_sleep(seconds: float) -> None:
        if threading.get_ident() == here:
            slept.append(seconds)
        sleep(seconds)

    async def spy_asleep(seconds: float) -> None:
        slept.append(seconds)
        await asleep(seconds)

    monkeypatch.setattr(base.BaseClient, "_calculate_retry_timeout", spy_calculate)
    monkeypatch.setattr(base.time, "sleep", spy_sleep)
    monkeypatch.setattr(base.anyio, "sleep", spy_asleep)
    return chosen, slept


SCRIPTS = {"recovers": [rate_limited(), server_error()], "gives up": [rate_limited(), unauthorized()]}


@pytest.mark.parametrize("script", list(SCRIPTS))
@pytest.mark.parametrize("target", [
    (retries, "record_retry"),
    (record_module, "attempt_key"),
    (retries, "retried_failure"),
    (record_module, "final_failure"),
    (retries, "event_attributes"),
], ids=lambda t: t[1])
def test_a_fault_in_a_retry_hook_leaves_the_call_unharmed(instrument: Any, api: Api, fake: FakeAPI, spans: Any,
                                                          monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                          target: tuple[Any, str], script: str) -> None:
    chosen, slept = _spy_on_backoff(monkeypatch)
    fake.reply(*SCRIPTS[script])
    expected = chat(api, max_retries=3)
    retried = len(chosen)
    assert retried >= 1 and slept == chosen
    instrument()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected fault in otel_llm")

    monkeypatch.setattr(*target, boom)
    chosen.clear()
    slept.clear()
    fake.reply(*SCRIPTS[script])
    assert chat(api, max_retries=3) == expected
    assert len(chosen) == retried and slept == chosen  # the SDK slept what it chose to, no more, no less
    assert len(finished(spans)) == 1  # the span still ended, once
    if target[1] != "final_failure" or script == "gives up":
        assert any("internal error" in r.getMessage() for r in caplog.records if r.name == "otel_llm")


def test_hooks_survive_a_foreign_object_as_the_current_call(instrument: Any, api: Api, fake: FakeAPI) -> None:
    """Whatever sits in `current_call`, the hooks' own guards hold and the SDK runs as without us."""
    from otel_llm.instrumentor import current_call

    fake.reply(rate_limited())
    expected = chat(api, max_retries=1)
    instrument()
    fake.reply(rate_limited())
    token = current_call.set(object())  # type: ignore[arg-type]
    try:
        assert chat(api, max_retries=1) == expected
    finally:
        current_call.reset(token)


# --- pure parts -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "expected"), [
    (200, "2xx"), (201, "2xx"), (400, "4xx"), (401, "401"), (403, "403"), (404, "4xx"), (429, "429"),
    (500, "5xx"), (503, "5xx"), (None, "none"),
])
def test_status_class(status: int | None, expected: str) -> None:
    assert retries.status_class(status) == expected


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, None), ({"retry-after": "2"}, 2.0), ({"retry-after": "0.5"}, 0.5), ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after-ms": "x", "retry-after": "3"}, 3.0), ({"retry-after": "soon"}, None),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
])
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retries.retry_after(headers) == expected


def test_uninstrument_removes_the_hooks(instrument: Any) -> None:
    from openai._base_client import AsyncAPIClient, SyncAPIClient

    names = ("_sleep_for_retry", "_retry_request", "_request", "_process_response")  # whichever this SDK has

    def methods() -> dict[tuple[str, str], Any]:
        return {(cls.__name__, name): vars(cls).get(name) for cls in (SyncAPIClient, AsyncAPIClient) for name in names}

    before = methods()
    instrumentor = instrument()
    during = methods()  # (a wrapt wrapper compares equal to what it wraps: compare identities)
    assert all(during[k] is not v for k, v in before.items() if v is not None)
    instrumentor.uninstrument()
    assert all(v is before[k] for k, v in methods().items())

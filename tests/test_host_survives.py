"""A fault inside otel_llm never reaches the app: every wrapper, with a fault injected into our code."""

from __future__ import annotations

import gc
import logging
from typing import Any

import openai
import pytest

from otel_llm import call as call_module
from otel_llm import instrumentor as instrumentor_module
from otel_llm import record as record_module
from otel_llm import streams as streams_module
from otel_llm.telemetry import Telemetry
from tests.conftest import Api, chat_module, finished

MESSAGES = [{"role": "user", "content": "hi"}]

# (method path, kwargs, how to use the result) for every patched entry point.
CASES = [
    ("chat.completions.create", {"model": "gpt-4.1", "messages": MESSAGES}, "value"),
    ("chat.completions.create", {"model": "gpt-4.1", "messages": MESSAGES, "stream": True}, "stream"),
    ("chat.completions.create", {"model": "gpt-4.1", "messages": MESSAGES, "stream": True}, "next"),
    ("chat.completions.parse", {"model": "gpt-4.1", "messages": MESSAGES}, "value"),
    ("completions.create", {"model": "gpt-3.5-turbo-instruct", "prompt": "x"}, "value"),
    ("embeddings.create", {"model": "text-embedding-3-small", "input": "x"}, "value"),
    ("responses.create", {"model": "gpt-4.1", "input": "x"}, "value"),
    ("responses.create", {"model": "gpt-4.1", "input": "x", "stream": True}, "stream"),
    ("images.generate", {"model": "gpt-image-1", "prompt": "x"}, "value"),
    ("responses.compact", {"model": "gpt-5.1", "input": "x"}, "value"),
    ("decisions.create", {"model": "gpt-6-luna", "input": "x",
                          "questions": [{"type": "predicate", "instructions": "x?"}]}, "value"),
    ("batches.create", {"completion_window": "24h", "endpoint": "/v1/chat/completions", "input_file_id": "f"}, "value"),
]


def _use(api: Api, result: Any, how: str) -> Any:
    if how == "stream":  # a for loop
        return [c.model_dump() for c in api.consume(result)]
    if how == "next":  # next() / __anext__() until the end
        return [c.model_dump() for c in _by_next(api, result)]
    return result.model_dump()


def _by_next(api: Api, stream: Any) -> list[Any]:
    async def drain() -> list[Any]:
        out = []
        while True:
            try:
                out.append(await stream.__anext__())
            except StopAsyncIteration:
                return out

    if api.is_async:
        return list(api.run(drain()))
    out = []
    while True:
        try:
            out.append(next(stream))
        except StopIteration:
            return out


@pytest.mark.parametrize(("path", "kwargs", "how"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
@pytest.mark.parametrize("fault", ["start", "finish", "source", "chunk", "end"])
def test_app_is_unharmed_by_a_fault_in_our_code(
    instrument: Any, api: Api, spans: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    path: str, kwargs: dict[str, Any], how: str, fault: str,
) -> None:
    expected = _use(api, api.call(path, **kwargs), how)  # what the app gets without us
    instrument()

    def boom(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("injected fault in otel_llm")

    target = {
        "start": (Telemetry, "start"),
        "finish": (call_module.Call, "complete"),
        "source": (streams_module, "chunk_source"),  # what a `for` loop's generator iterates
        "chunk": (call_module.Call, "on_chunk" if "responses" not in path else "on_event"),
        "end": (record_module.Recorder, "record"),
    }[fault]
    monkeypatch.setattr(*target, boom)

    result = api.call(path, **kwargs)
    got = _use(api, result, how)
    del result
    gc.collect()

    assert got == expected
    if fault == "start":
        assert finished(spans) == []  # no span, and the SDK ran untouched
    else:
        assert len(finished(spans)) == 1  # the span still ended, once
    on_path = fault in ("start", "end") or (fault == "source" and how == "stream") or (
        fault == "finish" and how == "value") or (fault == "chunk" and how != "value")
    faults = [r for r in caplog.records if r.name == "otel_llm" and "internal error" in r.getMessage()]
    if on_path:
        assert faults and all(r.levelno == logging.DEBUG for r in faults)


def test_a_fault_is_logged_once_not_per_call(instrument: Any, api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    instrument()
    monkeypatch.setattr(call_module.Call, "complete", lambda *a: 1 / 0)
    for _ in range(5):
        api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    assert len([r for r in caplog.records if "internal error" in r.getMessage()]) == 1


@pytest.mark.parametrize("fault", ["telemetry", "patching"])
def test_a_fault_while_instrumenting_leaves_the_sdk_as_it_was_and_says_so(
    instrument: Any, api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fault: str,
) -> None:
    """instrument() never fails the app's start-up. An ImportError is the worst case: opentelemetry-instrument
    logs it at debug level only, so the app would run with no telemetry and nobody told."""
    chat = chat_module().Completions
    before = vars(chat)["create"]
    expected = api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES).model_dump()

    def boom(*_: Any, **__: Any) -> Any:
        raise ImportError("injected")

    if fault == "telemetry":
        monkeypatch.setattr(instrumentor_module, "Telemetry", boom)
    else:  # after the SDK modules already loaded were patched
        monkeypatch.setattr(instrumentor_module.retries, "hooks", boom)
    instrument()
    errors = [r for r in caplog.records if r.name == "otel_llm" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "could not instrument" in errors[0].getMessage()
    assert "ImportError: injected" in errors[0].getMessage()
    assert vars(chat)["create"] is before  # nothing left half-patched
    assert api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES).model_dump() == expected


def test_sdk_exception_object_passes_through_untouched(instrument: Any, api: Api, fake: Any, spans: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import Reply

    fake.reply(Reply(429, {"error": {"message": "slow down", "type": "requests"}}, headers={"retry-after": "0"}))
    with pytest.raises(openai.RateLimitError) as bare:
        api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    instrument()
    monkeypatch.setattr(record_module.Recorder, "record", lambda *a: 1 / 0)  # our failure path is broken too
    fake.reply(Reply(429, {"error": {"message": "slow down", "type": "requests"}}, headers={"retry-after": "0"}))
    with pytest.raises(openai.RateLimitError) as caught:
        api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    assert caught.value.status_code == 429 and str(caught.value) == str(bare.value)
    # Our fault left no trace on the app's exception: not as its cause, not as its context.
    assert caught.value.__cause__ is bare.value.__cause__ is None
    assert type(caught.value.__context__) is type(bare.value.__context__)
    assert len(finished(spans)) == 1  # and the span still ended


def test_wrapper_passes_through_when_reentered(instrument: Any, api: Api, spans: Any) -> None:
    """A helper that calls a wrapped method inside another gives one span, not two."""
    instrument()
    token = instrumentor_module.current_call.set(object())  # type: ignore[arg-type]
    try:
        api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    finally:
        instrumentor_module.current_call.reset(token)
    assert finished(spans) == []


# --- faults while recording: the span always ends, the call is always counted ----------------------
RECORDING_CASES = [c for c in CASES if c[0] in ("chat.completions.create", "embeddings.create", "responses.create")]


def _recording_fault(monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    from otel_llm import ledger, pricing

    def boom(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("injected fault in otel_llm")

    if fault == "pricing":
        monkeypatch.setattr(pricing.PriceBook, "rates", boom)
    elif fault == "extraction":
        monkeypatch.setattr(call_module, "response_info", boom)
        monkeypatch.setattr(call_module, "usage_of", boom)
    else:
        monkeypatch.setattr(ledger.Row, "add", boom)


@pytest.mark.parametrize(("path", "kwargs", "how"), RECORDING_CASES, ids=[f"{c[0]}-{c[2]}" for c in RECORDING_CASES])
@pytest.mark.parametrize("fault", ["pricing", "extraction", "ledger"])
def test_a_fault_while_recording_still_ends_the_span_and_counts_the_call(
    instrument: Any, api: Api, spans: Any, reader: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, path: str, kwargs: dict[str, Any], how: str, fault: str,
) -> None:
    from otel_llm import semconv as sc
    from tests.conftest import only_span, points, total

    expected = _use(api, api.call(path, **kwargs), how)
    instrument(include_stream_usage="always")
    _recording_fault(monkeypatch, fault)

    result = api.call(path, **kwargs)
    got = _use(api, result, how)
    del result
    gc.collect()

    assert got == expected
    attrs = dict(only_span(spans).attributes)  # the span ended, exactly once
    durations = points(reader, sc.GEN_AI_CLIENT_OPERATION_DURATION)
    assert sum(p.count for p in durations) == 1  # the histograms do not depend on the sums
    if fault != "ledger":
        assert total(reader, sc.CALLS) == 1  # counted, whatever else failed
    if fault == "pricing":  # tokens still known, the call counted as unpriced rather than $0 in silence
        assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0 and attrs.get(sc.UNPRICED) is True
        assert total(reader, sc.TOKENS) > 0 and total(reader, sc.CALLS_UNPRICED) == 1
    if fault == "ledger":  # cost still on the span
        assert attrs[sc.COST_USD] > 0
    faults = [r for r in caplog.records if r.name == "otel_llm" and "internal error" in r.getMessage()]
    assert faults and all(r.levelno == logging.DEBUG for r in faults)

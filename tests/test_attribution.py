"""Who caused each call: scopes, decorators, baggage, the request's user, across threads and tasks."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry import baggage, context

import otel_llm
from otel_llm import semconv as sc
from tests.conftest import Api, finished, only_span, points

MESSAGES = [{"role": "user", "content": "hi"}]


def _chat(api: Api, **kwargs: Any) -> Any:
    return api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, **kwargs)


def test_scope_tags_spans_and_bounded_metric_labels(instrumented: Any, api: Api, spans: Any, reader: Any) -> None:
    with otel_llm.attributes(user_id="alice", session_id="s-1", team="support", feature="triage"):
        _chat(api)

    attrs = only_span(spans).attributes
    assert (attrs["user.id"], attrs["session.id"], attrs["otel_llm.team"], attrs["otel_llm.feature"]) == (
        "alice", "s-1", "support", "triage")
    (point,) = points(reader, sc.COST)
    labels = dict(point.attributes)
    assert (labels["user.id"], labels["otel_llm.team"]) == ("alice", "support")
    assert "session.id" not in labels and "otel_llm.feature" not in labels  # sessions never on metrics


def test_nested_scopes_override_only_what_they_name(instrumented: Any, api: Api, spans: Any) -> None:
    with otel_llm.attributes(user_id="alice", team="support"):
        with otel_llm.attributes(session_id="s-2"):
            _chat(api)
        _chat(api)
    inner, outer = finished(spans)
    assert (inner.attributes["user.id"], inner.attributes["session.id"], inner.attributes["otel_llm.team"]) == ("alice", "s-2", "support")
    assert "session.id" not in outer.attributes


def test_decorator_sync_and_async(instrumented: Any, api: Api, spans: Any) -> None:
    @otel_llm.attributes(user_id="bob")
    def sync_handler() -> Any:
        return _chat(api)

    @otel_llm.attributes(user_id="carol")
    async def async_handler() -> Any:
        return await api.client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)

    if api.is_async:
        api.run(async_handler())
        assert only_span(spans).attributes["user.id"] == "carol"
    else:
        sync_handler()
        assert only_span(spans).attributes["user.id"] == "bob"


def test_baggage_from_middleware_and_the_request_user_fallback(instrumented: Any, api: Api, spans: Any) -> None:
    ctx = baggage.set_baggage("user.id", "dave", baggage.set_baggage("session.id", "s-9", baggage.set_baggage("team", "sales")))
    token = context.attach(ctx)
    try:
        _chat(api)
        with otel_llm.attributes(user_id="erin"):  # our scope wins over baggage
            _chat(api)
    finally:
        context.detach(token)
    _chat(api, user="frank")
    _chat(api, safety_identifier="hash-123")
    first, second, third, fourth = finished(spans)
    assert (first.attributes["user.id"], first.attributes["session.id"], first.attributes["otel_llm.team"]) == ("dave", "s-9", "sales")
    assert (second.attributes["user.id"], second.attributes["session.id"]) == ("erin", "s-9")
    assert third.attributes["user.id"] == "frank"
    assert fourth.attributes["user.id"] == "hash-123"


def test_threads_that_copy_context_and_asyncio_tasks(instrumented: Any, api: Api, spans: Any) -> None:
    if api.is_async:
        async def one(user: str) -> None:
            with otel_llm.attributes(user_id=user):
                await asyncio.sleep(0)
                await api.client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)

        async def many() -> None:
            await asyncio.gather(*(one(f"user-{i}") for i in range(20)))

        api.run(many())
    else:
        def one(user: str) -> None:
            with otel_llm.attributes(user_id=user):
                ctx = contextvars.copy_context()
                with ThreadPoolExecutor(1) as pool:
                    pool.submit(ctx.run, _chat, api).result()

        with ThreadPoolExecutor(4) as outer:
            list(outer.map(one, [f"user-{i}" for i in range(20)]))
    assert sorted(s.attributes["user.id"] for s in finished(spans)) == sorted(f"user-{i}" for i in range(20))


def test_metric_user_labels_are_capped(instrument: Any, api: Api, spans: Any, reader: Any) -> None:
    instrument(metric_user_limit=3)
    for i in range(6):
        with otel_llm.attributes(user_id=f"u{i}"):
            _chat(api)
    users = {dict(p.attributes)["user.id"] for p in points(reader, sc.CALLS)}
    assert users == {"u0", "u1", "u2", "_other"}
    assert {s.attributes["user.id"] for s in finished(spans)} == {f"u{i}" for i in range(6)}  # spans keep the exact id


def test_the_user_label_cap_holds_when_instrumented_again(instrument: Any, api: Api, reader: Any) -> None:
    """The series live on with the meter's sums: instrumenting again must not open room for more."""
    for round_ in range(2):
        instrument(metric_user_limit=2)  # the fixture uninstruments first
        for i in range(2):
            with otel_llm.attributes(user_id=f"r{round_}-u{i}"):
                _chat(api)
    users = {dict(p.attributes)["user.id"] for p in points(reader, sc.CALLS)}
    assert users == {"r0-u0", "r0-u1", "_other"}


def test_metric_attributes_are_switchable(instrument: Any, api: Api, reader: Any) -> None:
    instrument(metric_attributes="feature")
    with otel_llm.attributes(user_id="alice", team="t", feature="search"):
        _chat(api)
    (point,) = points(reader, sc.CALLS)
    labels = dict(point.attributes)
    assert labels["otel_llm.feature"] == "search"
    assert "user.id" not in labels and "otel_llm.team" not in labels and "otel_llm.api_key.fingerprint" not in labels

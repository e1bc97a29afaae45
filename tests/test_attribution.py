"""Who caused each call: scopes, decorators, baggage, the request's user, across threads and tasks."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
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


def test_baggage_from_middleware_and_the_request_user_fallback(instrument: Any, api: Api, spans: Any) -> None:
    instrument(trust_baggage=True)  # the operator's opt-in: baggage is set inside the service
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


def _with_baggage(values: dict[str, str]) -> Any:
    ctx = None
    for key, value in values.items():
        ctx = baggage.set_baggage(key, value, ctx)
    return context.attach(ctx)


def test_baggage_from_a_caller_is_ignored_unless_the_operator_trusts_it(instrumented: Any, api: Api, spans: Any) -> None:
    token = _with_baggage({"user.id": "ceo", "team": "finance", "session.id": "s-x", "feature": "board"})
    try:
        _chat(api)
        _chat(api, user="u-7")
    finally:
        context.detach(token)
    first, second = finished(spans)
    for key in ("user.id", "otel_llm.team", "session.id", "otel_llm.feature"):
        assert key not in first.attributes
    assert second.attributes["user.id"] == "u-7" and "otel_llm.team" not in second.attributes


def test_the_apps_own_values_rank_above_trusted_baggage(instrument: Any, api: Api, spans: Any) -> None:
    instrument(trust_baggage=True)
    token = _with_baggage({"user.id": "ceo", "team": "finance"})
    try:
        _chat(api, user="u-7")  # the request's own user wins over baggage
        with otel_llm.attributes(team="support"):
            _chat(api, user="u-8")
        with otel_llm.attributes(user_id="u-9"):
            _chat(api, user="u-10")  # our scope wins over the request's user
    finally:
        context.detach(token)
    first, second, third = finished(spans)
    assert (first.attributes["user.id"], first.attributes["otel_llm.team"]) == ("u-7", "finance")
    assert (second.attributes["user.id"], second.attributes["otel_llm.team"]) == ("u-8", "support")
    assert third.attributes["user.id"] == "u-9"


def test_50k_teams_from_baggage_keep_metric_memory_bounded(instrument: Any, api: Api, reader: Any) -> None:
    if api.is_async:
        pytest.skip("the bound is in the shared recording path")
    import tracemalloc

    from opentelemetry.sdk.trace import TracerProvider

    instrumentor = instrument(trust_baggage=True, metric_attributes="user,team,feature", metric_user_limit=100)
    telemetry = instrumentor.telemetry
    telemetry.tracer = TracerProvider().get_tracer("bound")  # spans kept by no exporter
    client = api.client
    from openai.types.chat import ChatCompletion

    from tests.conftest import fixture_json

    response = ChatCompletion.model_validate(fixture_json("chat_completion.json"))

    def drive(start: int, stop: int) -> None:
        for i in range(start, stop):
            token = _with_baggage({"team": f"team-{i}", "feature": f"feature-{i}"})
            try:
                telemetry.start("chat", client, {"model": "gpt-4.1"}, False).complete(response)
            finally:
                context.detach(token)

    drive(0, 2_000)
    tracemalloc.start()
    try:
        drive(2_000, 50_000)
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert grown < 5 * 1024 * 1024, f"{grown / 2**20:.1f} MB kept after 48,000 new teams"
    points_ = points(reader, "otel_llm.calls")
    teams = {p.attributes.get("otel_llm.team") for p in points_}
    assert len(teams) <= 102 and "_other" in teams
    assert sum(p.value for p in points_) == 50_000


def test_a_keyed_fingerprint_differs_from_the_plain_one_and_is_stable(monkeypatch: pytest.MonkeyPatch,
                                                                      instrument: Any, api: Api, spans: Any) -> None:
    import hashlib
    import hmac

    from tests.conftest import API_KEY

    instrument()
    _chat(api)
    instrument(fingerprint_key="deployment-secret")
    _chat(api)
    monkeypatch.setenv("OTEL_LLM_FINGERPRINT_KEY", "deployment-secret")
    instrument()  # the same secret from the environment: the same id on every replica
    _chat(api)
    plain, keyed, from_env = (s.attributes["otel_llm.api_key.fingerprint"] for s in finished(spans))
    assert plain == hashlib.sha256(API_KEY.encode()).hexdigest()[:12]
    assert keyed == hmac.new(b"deployment-secret", API_KEY.encode(), hashlib.sha256).hexdigest()[:12]
    assert from_env == keyed != plain

"""The per-process cost rollups the exact-spend rules read (issue 20, target 6): `otel_llm.cost.by_scope`
(user, team, key) and `otel_llm.cost.by_model` (request model, server address), computed at collection
from the cost series. They must equal the sums of those series, never decrease, and fail alone."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion

import otel_llm
from otel_llm import semconv as sc
from otel_llm.extract import usage_of
from otel_llm.ledger import OVERFLOW_VALUE
from tests.conftest import Api, FakeAPI, Reply, collect, fixture_json

SCOPE_LABELS = (sc.USER_ID, sc.TEAM, sc.API_KEY_FINGERPRINT, sc.METRIC_OVERFLOW)
MODEL_LABELS = (sc.GEN_AI_REQUEST_MODEL, sc.SERVER_ADDRESS, sc.METRIC_OVERFLOW)


def rolled_up(cost_points: list[Any], labels: tuple[str, ...]) -> dict[tuple[tuple[str, Any], ...], float]:
    """The cost series summed by `labels`: what a rollup must report."""
    out: dict[tuple[tuple[str, Any], ...], float] = defaultdict(float)
    for p in cost_points:
        out[tuple((k, v) for k, v in sorted(p.attributes.items()) if k in labels)] += p.value
    return dict(out)


def as_dict(points: list[Any]) -> dict[tuple[tuple[str, Any], ...], float]:
    out: dict[tuple[tuple[str, Any], ...], float] = {}
    for p in points:
        key = tuple(sorted(p.attributes.items()))
        assert key not in out, f"two points for {key}"
        out[key] = p.value
    return out


def test_rollups_equal_the_cost_series_summed_by_scope_and_by_model(
    instrument: Any, reader: Any, api: Api, fake: FakeAPI
) -> None:
    instrument()
    chat = fixture_json("chat_completion.json")
    calls = [("alice", "support", "gpt-4o-mini"), ("alice", "support", "gpt-4o"), ("bob", "support", "gpt-4o-mini"),
             ("carol", "sales", "gpt-4o"), (None, None, "gpt-4o"), ("alice", "support", "gpt-4o-mini")]
    for user, team, model in calls:
        fake.reply(Reply(body={**chat, "model": model}))
        with otel_llm.attributes(user_id=user, team=team):
            result = api.call("chat.completions.create", model=model, messages=[{"role": "user", "content": "hi"}])
        assert result.model == model
    data = collect(reader)
    cost = data[sc.COST]
    assert len(cost) == 5  # alice's second gpt-4o-mini call adds to her first's series
    by_scope, by_model = as_dict(data[sc.COST_BY_SCOPE]), as_dict(data[sc.COST_BY_MODEL])
    assert by_scope == pytest.approx(rolled_up(cost, SCOPE_LABELS), rel=1e-12)
    assert by_model == pytest.approx(rolled_up(cost, MODEL_LABELS), rel=1e-12)
    assert len(by_scope) == 4 and len(by_model) == 2  # alice, bob, carol, no user; two models, one server
    # No label a budget scope does not read, and none of the scope labels on the per-model series.
    assert {k for key in by_scope for k, _ in key} == {sc.USER_ID, sc.TEAM, sc.API_KEY_FINGERPRINT}
    assert {k for key in by_model for k, _ in key} == {sc.GEN_AI_REQUEST_MODEL, sc.SERVER_ADDRESS}
    assert sum(by_scope.values()) == pytest.approx(sum(p.value for p in cost), rel=1e-12)


def test_rollups_never_decrease_and_stay_equal_past_the_caps(instrument: Any, reader: Any) -> None:
    """Users past OTEL_LLM_METRIC_USER_LIMIT and attribute sets past the series limit go to `_other` and
    the overflow series; no cost series is ever removed, so the rollups only grow."""
    instrumentor = instrument(metric_user_limit=5, metric_series_limit=40)
    telemetry = instrumentor.telemetry
    client = openai.OpenAI(api_key="sk-test", base_url="https://gateway.example.com/v1")
    priced = ChatCompletion.model_validate(fixture_json("chat_completion.json"))
    assert usage_of(priced.usage) is not None
    previous: dict[str, dict[tuple[tuple[str, Any], ...], float]] = {sc.COST_BY_SCOPE: {}, sc.COST_BY_MODEL: {}}
    for batch in range(12):
        for i in range(batch * 15, batch * 15 + 15):
            call = telemetry.start("chat", client, {"model": f"model-{i % 7}", "user": f"user-{i % 23}"}, False)
            call.complete(priced)  # answered by a priced model, whatever was asked
        data = collect(reader)
        cost = data[sc.COST]
        for name, labels in ((sc.COST_BY_SCOPE, SCOPE_LABELS), (sc.COST_BY_MODEL, MODEL_LABELS)):
            now = as_dict(data[name])
            assert now == pytest.approx(rolled_up(cost, labels), rel=1e-12), name
            for key, value in previous[name].items():
                assert now[key] >= value, f"{name}{key} fell from {value} to {now[key]}"
            previous[name] = now
    overflowed = {k for k in previous[sc.COST_BY_SCOPE] if (sc.METRIC_OVERFLOW, True) in k}
    assert overflowed, "the series limit was reached: the overflow series must be rolled up too"
    assert any((sc.USER_ID, OVERFLOW_VALUE) in k for k in previous[sc.COST_BY_SCOPE])


def test_a_fault_in_a_rollup_leaves_the_call_and_the_other_metrics_unharmed(
    instrument: Any, reader: Any, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_llm import ledger

    instrument()
    with otel_llm.attributes(user_id="alice"):
        api.call("chat.completions.create", model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    good = as_dict(collect(reader)[sc.COST_BY_SCOPE])

    def broken(*_args: Any) -> Any:
        raise RuntimeError("a bug in the rollup")

    monkeypatch.setattr(ledger.Rollup, "_project", broken)
    with otel_llm.attributes(user_id="bob"):
        result = api.call("chat.completions.create", model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert result.choices[0].message.content  # the SDK's own result
    data = collect(reader)
    assert {p.attributes.get(sc.USER_ID) for p in data[sc.COST]} == {"alice", "bob"}
    assert sum(p.value for p in data[sc.CALLS]) == 2
    # The rollup keeps its last good values (present and never lower) rather than vanish or fall.
    assert as_dict(data[sc.COST_BY_SCOPE]) == good
    monkeypatch.undo()
    healed = as_dict(collect(reader)[sc.COST_BY_SCOPE])
    assert set(healed) > set(good) and all(healed[k] >= v for k, v in good.items())


# A forked child's rollups start from zero with its sums: tests/test_fork.py, test_a_forked_child_starts_its_sums_from_zero_even_without_the_recipe.

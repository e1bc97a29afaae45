"""Numbers beyond any real call never reach the sums: rejected, counted with a reason, marked, warned once."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest

from otel_llm import semconv as sc
from otel_llm.ledger import Ledger, Sum
from tests.conftest import Api, FakeAPI, Reply, fixture_json, only_span, points, total

MESSAGES = [{"role": "user", "content": "Say this is a test"}]


def _with_usage(**usage: Any) -> Reply:
    body = fixture_json("chat_completion.json")
    body["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15} | usage
    return Reply(body=body)


def _rejected(reader: Any) -> list[tuple[str, float]]:
    return [(dict(p.attributes)[sc.REJECTED_REASON], p.value) for p in points(reader, sc.USAGE_REJECTED_CALLS)]


@pytest.mark.parametrize("tokens", [10**15, int("9" * 400)], ids=["1e15", "400 digits"])
def test_a_usage_beyond_any_real_call_is_rejected_not_summed(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, caplog: pytest.LogCaptureFixture,
    tokens: int,
) -> None:
    fake.reply(_with_usage(prompt_tokens=tokens), _with_usage(prompt_tokens=tokens), _with_usage())
    for _ in range(3):
        result = api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
        assert result.usage is not None  # the app gets the response as sent

    spans_ = spans.get_finished_spans()
    assert len(spans_) == 3  # every span ended
    assert spans_[0].attributes[sc.USAGE_REJECTED] == "tokens_out_of_range"
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in spans_[0].attributes and sc.COST_USD not in spans_[0].attributes
    assert total(reader, sc.CALLS) == 3  # every call counted
    assert _rejected(reader) == [("tokens_out_of_range", 2)]
    # Only the third, real call reached the sums.
    assert total(reader, sc.TOKENS, **{"gen_ai.token.type": "input"}) == 10
    assert 0 < total(reader, sc.COST) < 0.001
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "beyond any real call" in r.getMessage()]
    assert len(warned) == 1


def _prices(tmp_path: Path, text: str) -> str:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    return str(path)


def test_a_cost_beyond_any_real_call_is_rejected(instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any,
                                                 tmp_path: Path) -> None:
    # The dearest price a prices file accepts ($1 a token) on 50 million input tokens (within the token
    # bound): $50,000,000 for one call is no real call's cost.
    instrument(prices=_prices(tmp_path, "models:\n  gpt-4.1-2025-04-14: {input: 1000000, output: 8}\n"))
    fake.reply(_with_usage(prompt_tokens=50_000_000, total_tokens=50_000_005))
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    assert only_span(spans).attributes[sc.USAGE_REJECTED] == "cost_out_of_range"
    assert _rejected(reader) == [("cost_out_of_range", 1)]
    assert total(reader, sc.COST) == 0 and total(reader, sc.CALLS) == 1


def test_swapped_prices_never_make_savings_negative(instrument: Any, api: Api, spans: Any, reader: Any,
                                                   tmp_path: Path) -> None:
    # cached input dearer than fresh input: the "savings" of the 1024 cached tokens would be negative
    instrument(prices=_prices(tmp_path, "models:\n  gpt-4.1-2025-04-14: {input: 1.0, cached_input: 2.0, output: 8.0}\n"))
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    attrs = only_span(spans).attributes
    assert attrs[sc.USAGE_REJECTED] == "savings_out_of_range" and sc.CACHE_SAVINGS_USD not in attrs
    assert all(p.value >= 0 for p in points(reader, sc.CACHE_SAVINGS))
    assert _rejected(reader) == [("savings_out_of_range", 1)]
    assert total(reader, sc.COST) > 0  # the cost itself is sound and still counted


@pytest.mark.parametrize("amount", [math.nan, math.inf, -1.0, 10**400], ids=["nan", "inf", "negative", "huge"])
def test_no_sum_of_ours_ever_decreases_or_takes_nan(amount: float) -> None:
    total_ = Sum(Ledger())
    key = (("k", "v"),)
    total_.add(key, 2.0)
    total_.add(key, amount)
    assert [o.value for o in total_.observe(None)] == [2.0]  # type: ignore[arg-type]

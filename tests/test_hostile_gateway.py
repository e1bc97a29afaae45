"""A hostile gateway, for real, on loopback: every bad response reaches the app exactly as it would without
otel_llm, no bad number reaches the sums, no counter of ours ever takes an impossible value, and no
fragment of a key reaches the telemetry."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from otel_llm import semconv as sc
from tests.conftest import collect, finished, total
from tests.hostile_gateway import LEAKED_KEY, SCENARIOS, hostile_gateway

MESSAGES = [{"role": "user", "content": "hello"}]
KEY = "sk-hostile-test-0123456789abcdefghijklmnop"


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with hostile_gateway() as root:
        yield root


def _what_the_app_sees(root: str, scenario: str) -> tuple[str, Any]:
    """The outcome of one call as the app sees it: the response's fields, or the exception's class,
    status and message."""
    client = openai.OpenAI(base_url=f"{root}/{scenario}/v1", api_key=KEY, max_retries=0)
    try:
        result = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)  # type: ignore[arg-type]
    except Exception as exc:
        return "raised", (type(exc), getattr(exc, "status_code", None), str(exc))
    finally:
        client.close()
    return "returned", (type(result), repr(result.model_dump(warnings=False)))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_app_sees_exactly_what_the_gateway_sent(scenario: str, gateway: str, instrument: Any) -> None:
    bare = _what_the_app_sees(gateway, scenario)
    instrument()
    assert _what_the_app_sees(gateway, scenario) == bare


def test_no_bad_number_reaches_the_sums_and_no_key_reaches_the_telemetry(
    gateway: str, instrument: Any, spans: Any, reader: Any,
) -> None:
    instrument()
    for scenario in sorted(SCENARIOS):
        _what_the_app_sees(gateway, scenario)
    sane = [s for s in finished(spans) if s.attributes.get(sc.COST_USD) is not None
            and s.attributes.get(sc.USAGE_REJECTED) is None]
    # Every call is counted, once; only the sane answers' tokens and costs are summed.
    assert total(reader, sc.CALLS) == len(SCENARIOS) == len(finished(spans))
    assert total(reader, sc.COST) == pytest.approx(sum(s.attributes[sc.COST_USD] for s in sane))
    assert 0 < total(reader, sc.COST) < 1
    assert total(reader, sc.TOKENS, **{sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_INPUT}) == 10 * len(sane)
    assert total(reader, sc.USAGE_REJECTED_CALLS) >= 2  # 10**15 and 400 digits at least
    for name, points in collect(reader).items():
        for point in points:
            value = getattr(point, "value", None)
            if value is not None:
                assert math.isfinite(value) and value >= 0, (name, point.attributes)
    for span in finished(spans):
        exported = [span.status.description or "", *map(str, span.attributes.values())]
        exported += [str(v) for e in span.events for v in (e.attributes or {}).values()]
        for text in exported:
            assert LEAKED_KEY not in text and LEAKED_KEY[:12] not in text and LEAKED_KEY[-12:] not in text
            assert KEY[:12] not in text and KEY[-12:] not in text

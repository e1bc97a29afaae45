"""What our telemetry recorded, per UTC day and model, read from Prometheus.

Each day's figure is the exact growth of the raw counters over that day (the same query as
`otel-llm report`, see otel_llm.cli.report: no `increase()`, which extrapolates and misses a new
series' first increment), evaluated at the day's end, or at the settled horizon for a partial day.

All the Prometheus I/O is `_query` below, one place, to switch to the shared helper
(otel_llm/cli/queries.py) when it lands.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from . import BillingError, Figures, Line, normalize_model

__all__ = ["METRICS", "exact_growth", "fetch"]

MODEL_LABEL: Final = "gen_ai_request_model"
TOKEN_LABEL: Final = "gen_ai_token_type"
METRICS: Final = {
    "cost": "otel_llm_cost_USD_total",
    "tokens": "otel_llm_tokens_total",
    "unmetered": "otel_llm_calls_unmetered_total",
}
_TOKEN_FIELDS: Final = {"input": "input_tokens", "output": "output_tokens", "cache_read": "cache_read_tokens"}
Sample = tuple[dict[str, str], float]


def exact_growth(metric: str, selector: str, window_seconds: int, by: Iterable[str]) -> str:
    """The exact growth of `metric{selector}` over the window ending at the query time, summed by `by`."""
    m = f"{metric}{{{selector}}}" if selector else metric
    w = f"{max(int(window_seconds), 1)}s"
    return (f"sum by ({', '.join(by)}) ("
            f"(last_over_time({m}[{w}]) - last_over_time({m}[5m] offset {w})) >= 0"
            f" or last_over_time({m}[{w}]))")


def fetch(prometheus: str, days: Iterable[datetime], horizon: datetime, selector: str = "") -> tuple[list[Line], dict[tuple[str, str], float]]:
    """Recorded lines per day and model, and the calls recorded with no usage (unmetered) per
    (date, model). `days` are UTC midnights; a day is read up to `horizon` at most."""
    lines: list[Line] = []
    unmetered: dict[tuple[str, str], float] = {}
    for start in days:
        end = min(start + timedelta(days=1), horizon)
        if end <= start:
            continue
        date, window = start.strftime("%Y-%m-%d"), int((end - start).total_seconds())
        by_model: dict[str, Figures] = {}
        for labels, value in _query(prometheus, exact_growth(METRICS["cost"], selector, window, [MODEL_LABEL]), end):
            by_model.setdefault(normalize_model(labels.get(MODEL_LABEL, "")), Figures()).add(Figures(cost_usd=value))
        tokens = _query(prometheus, exact_growth(METRICS["tokens"], selector, window, [MODEL_LABEL, TOKEN_LABEL]), end)
        for labels, value in tokens:
            field = _TOKEN_FIELDS.get(labels.get(TOKEN_LABEL, ""))
            if field:
                figures = Figures(**{field: value})
                by_model.setdefault(normalize_model(labels.get(MODEL_LABEL, "")), Figures()).add(figures)
        for labels, value in _query(prometheus, exact_growth(METRICS["unmetered"], selector, window, [MODEL_LABEL]), end):
            key = (date, normalize_model(labels.get(MODEL_LABEL, "")))
            unmetered[key] = unmetered.get(key, 0.0) + value
        lines += [Line(date, model or "(no model)", figures) for model, figures in sorted(by_model.items())]
    return lines, unmetered


def _query(base_url: str, promql: str, at: datetime, timeout: float = 30.0) -> list[Sample]:
    """An instant query; the one place that talks to Prometheus."""
    params = {"query": promql, "time": f"{at.timestamp():.3f}"}
    url = f"{base_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise BillingError(f"Prometheus at {base_url} answered {error.code}: {error.read()[:200]!r}") from None
    except (OSError, ValueError) as error:
        raise BillingError(f"cannot query Prometheus at {base_url}: {error}") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        raise BillingError(f"Prometheus rejected the query: {body.get('error') if isinstance(body, dict) else body}")
    try:
        samples = [(dict(item["metric"]), float(item["value"][1])) for item in body["data"]["result"]]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BillingError(f"Prometheus at {base_url} answered an unexpected shape ({exc!r:.80})") from None
    return [(labels, value) for labels, value in samples if math.isfinite(value)]

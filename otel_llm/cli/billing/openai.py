"""OpenAI's own figures: the organization Costs API (spend per day, project and line item) and the
Usage API (tokens and requests per day, model, project and API key), read with an admin key.

Spend per model comes from the Costs API's line items, named like `gpt-4o-2024-08-06, input` (the part
before the last ", " is the model); a line item that names no model (e.g. "Web search tool calls")
stays a row of its own, billed and never recorded, so it shows in the difference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, Final

from . import BillingError, Figures, Line, normalize_model
from ._http import Params, pages

__all__ = ["DEFAULT_BASE_URL", "fetch", "number", "parse_costs", "parse_usage"]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"


def fetch(base_url: str, admin_key: str, start: datetime, end: datetime) -> list[Line]:
    """Every cost and usage line from `start` (inclusive) to `end` (exclusive), all pages."""
    span: Params = {"start_time": int(start.timestamp()), "end_time": int(end.timestamp()), "bucket_width": "1d"}
    base = base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {admin_key}"}
    costs = pages(f"{base}/organization/costs", {**span, "group_by": ["project_id", "line_item"], "limit": 180},
                   headers, admin_key, "the OpenAI Costs API")
    lines = [line for page in costs for line in parse_costs(page)]
    for kind in ("completions", "embeddings"):
        usage = pages(f"{base}/organization/usage/{kind}",
                       {**span, "group_by": ["model", "project_id", "api_key_id"], "limit": 31},
                       headers, admin_key, f"the OpenAI Usage API ({kind})")
        lines += [line for page in usage for line in parse_usage(page)]
    return lines


def parse_costs(page: dict[str, Any]) -> Iterator[Line]:
    """Lines of one Costs API page: cost only."""
    for bucket, result in _results(page):
        amount = result.get("amount") or {}
        currency = str(amount.get("currency") or "usd").lower()
        if currency != "usd":
            raise BillingError(f"the OpenAI Costs API reports {currency!r}, only usd is supported")
        item = str(result.get("line_item") or "(all line items)")
        model = item.rsplit(", ", 1)[0] if ", " in item else item
        yield Line(_date(bucket), normalize_model(model), Figures(cost_usd=number(amount.get("value"))),
                   project=result.get("project_id"))


def parse_usage(page: dict[str, Any]) -> Iterator[Line]:
    """Lines of one Usage API page (completions or embeddings): tokens and requests, no cost."""
    for bucket, result in _results(page):
        embeddings = str(result.get("object", "")).endswith("embeddings.result")
        figures = Figures(
            input_tokens=number(result.get("input_tokens")),
            output_tokens=0.0 if embeddings else number(result.get("output_tokens")),
            cache_read_tokens=0.0 if embeddings else number(result.get("input_cached_tokens")),
            requests=number(result.get("num_model_requests")),
        )
        yield Line(_date(bucket), normalize_model(str(result.get("model") or "(all models)")), figures,
                   project=result.get("project_id"), api_key=result.get("api_key_id"))


def _results(page: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    data = page.get("data")
    if not isinstance(data, list):
        raise BillingError("the OpenAI billing API answered a page without `data`")
    for bucket in data:
        for result in bucket.get("results") or []:
            yield bucket, result


def _date(bucket: dict[str, Any]) -> str:
    return datetime.fromtimestamp(int(bucket["start_time"]), timezone.utc).strftime("%Y-%m-%d")


def number(value: Any) -> float:
    """Amounts come as numbers, sometimes as strings; null is 0; anything else is an error, not 0."""
    if value is None:
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not math.isfinite(number):
        raise BillingError(f"the OpenAI billing API answered a value that is not a number: {str(value)[:40]!r}")
    return number

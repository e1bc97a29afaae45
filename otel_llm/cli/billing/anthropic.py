"""Anthropic's own figures: the Admin API cost report and messages usage report, read with an admin key.

What the documented API offers (platform.claude.com/docs/en/api/admin/cost_report and
.../usage_report): `GET /v1/organizations/cost_report`, daily buckets only, `group_by[]` workspace_id
and description; with description each result names its `model`, `cost_type` (tokens, web_search,
code_execution, ...) and `token_type` (uncached_input_tokens, output_tokens, cache_read_input_tokens,
cache_creation.*); `amount` is a decimal string in cents (the currency's lowest unit). Pages by
`next_page` / `has_more`, at most 31 buckets a page. `GET /v1/organizations/usage_report/messages`
gives tokens per day, `group_by[]` model, api_key_id, workspace_id, service_tier, context_window.
What it does not offer: cost per API key (only per workspace), and Priority Tier costs (documented as
absent from the cost report). So spend is per day and model (and workspace, shown as the project);
tokens per day, model, workspace and key. Model names are Anthropic's (`claude-sonnet-4-5-...`): a
gateway that calls the model otherwise will not match by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from . import BillingError, Figures, Line, normalize_model
from ._http import Params, pages
from .openai import number

__all__ = ["DEFAULT_BASE_URL", "fetch", "parse_cost_report", "parse_usage_report"]

DEFAULT_BASE_URL: Final = "https://api.anthropic.com/v1"
_VERSION: Final = "2023-06-01"


def fetch(base_url: str, admin_key: str, start: datetime, end: datetime) -> list[Line]:
    span: Params = {"starting_at": _rfc3339(start), "ending_at": _rfc3339(end), "bucket_width": "1d", "limit": 31}
    base = base_url.rstrip("/")
    headers = {"x-api-key": admin_key, "anthropic-version": _VERSION}
    lines: list[Line] = []
    for page in pages(f"{base}/organizations/cost_report", {**span, "group_by[]": ["description", "workspace_id"]},
                       headers, admin_key, "the Anthropic cost report"):
        lines += parse_cost_report(page)
    for page in pages(f"{base}/organizations/usage_report/messages",
                       {**span, "group_by[]": ["model", "api_key_id", "workspace_id"]},
                       headers, admin_key, "the Anthropic usage report"):
        lines += parse_usage_report(page)
    return lines


def parse_cost_report(page: dict[str, Any]) -> Iterator[Line]:
    for bucket, result in _results(page):
        currency = str(result.get("currency") or "USD").upper()
        if currency != "USD":
            raise BillingError(f"the Anthropic cost report is in {currency!r}, only USD is supported")
        model = result.get("model") or result.get("description") or "(all models)"
        yield Line(bucket, normalize_model(str(model)), Figures(cost_usd=number(result.get("amount")) / 100),
                   project=result.get("workspace_id"))


def parse_usage_report(page: dict[str, Any]) -> Iterator[Line]:
    for bucket, result in _results(page):
        creation = result.get("cache_creation") or {}
        cache_read = number(result.get("cache_read_input_tokens"))
        created = number(creation.get("ephemeral_1h_input_tokens")) + number(creation.get("ephemeral_5m_input_tokens"))
        figures = Figures(
            input_tokens=number(result.get("uncached_input_tokens")) + created + cache_read,
            output_tokens=number(result.get("output_tokens")),
            cache_read_tokens=cache_read,
        )
        yield Line(bucket, normalize_model(str(result.get("model") or "(all models)")), figures,
                   project=result.get("workspace_id"), api_key=result.get("api_key_id"))


def _results(page: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    data = page.get("data")
    if not isinstance(data, list):
        raise BillingError("the Anthropic report answered a page without `data`")
    for bucket in data:
        date = str(bucket.get("starting_at", ""))[:10]
        for result in bucket.get("results") or []:
            yield date, result


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

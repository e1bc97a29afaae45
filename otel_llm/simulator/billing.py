"""The simulator's own bill: what it served, priced with its own table, as OpenAI's Costs and Usage APIs.

Every successful reply is recorded (the same moment `Stats` counts it: when the reply starts, as a
provider bills) under its minute, project (the `OpenAI-Project` header the SDK sends, else
`proj_default`), API key id (a one-way id of the bearer key) and model. The admin endpoints read it:

- `GET /v1/organization/costs`: daily buckets, `group_by` project_id / line_item / api_key_id, filters
  `project_ids`, `api_key_ids`, `limit` (1-180, default 7), `page` / `next_page` / `has_more`.
- `GET /v1/organization/usage/completions` and `/embeddings`: `bucket_width` 1m / 1h / 1d, `group_by`
  model / project_id / api_key_id, filters `models`, `project_ids`, `api_key_ids`.

Only an admin key (`sk-admin-...`, as OpenAI's admin keys start) may read them; any other key gets 403.
Billing lag: what was served in the last `billing_lag` seconds is not in the figures yet, like the
provider's data, which settles hours after the fact.

Prices are the simulator's own (`PRICES`), on purpose not `otel_llm.pricing`'s, so a test can show a
telemetry price that differs from the bill. Line items are named `<model>, input`, `<model>, cached
input`, `<model>, output` (OpenAI does not document the line item names; this is their usual shape).
"""

from __future__ import annotations

import base64
import hashlib
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs

from .replies import ApiError, JsonReply
from .usage import Usage

__all__ = ["COSTS_PATH", "PRICES", "USAGE_PATHS", "BillingLedger", "api_key_id", "is_admin_key"]

COSTS_PATH: Final = "/v1/organization/costs"
USAGE_PATHS: Final = {
    "/v1/organization/usage/completions": "completions",
    "/v1/organization/usage/embeddings": "embeddings",
}
ADMIN_KEY_PREFIX: Final = "sk-admin-"
DEFAULT_PROJECT: Final = "proj_default"
_DAY: Final = 86400
_WIDTHS: Final = {"1m": (60, 60, 1440), "1h": (3600, 24, 168), "1d": (_DAY, 7, 31)}  # seconds, default, max
_COSTS_LIMIT: Final = (7, 180)
_MAX_CELLS: Final = 200_000  # minute x project x key x model cells kept; older ones go first

# $ per million tokens: input, cached input, output. The case's gateway table (cached input at half
# price, as its gateway bills it, same as examples/prices.yaml) and OpenAI list prices.
PRICES: Final[Mapping[str, tuple[float, float, float]]] = {
    "gpt-4.1": (2.00, 1.00, 8.00),
    "claude-sonnet-4.5": (3.00, 1.50, 15.00),
    "gemini-2.5-flash": (0.35, 0.175, 2.50),
    "deepseek-v3.2": (0.14, 0.07, 0.42),
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "o4-mini": (1.10, 0.275, 4.40),
    "gpt-5-mini": (0.25, 0.025, 2.00),
    "gpt-3.5-turbo-instruct": (1.50, 1.50, 2.00),
    "text-embedding-3-small": (0.02, 0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.13, 0.0),
}
_UNKNOWN_MODEL_PRICE: Final = (1.00, 0.50, 2.00)  # extra models served with --model


def is_admin_key(key: str) -> bool:
    return key.startswith(ADMIN_KEY_PREFIX)


def api_key_id(key: str) -> str:
    """OpenAI-style key id: one-way, stable, never the key."""
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class _Cell:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0


_CellKey = tuple[int, str, str, str, str]  # minute start, kind, project, key id, model


class BillingLedger:
    """Thread-safe per-minute tallies of billed usage, and the admin endpoints that read them."""

    def __init__(self, lag: float = 0.0, clock: Callable[[], float] = time.time) -> None:
        self.lag = lag
        self._clock = clock
        self._lock = threading.Lock()
        self._cells: dict[_CellKey, _Cell] = {}

    def record(self, kind: str, project: str, key: str, model: str, usage: Usage, at: float | None = None) -> None:
        """Bill one served reply; `kind` is "completions" or "embeddings"."""
        minute = int((self._clock() if at is None else at) // 60 * 60)
        cell_key = (minute, kind, project or DEFAULT_PROJECT, api_key_id(key), model)
        with self._lock:
            cell = self._cells.get(cell_key)
            if cell is None:
                if len(self._cells) >= _MAX_CELLS:
                    del self._cells[min(self._cells)]
                cell = self._cells[cell_key] = _Cell()
            cell.input_tokens += usage.prompt_tokens
            cell.cached_tokens += usage.cached_tokens
            cell.output_tokens += usage.completion_tokens
            cell.requests += 1

    def clear(self) -> None:
        with self._lock:
            self._cells.clear()

    def handle(self, path: str, query: str) -> JsonReply:
        params = parse_qs(query, keep_blank_values=False)
        if path == COSTS_PATH:
            return JsonReply(200, self._costs(params))
        return JsonReply(200, self._usage(USAGE_PATHS[path], params))

    # --- endpoints ---------------------------------------------------------------------------

    def _costs(self, params: Mapping[str, list[str]]) -> dict[str, Any]:
        width = _one(params, "bucket_width") or "1d"
        if width != "1d":
            raise ApiError(400, "Invalid value for 'bucket_width': only '1d' is supported.", param="bucket_width")
        group_by = _group_by(params, ("project_id", "line_item", "api_key_id", "user_id", "api_source"))
        projects, keys = set(_many(params, "project_ids")), set(_many(params, "api_key_ids"))
        buckets, more = self._buckets(params, _DAY, _COSTS_LIMIT)
        data = []
        for start, end in buckets:
            sums: dict[tuple[str | None, str | None, str | None], float] = defaultdict(float)
            for (_, _, project, key, model), cell in self._settled(start, end):
                if (projects and project not in projects) or (keys and key not in keys):
                    continue
                for item, amount in _line_items(model, cell):
                    group = (project if "project_id" in group_by else None, item if "line_item" in group_by else None,
                             key if "api_key_id" in group_by else None)
                    sums[group] += amount
            results = [
                {
                    "object": "organization.costs.result",
                    "amount": {"value": value, "currency": "usd"},
                    "line_item": item,
                    "project_id": project,
                    "api_key_id": key,
                }
                for (project, item, key), value in sorted(sums.items(), key=lambda kv: tuple(x or "" for x in kv[0]))
            ]
            data.append({"object": "bucket", "start_time": start, "end_time": end, "results": results})
        return _page(data, more)

    def _usage(self, kind: str, params: Mapping[str, list[str]]) -> dict[str, Any]:
        width_name = _one(params, "bucket_width") or "1d"
        if width_name not in _WIDTHS:
            raise ApiError(400, f"Invalid value for 'bucket_width': {width_name!r}.", param="bucket_width")
        width, default, maximum = _WIDTHS[width_name]
        group_by = _group_by(params, ("model", "project_id", "api_key_id", "user_id", "batch"))
        filters = {name: set(_many(params, f"{name}s")) for name in ("model", "project_id", "api_key_id")}
        buckets, more = self._buckets(params, width, (default, maximum))
        data = []
        for start, end in buckets:
            sums: dict[tuple[str | None, ...], _Cell] = defaultdict(_Cell)
            for (_, cell_kind, project, key, model), cell in self._settled(start, end):
                fields = {"model": model, "project_id": project, "api_key_id": key}
                if cell_kind != kind or any(wanted and fields[name] not in wanted for name, wanted in filters.items()):
                    continue
                group = tuple(fields[name] if name in group_by else None for name in ("model", "project_id", "api_key_id"))
                total = sums[group]
                total.input_tokens += cell.input_tokens
                total.cached_tokens += cell.cached_tokens
                total.output_tokens += cell.output_tokens
                total.requests += cell.requests
            results = [_usage_result(kind, group, cell) for group, cell in sorted(sums.items(), key=lambda kv: str(kv[0]))]
            data.append({"object": "bucket", "start_time": start, "end_time": end, "results": results})
        return _page(data, more)

    # --- helpers -----------------------------------------------------------------------------

    def _buckets(
        self, params: Mapping[str, list[str]], width: int, limits: tuple[int, int]
    ) -> tuple[list[tuple[int, int]], int | None]:
        """The page's buckets [start, end) and the start of the next page, if any. The first bucket
        starts at `start_time` and ends at the next boundary of the width, as OpenAI's do."""
        start = _int(params, "start_time", required=True) or 0  # required: never None here
        now = int(self._clock())
        end = _int(params, "end_time") or now
        limit = _int(params, "limit") or limits[0]
        if not 1 <= limit <= limits[1]:
            raise ApiError(400, f"Invalid value for 'limit': must be between 1 and {limits[1]}.", param="limit")
        page = _one(params, "page")
        if page:
            start = _decode_page(page)
        buckets: list[tuple[int, int]] = []
        cursor = start
        while cursor < end and len(buckets) < limit:
            boundary = (cursor // width + 1) * width
            buckets.append((cursor, boundary))
            cursor = boundary
        return buckets, cursor if cursor < end else None

    def _settled(self, start: int, end: int) -> list[tuple[_CellKey, _Cell]]:
        """Cells whose minute lies in [start, end) and ended at least `lag` seconds ago."""
        horizon = self._clock() - self.lag
        with self._lock:
            return [
                (key, _Cell(cell.input_tokens, cell.cached_tokens, cell.output_tokens, cell.requests))
                for key, cell in self._cells.items()
                if start <= key[0] < end and (self.lag == 0 or key[0] + 60 <= horizon)
            ]


def price_of(model: str) -> tuple[float, float, float]:
    return PRICES.get(model, _UNKNOWN_MODEL_PRICE)


def _line_items(model: str, cell: _Cell) -> list[tuple[str, float]]:
    input_price, cached_price, output_price = price_of(model)
    uncached = cell.input_tokens - cell.cached_tokens
    items = [(f"{model}, input", uncached * input_price / 1e6)]
    if cell.cached_tokens:
        items.append((f"{model}, cached input", cell.cached_tokens * cached_price / 1e6))
    if cell.output_tokens:
        items.append((f"{model}, output", cell.output_tokens * output_price / 1e6))
    return items


def _usage_result(kind: str, group: tuple[str | None, ...], cell: _Cell) -> dict[str, Any]:
    model, project, key = group
    if kind == "embeddings":
        return {
            "object": "organization.usage.embeddings.result",
            "input_tokens": cell.input_tokens,
            "num_model_requests": cell.requests,
            "project_id": project,
            "user_id": None,
            "api_key_id": key,
            "model": model,
        }
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": cell.input_tokens,
        "output_tokens": cell.output_tokens,
        "input_cached_tokens": cell.cached_tokens,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "num_model_requests": cell.requests,
        "project_id": project,
        "user_id": None,
        "api_key_id": key,
        "model": model,
        "batch": None,
    }


def _page(data: list[dict[str, Any]], next_start: int | None) -> dict[str, Any]:
    next_page = None if next_start is None else "page_" + base64.urlsafe_b64encode(str(next_start).encode()).decode()
    return {"object": "page", "data": data, "has_more": next_page is not None, "next_page": next_page}


def _decode_page(page: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(page.removeprefix("page_").encode()).decode())
    except ValueError:
        raise ApiError(400, f"Invalid value for 'page': {page!r}.", param="page") from None


def _many(params: Mapping[str, list[str]], name: str) -> list[str]:
    """An array parameter, sent as `name=a&name=b`, `name[]=a` or `name=a,b`."""
    values = params.get(name, []) + params.get(f"{name}[]", [])
    return [part for value in values for part in value.split(",") if part]


def _one(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _group_by(params: Mapping[str, list[str]], allowed: Sequence[str]) -> set[str]:
    fields = set(_many(params, "group_by"))
    unknown = fields - set(allowed)
    if unknown:
        raise ApiError(400, f"Invalid value for 'group_by': {sorted(unknown)[0]!r}.", param="group_by")
    return fields


def _int(params: Mapping[str, list[str]], name: str, required: bool = False) -> int | None:
    text = _one(params, name)
    if text is None:
        if required:
            raise ApiError(400, f"Missing query parameter '{name}'.", param=name)
        return None
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"Invalid value for '{name}': {text!r}.", param=name) from None
    if not math.isfinite(value):
        raise ApiError(400, f"Invalid value for '{name}': {text!r}.", param=name)
    return int(value)

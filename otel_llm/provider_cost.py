"""The cost a gateway reports for a call itself, read from its response or headers. Pure, never raises.

Checked sources (each one's own documentation):

| gateway | where | unit | source |
|---|---|---|---|
| OpenRouter | body `usage.cost` (every response; the last chunk of a stream) | credits = USD | https://openrouter.ai/docs/use-cases/usage-accounting |
| LiteLLM proxy | header `x-litellm-response-cost` | USD, decimal string | https://docs.litellm.ai/docs/proxy/response_headers , https://docs.litellm.ai/docs/proxy/pass_through_cost_tracking |
| LLM Gateway (llmgateway.io) | body `usage.cost_usd_total` | USD | https://docs.llmgateway.io/features/cost-breakdown |

Notes. OpenRouter with BYOK (`usage.is_byok`, the app's own provider key): `usage.cost` is OpenRouter's
fee only, and the provider bills the inference itself, `usage.cost_details.upstream_inference_cost`. The
call cost both, so both are the reported cost; a BYOK call without a valid upstream figure reports none
(our own price stands). OpenRouter fills the upstream figure on other calls too, equal to `usage.cost`
and already in it: there `usage.cost` alone is the cost. LiteLLM sends headers before generating, so a
streamed call carries no cost header (its usage is priced locally). Checked and left out: Cloudflare AI
Gateway (`cf-aig-custom-cost` is a request header that sets prices, not a reported cost) and Vercel AI
Gateway (cost in the AI SDK's provider metadata, not in the OpenAI-compatible response).

A reported cost that is not a finite number in [0, MAX_USD] is ignored (None), so the computed cost
stands; a boolean is not a number. A reported 0 from a gateway in `ZERO_IS_UNKNOWN` is not taken for a
free call when the call has tokens (the recorder prices it itself, or counts it unpriced). LiteLLM sends
`0` for calls it could not price: a fine-tuned model priced in its config (BerriAI/litellm#13790), and
the routes whose cost it does not carry into the header, `/v1/responses` (#26475) and `/v1/messages`
(#23981). (A model missing from its cost map gets `None`, which is no number.) Its 0 on an answer from
its own cache (`x-litellm-cache-key`; no provider was called) stands, as does OpenRouter's
`usage.cost`, its own bill, and 0 on its free model variants.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .extract import fields

__all__ = [
    "CACHE_HIT_HEADERS", "HEADER_SOURCES", "MAX_USD", "USAGE_SOURCES", "ZERO_IS_UNKNOWN", "ProviderCost",
    "cost_from_headers", "cost_from_response",
]

MAX_USD: Final = 10_000.0  # no single call costs more; anything above is a unit or parsing error
# usage field -> gateway, tried in this order.
USAGE_SOURCES: Final = (("cost", "openrouter"), ("cost_usd_total", "llmgateway"))
# response header (lower-case) -> gateway.
HEADER_SOURCES: Final = (("x-litellm-response-cost", "litellm"),)
# Gateways whose reported 0 means "could not price it" as often as "free" (see the module's notes).
ZERO_IS_UNKNOWN: Final = frozenset({"litellm"})
# gateway -> the response header it sends when its own cache answered (a 0 then is the real cost). LiteLLM:
# "on cache hits the cache key is sent as the x-litellm-cache-key response header" (docs, proxy/caching).
CACHE_HIT_HEADERS: Final = {"litellm": "x-litellm-cache-key"}


@dataclass(frozen=True)
class ProviderCost:
    """A call's cost in USD as the gateway reported it, and where it was read (e.g. `usage.cost`)."""

    usd: float
    gateway: str
    field: str
    from_cache: bool = False  # the gateway's own cache answered: no provider was called

    @property
    def zero_is_unknown(self) -> bool:
        """A 0 from a gateway that also sends 0 for a call it could not price (not an answer from its cache)."""
        return self.usd == 0.0 and self.gateway in ZERO_IS_UNKNOWN and not self.from_cache


def cost_from_response(response: Any) -> ProviderCost | None:
    """From a response object (an SDK model, a stream chunk, or a dict) with `usage`; None if absent."""
    try:
        usage = _get(response, "usage")
        if usage is None:
            return None
        for field, gateway in USAGE_SOURCES:
            usd = _usd(_get(usage, field))
            if usd is not None:
                if gateway == "openrouter" and _get(usage, "is_byok") is True:
                    return _with_upstream(usd, usage)
                return ProviderCost(usd, gateway, f"usage.{field}")
    except Exception:
        return None
    return None


def _with_upstream(fee: float, usage: Any) -> ProviderCost | None:
    """An OpenRouter BYOK call: its fee and what the provider billed for the inference; None without the latter."""
    details = _get(usage, "cost_details")
    upstream = _usd(_get(details, "upstream_inference_cost")) if details is not None else None
    if upstream is None or fee + upstream > MAX_USD:
        return None
    return ProviderCost(fee + upstream, "openrouter", "usage.cost+usage.cost_details.upstream_inference_cost")


def cost_from_headers(headers: Any) -> ProviderCost | None:
    """From HTTP response headers (httpx.Headers, or any mapping; names case-insensitive)."""
    try:
        if hasattr(headers, "multi_items"):  # httpx's Headers: case-insensitive already; `in` is cheap
            lowered = {name: headers.get(name) for name, _ in HEADER_SOURCES if name in headers}
            names = headers
        else:  # any other mapping or pairs: lower-case every name (rare: not the SDK's path)
            lowered = names = _lower(headers)
        for name, gateway in HEADER_SOURCES:
            usd = _usd(lowered.get(name))
            if usd is not None:
                hit = CACHE_HIT_HEADERS.get(gateway)
                return ProviderCost(usd, gateway, name, usd == 0.0 and hit is not None and hit in names)
    except Exception:
        return None
    return None


def _get(obj: Any, name: str) -> Any:
    """An attribute or key; the SDK's models keep fields they do not declare in `model_extra`.

    Read through `fields()`: `getattr` on a field the model does not have costs an exception inside
    pydantic (2.7 µs), and every OpenAI response lacks both gateway fields."""
    found = fields(obj)
    if found or isinstance(obj, Mapping):
        return found.get(name)
    return getattr(obj, name, None)  # any other object: its attributes


def _lower(headers: Any) -> dict[str, Any]:
    if headers is None:
        return {}
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(name).lower(): value for name, value in items}


def _usd(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        value = value.strip()
    try:
        usd = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return usd if math.isfinite(usd) and 0.0 <= usd <= MAX_USD else None

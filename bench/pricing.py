"""The per-call cost of otel_llm's price lookup after warm-up, as the call lifecycle uses it.

`otel_llm.call` prices a finished call with `PriceBook.rates(provider, base_url, model, tier)` (a
cached dict lookup after the first call) and `Rates.cost(Usage)`. Skips with a message when that
API is not there (yet).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import mock_openai

__all__ = ["measure", "probe"]

_ARGS = ("openai", "https://api.openai.com/v1", mock_openai.RESPONSE_MODEL, "default")


def probe() -> tuple[Any, Any] | str:
    """(PriceBook instance, Usage) ready to time, or why not."""
    try:
        from otel_llm import pricing
    except Exception as exc:
        return f"otel_llm.pricing not importable ({type(exc).__name__}: {exc})"
    book_cls = getattr(pricing, "PriceBook", None)
    usage_cls = getattr(pricing, "Usage", None)
    if book_cls is None or usage_cls is None or not hasattr(book_cls, "rates"):
        return f"otel_llm.pricing has no PriceBook.rates/Usage (exports: {getattr(pricing, '__all__', '?')})"
    u = mock_openai.USAGE
    usage = usage_cls(
        input=u["prompt_tokens"],
        output=u["completion_tokens"],
        cache_read=u["prompt_tokens_details"]["cached_tokens"],
        reasoning=u["completion_tokens_details"]["reasoning_tokens"],
    )
    book = book_cls()
    if book.rates(*_ARGS) is None:
        return f"{_ARGS[2]} is unpriced in otel_llm.pricing: lookup would not reach cost()"
    return book, usage


def measure(n: int, repeats: int) -> dict[str, Any]:
    """Median per-call µs over `repeats` samples of `n` lookups (rates + cost, and each alone)."""
    found = probe()
    if isinstance(found, str):
        return {"skip": found}
    book, usage = found
    rates = book.rates(*_ARGS)
    loop = range(n)

    def lookup_and_cost() -> None:
        for _ in loop:
            book.rates(*_ARGS).cost(usage)

    def lookup() -> None:
        for _ in loop:
            book.rates(*_ARGS)

    def cost() -> None:
        for _ in loop:
            rates.cost(usage)

    def empty() -> None:
        for _ in loop:
            pass

    out: dict[str, Any] = {"model": _ARGS[2], "source": rates.source,
                           "usd_per_call": rates.cost(usage).usd}
    for name, fn in (("empty", empty), ("rates_and_cost", lookup_and_cost), ("rates", lookup), ("cost", cost)):
        fn()  # warm-up
        samples = []
        for _ in range(repeats):
            t0 = time.process_time()
            fn()
            samples.append((time.process_time() - t0) / n * 1e6)
        out[f"{name}_us"] = statistics.median(samples)
    empty_us = out.pop("empty_us")
    for key in ("rates_and_cost_us", "rates_us", "cost_us"):
        out[key] = max(out[key] - empty_us, 0.0)
    return out

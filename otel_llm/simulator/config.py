"""All the simulator's knobs in one frozen dataclass, validated once at construction."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SimulatorConfig"]


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulator behaves. Times are in seconds; rates are probabilities per request.

    Latency: a reply waits `ttft` (uniform in [ttft_min, ttft_max], times the model's latency factor,
    plus `chunk_delay` per reasoning token) before its first chunk, then `chunk_delay` per chunk.
    `latency_scale` multiplies every delay: 0 makes the simulator instant (what tests want).

    Prompt caching models OpenAI's: prompts of at least `cache_min_tokens` cache in
    `cache_increment`-token blocks (OpenAI: 1024 and 128; the defaults are low so a demo's repeated
    system prompts hit), entries expire after `cache_ttl`.

    Faults: `rate_401`, `rate_429`, `rate_500`, `rate_503` draw from one seeded generator; `rpm_limit`
    and `tpm_limit` (0 = unlimited) are real per-API-key limits over a 60 s window.

    Billing: the organization Costs/Usage endpoints leave out what was served in the last
    `billing_lag` seconds (0 = the bill is live), as a provider's billing data settles late.
    """

    latency_scale: float = 1.0
    ttft_min: float = 0.020
    ttft_max: float = 0.080
    chunk_delay: float = 0.003
    min_output_tokens: int = 12
    max_output_tokens: int = 48
    min_reasoning_tokens: int = 32
    max_reasoning_tokens: int = 192
    cache_min_tokens: int = 64
    cache_increment: int = 32
    cache_ttl: float = 600.0
    rate_401: float = 0.0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    retry_after: float = 1.0
    retry_after_5xx: float | None = None
    rpm_limit: int = 0
    tpm_limit: int = 0
    seed: int = 0
    extra_models: tuple[str, ...] = ()
    billing_lag: float = 0.0

    def __post_init__(self) -> None:
        rates = (self.rate_401, self.rate_429, self.rate_500, self.rate_503)
        if any(not 0.0 <= rate <= 1.0 for rate in rates) or sum(rates) > 1.0:
            raise ValueError(f"fault rates must be in [0, 1] and sum to at most 1, got {rates}")
        if min(self.latency_scale, self.ttft_min, self.chunk_delay, self.retry_after, self.billing_lag) < 0:
            raise ValueError("latency_scale, ttft_min, chunk_delay, retry_after and billing_lag must be >= 0")
        if self.ttft_max < self.ttft_min:
            raise ValueError("ttft_max must be >= ttft_min")
        if not 1 <= self.min_output_tokens <= self.max_output_tokens:
            raise ValueError("need 1 <= min_output_tokens <= max_output_tokens")
        if not 0 <= self.min_reasoning_tokens <= self.max_reasoning_tokens:
            raise ValueError("need 0 <= min_reasoning_tokens <= max_reasoning_tokens")
        if self.cache_min_tokens < 1 or self.cache_increment < 1:
            raise ValueError("cache_min_tokens and cache_increment must be >= 1")
        if self.rpm_limit < 0 or self.tpm_limit < 0:
            raise ValueError("rpm_limit and tpm_limit must be >= 0 (0 = unlimited)")

"""How long a reply takes: time to first chunk and delay between chunks, seeded like the text."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .config import SimulatorConfig
from .models import ModelSpec

__all__ = ["Timing", "plan_timing"]


@dataclass(frozen=True)
class Timing:
    """Seconds before the first chunk, and between later chunks."""

    first_chunk: float
    per_chunk: float

    def total(self, chunks: int) -> float:
        """What a non-streamed reply waits: the server generates everything before answering."""
        return self.first_chunk + self.per_chunk * max(chunks - 1, 0)


def plan_timing(seed: int, config: SimulatorConfig, model: ModelSpec, reasoning_tokens: int = 0) -> Timing:
    """Timing for one reply; reasoning happens before the first visible chunk, so it adds to TTFT."""
    scale = config.latency_scale * model.latency_factor
    ttft = random.Random(seed).uniform(config.ttft_min, config.ttft_max)
    return Timing(
        first_chunk=scale * (ttft + reasoning_tokens * config.chunk_delay),
        per_chunk=scale * config.chunk_delay,
    )

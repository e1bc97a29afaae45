"""The models the simulator serves: ids from the case's price table plus a few common OpenAI ones.

Prices are not here on purpose: pricing is `otel_llm.pricing`'s job, and a simulator that priced
would be checking the pricing module against itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["DEFAULT_MODELS", "ModelSpec", "catalog", "is_reasoning_model"]

Kind = Literal["chat", "embedding"]

# o1, o3-mini, o4-mini, gpt-5, gpt-5-mini...: the families that bill hidden reasoning tokens.
_REASONING_PATTERN: Final = re.compile(r"^(o\d|gpt-5)")


def is_reasoning_model(model: str) -> bool:
    """Whether the model spends reasoning tokens (counted in completion tokens, never shown)."""
    return _REASONING_PATTERN.match(model) is not None


@dataclass(frozen=True)
class ModelSpec:
    """One served model.

    `latency_factor` scales the base latency so that routing to a small model visibly pays off
    (the case's 420 ms -> 180 ms); `dimensions` is the default embedding width.
    """

    id: str
    owned_by: str
    kind: Kind = "chat"
    latency_factor: float = 1.0
    dimensions: int = 0

    @property
    def reasoning(self) -> bool:
        return self.kind == "chat" and is_reasoning_model(self.id)


DEFAULT_MODELS: Final[tuple[ModelSpec, ...]] = (
    # The case's four models, as its gateway names them.
    ModelSpec("gpt-4.1", "openai", latency_factor=1.0),
    ModelSpec("claude-sonnet-4.5", "anthropic", latency_factor=1.3),
    ModelSpec("gemini-2.5-flash", "google", latency_factor=0.4),
    ModelSpec("deepseek-v3.2", "deepseek", latency_factor=0.8),
    # Common OpenAI models, including reasoning ones and a legacy completions model.
    ModelSpec("gpt-4o", "openai", latency_factor=1.0),
    ModelSpec("gpt-4o-mini", "openai", latency_factor=0.5),
    ModelSpec("gpt-4.1-mini", "openai", latency_factor=0.5),
    ModelSpec("o4-mini", "openai", latency_factor=1.0),
    ModelSpec("gpt-5-mini", "openai", latency_factor=0.9),
    ModelSpec("gpt-3.5-turbo-instruct", "openai", latency_factor=0.5),
    ModelSpec("text-embedding-3-small", "openai", "embedding", latency_factor=0.3, dimensions=1536),
    ModelSpec("text-embedding-3-large", "openai", "embedding", latency_factor=0.4, dimensions=3072),
)


def catalog(extra_chat_models: Iterable[str] = ()) -> Mapping[str, ModelSpec]:
    """Served models by id: the defaults plus extra chat models (e.g. a gateway's own names)."""
    models = {spec.id: spec for spec in DEFAULT_MODELS}
    for name in extra_chat_models:
        models.setdefault(name, ModelSpec(name, "simulator"))
    return models

"""Deterministic reply text: the same request always gets the same words and token counts.

The generator is seeded by a hash of the model and the prompt's tokens, so a test can send a prompt
twice and get the same reply, and two different prompts get different replies. Replies are built
token by token from a small vocabulary, so the text re-tokenizes to exactly the tokens generated
(`count_tokens(text) == completion_tokens` for a model without reasoning), and each streamed delta is
one token.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from .config import SimulatorConfig

__all__ = ["VOCABULARY", "Generation", "generate", "seed_of"]

VOCABULARY: Final = (
    "thanks", "for", "reaching", "out", "your", "order", "has", "been", "updated", "we", "can",
    "help", "with", "that", "the", "refund", "will", "arrive", "in", "three", "business", "days",
    "please", "check", "account", "settings", "and", "try", "again", "our", "team", "is", "looking",
    "into", "it", "invoice", "shows", "a", "credit", "of", "plan", "includes", "support", "ticket",
    "number", "password", "reset", "link", "was", "sent", "to", "email", "address", "let", "us",
    "know", "if", "anything", "else", "happy", "assist", "today", "shipping", "status",
)  # fmt: skip

# Reasoning effort scales hidden reasoning like it does at OpenAI: "none" spends none.
_EFFORT_FACTOR: Final = {"none": 0.0, "minimal": 0.25, "low": 0.5, "medium": 1.0, "high": 2.0, "xhigh": 3.0}
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Generation:
    """One generated choice: the visible deltas (one token each) and the hidden reasoning tokens."""

    deltas: tuple[str, ...]
    reasoning_tokens: int
    finish_reason: FinishReason

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    @property
    def output_tokens(self) -> int:
        return len(self.deltas) + self.reasoning_tokens


def seed_of(parts: Iterable[str]) -> int:
    """A stable 64-bit seed from strings (Python's hash() is salted per process, so not that)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\x00")
    return int.from_bytes(digest.digest()[:8], "big")


def generate(
    seed: int,
    config: SimulatorConfig,
    *,
    reasoning: bool,
    max_tokens: int | None,
    effort: str | None = None,
) -> Generation:
    """Generate one choice; `max_tokens` caps reasoning plus visible tokens, as at OpenAI."""
    rng = random.Random(seed)
    length = rng.randint(config.min_output_tokens, config.max_output_tokens)
    thinking = 0
    if reasoning:
        factor = _EFFORT_FACTOR.get(effort or "medium", 1.0)
        thinking = round(rng.randint(config.min_reasoning_tokens, config.max_reasoning_tokens) * factor)
    limit = max_tokens if max_tokens is not None else thinking + length
    thinking = min(thinking, limit)
    visible = min(length, limit - thinking)
    finish: FinishReason = "length" if thinking + length > limit else "stop"
    return Generation(tuple(_deltas(rng, visible)), thinking, finish)


def _deltas(rng: random.Random, count: int) -> list[str]:
    """`count` one-token deltas forming sentences; the last one is a full stop when it fits."""
    deltas: list[str] = []
    words_since_mark = 0
    capitalize = True
    for index in range(count):
        last = index == count - 1
        if (last and words_since_mark > 0) or (words_since_mark >= 3 and rng.random() < 0.2):
            mark = "." if last or rng.random() < 0.6 else ","
            deltas.append(mark)
            capitalize = mark == "."
            words_since_mark = 0
            continue
        word = rng.choice(VOCABULARY)
        word = word.capitalize() if capitalize else word
        deltas.append(word if not deltas else " " + word)
        capitalize = False
        words_since_mark += 1
    return deltas

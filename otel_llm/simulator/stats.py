"""What the simulator served, as ground truth for end-to-end checks of the telemetry.

Tokens are recorded when a successful reply starts, as a provider bills them (a client that stops
reading a stream early still pays). Failed requests count under their status with no tokens;
a dropped connection counts under the status "drop".
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .usage import Usage

__all__ = ["Stats"]

_TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")


@dataclass
class _Tally:
    requests: int = 0
    tokens: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)

    def add(self, operation: str, status: str, usage: Usage | None) -> None:
        self.requests += 1
        self.statuses[status] += 1
        self.operations[operation] += 1
        if usage is not None:
            for name in _TOKEN_FIELDS:
                self.tokens[name] += getattr(usage, name)

    def snapshot(self) -> dict[str, Any]:
        tokens = {name: self.tokens[name] for name in _TOKEN_FIELDS}
        return {
            "requests": self.requests,
            **tokens,
            "total_tokens": tokens["prompt_tokens"] + tokens["completion_tokens"],
            "status_codes": dict(sorted(self.statuses.items())),
            "operations": dict(sorted(self.operations.items())),
        }


class Stats:
    """Thread-safe tallies, overall and per model (requests with no parsable model count as "")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = _Tally()
        self._by_model: dict[str, _Tally] = {}

    def record(self, model: str, operation: str, status: str, usage: Usage | None = None) -> None:
        with self._lock:
            self._total.add(operation, status, usage)
            self._by_model.setdefault(model, _Tally()).add(operation, status, usage)

    def snapshot(self) -> dict[str, Any]:
        """{"total": {...}, "models": {model: {...}}}; each tally has requests, the four token counts,
        total_tokens, status_codes (status -> count) and operations (operation -> count)."""
        with self._lock:
            return {
                "total": self._total.snapshot(),
                "models": {model: tally.snapshot() for model, tally in sorted(self._by_model.items())},
            }

    def reset(self) -> None:
        with self._lock:
            self._total = _Tally()
            self._by_model = {}

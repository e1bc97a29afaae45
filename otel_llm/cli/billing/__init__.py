"""Billing data of a provider, in one shape: lines per UTC day and model, as `otel-llm reconcile` reads it.

Readers: `openai` (organization Costs + Usage APIs), `anthropic` (Admin API cost + usage reports),
`csvfile` (any gateway's or reseller's export, with a column mapping). `recorded` reads what our
telemetry recorded from Prometheus, `compare` puts the two side by side, `exporter` publishes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Final

__all__ = ["BillingError", "Figures", "Line", "normalize_model", "total"]

_SNAPSHOT: Final = re.compile(r"-\d{4}-\d{2}-\d{2}$|-\d{8}$")


class BillingError(RuntimeError):
    """The billing data could not be read; the message is one line and never holds a key."""


def normalize_model(name: str) -> str:
    """A model name as both sides can agree on it: the dated snapshot suffix dropped
    (`gpt-4o-mini-2024-07-18` -> `gpt-4o-mini`), since a bill names the snapshot it served."""
    return _SNAPSHOT.sub("", name.strip())


@dataclass
class Figures:
    """Spend and tokens of one day and model; None where the source does not say."""

    cost_usd: float | None = None
    input_tokens: float | None = None  # includes cache_read, as OpenAI counts it
    output_tokens: float | None = None
    cache_read_tokens: float | None = None
    requests: float | None = None

    def add(self, other: Figures) -> None:
        for field in fields(self):
            theirs = getattr(other, field.name)
            if theirs is not None:
                setattr(self, field.name, (getattr(self, field.name) or 0.0) + theirs)

    @property
    def has_tokens(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None


@dataclass(frozen=True)
class Line:
    """One line of a bill: a UTC day (YYYY-MM-DD), a model, and the project or key when the source
    tells it."""

    date: str
    model: str
    figures: Figures
    project: str | None = None
    api_key: str | None = None


def total(lines: list[Line], by: tuple[str, ...] = ("date", "model")) -> dict[tuple[str, ...], Figures]:
    """Sum lines by the given attributes (date, model, project, api_key); a missing one groups as "-"."""
    sums: dict[tuple[str, ...], Figures] = {}
    for line in lines:
        key = tuple(str(getattr(line, name) or "-") for name in by)
        sums.setdefault(key, Figures()).add(line.figures)
    return sums

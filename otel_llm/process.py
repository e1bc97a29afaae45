"""The process's start time as an observable gauge, so the exact-spend rules can tell a restart from a gap.

A counter's series may restart from zero (a new process under the same `service.instance.id`) or just
go unseen for a while (a Collector outage, a fresh TSDB). The values alone cannot tell these apart; the
time the process's counters began can (prometheus/rules/cost.rules.yml, docs/scaling.md).
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from . import semconv as sc

__all__ = ["register_start_time"]

_started = time.time()  # when this module, and so our counters, came into being in this process


def _forked() -> None:
    # A forked child is a new run of the counters (pre-fork servers): its own start.
    global _started
    _started = time.time()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)

_registered: weakref.WeakSet[Meter] = weakref.WeakSet()


def _observe(_options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(_started)]


def register_start_time(meter: Meter) -> None:
    """Report `otel_llm.process.start_time` on `meter`, once per meter (instrumenting again adds none)."""
    try:
        if meter in _registered:
            return
        _registered.add(meter)
    except TypeError:  # a meter that cannot be weakly referenced: register, at worst twice
        pass
    meter.create_observable_gauge(
        sc.PROCESS_START_TIME, callbacks=[_observe], unit="s",
        description="When this process's otel_llm counters started, in seconds since the epoch",
    )

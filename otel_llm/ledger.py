"""Our own counters: sums kept in a dict under one lock, reported through observable counters.

Why not the SDK's synchronous counters? One `Counter.add` costs about 10 microseconds in the
OpenTelemetry SDK (attribute hashing, aggregation lookup, exemplar sampling), and a call updates up
to eight of our sums. Here a call takes the lock once and adds floats; the SDK reads the totals once
per collection. The exported data is the same cumulative sum a synchronous counter would give.
The standard GenAI histograms stay synchronous, recorded in the span's context for exemplars.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

__all__ = ["Ledger", "Row", "Sum"]

Key = tuple[tuple[str, Any], ...]
_MAX_ADD = 1e15  # one addition above this is no real call's (see record.MAX_TOKENS, MAX_COST_USD)


class Sum:
    """One monotonic sum per attribute set. Each total is a one-float list (a cell), so a `Row` can
    keep a reference to it and add without hashing the attribute set again."""

    __slots__ = ("_attributes", "_cells")

    def __init__(self) -> None:
        self._cells: dict[Key, list[float]] = {}
        self._attributes: dict[Key, dict[str, Any]] = {}

    def cell(self, key: Key) -> list[float]:
        """The running total for `key`, created on first use. Under the ledger's lock."""
        found = self._cells.get(key)
        if found is None:
            found = self._cells[key] = [0.0]
            self._attributes[key] = dict(key)
        return found

    def add(self, key: Key, amount: float) -> None:
        """Add under the ledger's lock."""
        if not 0 <= amount <= _MAX_ADD:  # never decreases, never NaN or inf (the recorder rejects these first)
            return
        found = self._cells.get(key)
        if found is None:
            found = self.cell(key)
        found[0] += amount

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        attributes = self._attributes
        # A copy of the items: the dict may grow while the exporter thread iterates.
        return [Observation(cell[0], attributes[key]) for key, cell in list(self._cells.items())]


class Row:
    """The totals one call's attribute set updates across sums, each extended by a few attributes
    (a token type, a prompt size). Found once per attribute set: after that a call adds floats
    instead of building and hashing an attribute tuple per sum. Under the ledger's lock."""

    __slots__ = ("_cells", "_key")

    def __init__(self, key: Key) -> None:
        self._key = key
        self._cells: dict[tuple[Sum, Key], list[float]] = {}

    def add(self, total: Sum, extra: Key, amount: float) -> None:
        if not 0 <= amount <= _MAX_ADD:  # as Sum.add
            return
        found = self._cells.get((total, extra))
        if found is None:
            found = self._cells[(total, extra)] = total.cell(self._key + extra)
        found[0] += amount


class Ledger:
    """The lock and the sums it guards, registered as observable counters on a meter."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._sums: dict[str, Sum] = {}
        self._rows: dict[Key, Row] = {}
        # User ids given their own metric series (capped by OTEL_LLM_METRIC_USER_LIMIT): kept with the
        # sums those series live in, so instrumenting again does not reopen the cap.
        self.users: set[str] = set()

    @staticmethod
    def for_meter(meter: Meter) -> Ledger:
        """The ledger of `meter`, one for the life of the process. The SDK keeps the callbacks of the
        first observable counter registered under a name and hands that instrument back to a later
        registration, so a ledger made anew on instrument() after uninstrument() would never be read:
        its calls, costs and tokens would silently stop being exported."""
        try:
            found = _by_meter.get(meter)
            if found is None:
                found = _by_meter[meter] = Ledger()
            return found
        except TypeError:  # a meter that cannot be weakly referenced: a ledger of its own
            return Ledger()

    def sum(self, meter: Meter, name: str, unit: str, description: str) -> Sum:
        """The sum reported as observable counter `name` (registered on the first call only)."""
        found = self._sums.get(name)
        if found is None:
            found = self._sums[name] = Sum()
            meter.create_observable_counter(name, callbacks=[found.observe], unit=unit, description=description)
        return found

    def row(self, key: Key) -> Row:
        """The row for one attribute set. Under the lock; as many rows as attribute sets, which the
        metric attribute limits bound."""
        found = self._rows.get(key)
        if found is None:
            found = self._rows[key] = Row(key)
        return found


_by_meter: weakref.WeakKeyDictionary[Meter, Ledger] = weakref.WeakKeyDictionary()

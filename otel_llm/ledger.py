"""Our own counters: bounded sums kept in a dict under one lock, reported through observable counters.

Why not the SDK's synchronous counters? One `Counter.add` costs about 10 microseconds in the
OpenTelemetry SDK (attribute hashing, aggregation lookup, exemplar sampling), and a call updates up
to eight of our sums. Here a call takes the lock once and adds floats; the SDK reads the totals once
per collection. The exported data is the same cumulative sum a synchronous counter would give.
The standard GenAI histograms stay synchronous, recorded in the span's context for exemplars.

Every per-key structure here is bounded, as the SDK's cardinality limit bounds its own: model names,
users, teams and features past their cap become `_other` on metric labels, and an attribute set past
`SERIES_LIMIT` series (all sums together) is added to a single series marked `otel.metric.overflow=true`. So the
budget totals stay exact (every call still adds to some series) while memory and the time of one
collection stay bounded, whatever names the callers choose.

A forked child (a pre-fork server's worker) starts from zero: the parent's sums are the parent's to
report. No lock of ours is held across a fork, and finalisers never take a lock (see `defer`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from . import semconv as sc
from .faults import report_fault
from .forksafe import hold_across_fork

__all__ = ["MODEL_LIMIT", "SERIES_LIMIT", "OVERFLOW_VALUE", "Ledger", "Rollup", "Row", "Sum", "defer", "run_deferred"]

_log = logging.getLogger("otel_llm")
Key = tuple[tuple[str, Any], ...]
_MAX_ADD = 1e15  # one addition above this is no real call's (see record.MAX_TOKENS, MAX_COST_USD)

OVERFLOW_VALUE: Final = "_other"
# Series of all our sums together (OTEL_LLM_METRIC_SERIES_LIMIT). The SDK reads every series on each
# collection at some 20-40 microseconds apiece (bench/collection.py), so this bounds the time of one
# collection as well as memory. The SDK's own default limit is 2000 per instrument; a call writes up
# to eight of our sums, hence one budget for all of them.
SERIES_LIMIT: Final = 2000
# Distinct model names (request and response models together) given their own label value, here and
# on the GenAI histograms.
MODEL_LIMIT: Final = 100
OVERFLOW_KEY: Final[Key] = ((sc.METRIC_OVERFLOW, True),)
_MAX_ADD = 1e15  # one addition above this is no real call's (see record.MAX_TOKENS, MAX_COST_USD)
_MODEL_LABELS: Final = frozenset({sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL})
_CAPPED_LABELS: Final = frozenset({sc.TEAM, sc.FEATURE})  # the user id is capped before it is put in a key


class Cap:
    """Distinct values of one label admitted as themselves; the rest are `_other`. Called under the
    ledger's lock for the sums; the GenAI histograms call it without (a set's add is atomic under the
    GIL): two threads racing at the limit can admit one value each past it, a bound of the thread count."""

    __slots__ = ("folded", "limit", "name", "seen")

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.seen: set[str] = set()
        self.folded = 0  # values mapped to `_other` (calls, not distinct values): reported in the warning

    def admit(self, value: str) -> str:
        if value in self.seen or not value:
            return value
        if len(self.seen) >= self.limit:
            self.folded += 1
            if self.folded == 1:
                _log.warning(
                    "otel_llm: more than %d distinct %s values; the others are counted under %r on metric "
                    "labels (spans keep the real value)", self.limit, self.name, OVERFLOW_VALUE,
                )
            return OVERFLOW_VALUE
        self.seen.add(value)
        return value


class Sum:
    """One monotonic sum per attribute set, within the ledger's series budget plus one overflow set. Each total
    is a one-float list (a cell), so a `Row` can keep a reference to it and add without hashing the
    attribute set again."""

    __slots__ = ("_attributes", "_cells", "_ledger", "name", "overflowed")

    def __init__(self, ledger: Ledger, name: str = "") -> None:
        self._ledger = ledger
        self.name = name
        self._cells: dict[Key, list[float]] = {}
        self._attributes: dict[Key, dict[str, Any]] = {}
        self.overflowed = 0  # additions that went to the overflow series because the sum was full

    def cell(self, key: Key, extra: Key = ()) -> list[float]:
        """The running total for `key`, created on first use. Under the ledger's lock. Past the series
        budget, the overflow series keeps `extra` (the token type, prompt size or error type a row adds),
        a small fixed set, so totals by token type stay exact too."""
        found = self._cells.get(key)
        if found is not None:
            return found
        key = self._ledger.bounded(key)
        found = self._cells.get(key)
        if found is not None:
            return found
        ledger = self._ledger
        if key[:1] == OVERFLOW_KEY:  # the overflow row's own series: as few as there are extras
            pass
        elif ledger.series >= ledger.series_limit:
            self.overflowed += 1
            if self.overflowed == 1:
                _log.warning(
                    "otel_llm: our metrics reached %d series (OTEL_LLM_METRIC_SERIES_LIMIT); new attribute sets "
                    "of %s are summed in one series with %s=true (totals stay exact)",
                    ledger.series_limit, self.name or "a sum", sc.METRIC_OVERFLOW,
                )
            key = OVERFLOW_KEY + extra
            found = self._cells.get(key)
            if found is not None:
                return found
        else:
            ledger.series += 1
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
        run_deferred()  # a collection is a safe place to end what finalisers handed over
        attributes = self._attributes
        # A copy of the items: the dict may grow while the exporter thread iterates.
        return [Observation(cell[0], attributes[key]) for key, cell in list(self._cells.items())]

    def _forget(self) -> None:
        self._cells.clear()
        self._attributes.clear()
        self.overflowed = 0


class Rollup:
    """A sum's series added up by fewer labels, at collection time: what the exact-spend rules read instead of
    every series (prometheus/rules/cost.rules.yml). Nothing on the call path. A true counter, unlike such a sum
    taken in Prometheus: the source's cells are never removed and only grow, and each rollup is folded in the
    cells' insertion order, so a new cell adds at the end of its group and the rounded total cannot fall,
    whether or not some source series is missing downstream."""

    __slots__ = ("_attributes", "_keep", "_keys", "_last", "name", "source")

    def __init__(self, source: Sum, keep: Iterable[str], name: str = "") -> None:
        self.source = source
        self.name = name
        self._keep = frozenset(keep) | {sc.METRIC_OVERFLOW}  # the overflow series stays one of its own
        self._keys: dict[Key, Key] = {}  # source key -> rolled-up key (as many as the source's series)
        self._attributes: dict[Key, dict[str, Any]] = {}
        self._last: list[Observation] = []

    def _project(self, key: Key) -> Key:
        found = self._keys.get(key)
        if found is None:
            keep = self._keep
            found = self._keys[key] = tuple(item for item in key if item[0] in keep)
            if found not in self._attributes:
                self._attributes[found] = dict(found)
        return found

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        try:
            totals: dict[Key, float] = {}
            for key, cell in list(self.source._cells.items()):  # a copy, as Sum.observe
                rolled = self._project(key)
                totals[rolled] = totals.get(rolled, 0.0) + cell[0]
            attributes = self._attributes
            self._last = [Observation(value, attributes[key]) for key, value in totals.items()]
        except Exception as exc:  # a bug of ours: the last good values, so no series vanishes or falls
            report_fault(f"rollup {self.name}", exc)
        return self._last

    def _forget(self) -> None:
        self._keys.clear()
        self._attributes.clear()
        self._last = []


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
            found = self._cells[(total, extra)] = total.cell(self._key + extra, extra)
        found[0] += amount


class Ledger:
    """The lock and the sums it guards, registered as observable counters on a meter."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._sums: dict[str, Sum] = {}
        self._rows: dict[Key, Row] = {}
        self._rollups: dict[str, Rollup] = {}
        self._units: dict[str, str] = {}
        self.series = 0  # series of all sums together
        self.series_limit = SERIES_LIMIT
        # Label caps, kept with the sums whose series they bound, so instrumenting again does not
        # reopen them. The user, team and feature caps take OTEL_LLM_METRIC_USER_LIMIT.
        self.models = Cap("model name", MODEL_LIMIT)
        self.user_cap = Cap("user id", 1000)
        self.label_caps: dict[str, Cap] = {sc.TEAM: Cap("team", 1000), sc.FEATURE: Cap("feature", 1000)}
        _ledgers.add(self)

    @property
    def users(self) -> set[str]:
        """User ids given their own metric series."""
        return self.user_cap.seen

    def set_limits(self, label_limit: int, series_limit: int) -> None:
        """The cap on distinct user, team and feature values (OTEL_LLM_METRIC_USER_LIMIT) and on series
        (OTEL_LLM_METRIC_SERIES_LIMIT)."""
        self.user_cap.limit = label_limit
        for cap in self.label_caps.values():
            cap.limit = label_limit
        self.series_limit = series_limit

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
            found = self._sums[name] = Sum(self, name)
            self._units[name] = unit
            meter.create_observable_counter(name, callbacks=[found.observe], unit=unit, description=description)
        return found

    def rollup(self, meter: Meter, name: str, source: Sum, keep: Iterable[str], description: str) -> Rollup:
        """`source` summed by the labels in `keep`, reported as observable counter `name` in the source's unit
        (registered on the first call only)."""
        found = self._rollups.get(name)
        if found is None:
            found = self._rollups[name] = Rollup(source, keep, name)
            meter.create_observable_counter(name, callbacks=[found.observe], unit=self._units.get(source.name, ""),
                                            description=description)
        return found

    def bounded(self, key: Key) -> Key:
        """`key` with model names, teams and features past their caps replaced by `_other`. Under the lock."""
        out: list[tuple[str, Any]] = []
        changed = False
        for name, value in key:
            if isinstance(value, str) and value:
                if name in _MODEL_LABELS:
                    capped = self.models.admit(value)
                elif name in _CAPPED_LABELS:
                    capped = self.label_caps[name].admit(value)
                else:
                    capped = value
                if capped is not value:
                    changed = True
                    value = capped
            out.append((name, value))
        return tuple(out) if changed else key

    def row(self, key: Key) -> Row:
        """The row for one attribute set. Under the lock. Rows are kept per bounded key only, so there
        are at most as many as series (an unknown key past the caps is bounded on each call)."""
        found = self._rows.get(key)
        if found is None:
            key = self.bounded(key)
            found = self._rows.get(key)
            if found is None:
                if len(self._rows) >= self.series_limit:
                    key = OVERFLOW_KEY
                    found = self._rows.get(key)
                if found is None:
                    found = self._rows[key] = Row(key)
        return found

    def _forget(self) -> None:
        """In a forked child: the parent's sums are not ours to report again."""
        for total in self._sums.values():
            total._forget()
        for rollup in self._rollups.values():
            rollup._forget()
        self._rows.clear()
        self.series = 0
        for cap in (self.models, self.user_cap, *self.label_caps.values()):
            cap.seen.clear()
            cap.folded = 0


_by_meter: weakref.WeakKeyDictionary[Meter, Ledger] = weakref.WeakKeyDictionary()
_ledgers: weakref.WeakSet[Ledger] = weakref.WeakSet()

# Work handed over by finalisers. A `__del__` may run inside any allocation, including one made by a
# thread holding our lock or the SDK's: it only appends here (a deque append is atomic and takes no
# lock), and the next call or metric collection runs it.
_deferred: deque[Callable[[], None]] = deque()


def defer(action: Callable[[], None]) -> None:
    """Run `action` at the next call or collection, never now. Safe in a finaliser."""
    _deferred.append(action)


def run_deferred() -> None:
    """Run what finalisers handed over. Never raises; call it with no lock of ours held."""
    while _deferred:
        try:
            action = _deferred.popleft()
        except IndexError:  # another thread took the last one
            return
        try:
            action()
        except Exception:  # the actions guard themselves; a stray error must not stop the others
            _log.debug("otel_llm: a deferred stream end failed", exc_info=True)


# Fork safety: every ledger lock is held across fork(), so no child inherits one held by a thread that
# does not exist there; the child forgets the parent's sums before the locks are released.
def _forget_in_child() -> None:
    _deferred.clear()  # the parent's dropped streams: the parent ends and reports them
    for ledger in list(_ledgers):
        ledger._forget()


hold_across_fork(lambda: [ledger.lock for ledger in _ledgers], _forget_in_child)

"""The one place that knows Prometheus names and PromQL: metric and recording-rule names, the exact
growth query, and a small HTTP client. `report`, its exports and digest, and `doctor` all ask here.

Spend in a period must be exact, so no `increase()`: it extrapolates, and it never sees the first
increment of a new series (a new user's first call, a fresh process). The growth of a counter over
the period (start, end] is, per raw series, evaluated at `end`:

    last_over_time(m[W]) - last_over_time(m[CARRY] offset W)     (its growth inside the period)
    or last_over_time(m[W])                                      (a series born inside the period
                                                                  started from zero: its whole value)

with W = end - start, and a negative difference (a counter reset) falls back to the series' last
value. This is the telescoping of the recording rules in prometheus/rules/cost.rules.yml (same 1h
carry window), but for any period: the rules' windows are rolling 24h and the UTC month, while a
report's day is a calendar day in the reader's time zone. Series of processes that have exited
still count (range vectors skip staleness markers): a plain instant query would not see them, which
is why `doctor` and `report` both use `seen()` here.

A process restarted under the same job and instance inside the period (a container restarted in its
pod) writes the same series again from zero, and the two ends alone cannot see it: the growth before
the restart is lost, or the new run's value is taken for growth over the old run's. `exact_growth`
reads the restarts from the start time every process reports (`otel_llm_process_start_time_seconds`,
otel_llm/process.py, the same series the rules use) and sums such a process run by run; the other
processes keep the one query. That costs one `changes()` query per day read, one more per day and
restarted process, and per figure one query per 50 runs (each run pinned to its own end with PromQL's
`@`), so a container crash-looping all month stays a report of seconds. A start time that goes back
is not a restart but two processes writing under one id: no sum can be exact, and the report says so.
A Grafana panel has PromQL only, so its range figures (`figure`) keep the two-ends form and can miss
such a restart; the report's do not.

RULES names every recording rule that a reader of this package uses; when a rule is renamed in
prometheus/rules/, change it here only.
"""

from __future__ import annotations

import argparse
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any, Final, NamedTuple

__all__ = [
    "CARRY",
    "CARRY_SECONDS",
    "INPUT_TOKENS_EXEMPLARS",
    "MatchersError",
    "FIGURES",
    "LABELS",
    "TOOL_FEE_MISSING",
    "LATEST_NAMES",
    "METRICS",
    "RULES",
    "Prometheus",
    "PrometheusError",
    "RATIOS",
    "Sample",
    "SHARED",
    "WINDOW",
    "budget_query",
    "exact_growth",
    "figure",
    "growth",
    "input_tokens_exemplars",
    "join_matchers",
    "kept_from",
    "matchers",
    "processes_seen",
    "reporting",
    "restart_counts",
    "restart_pairs",
    "restarts",
    "retention_seconds",
    "seen",
    "unmatched",
]

Sample = tuple[dict[str, str], float]

# Raw counters (their Prometheus names, README "What is recorded").
METRICS: Final[Mapping[str, str]] = {
    "cost": "otel_llm_cost_USD_total",
    "cost_reference": "otel_llm_cost_reference_USD_total",
    "tokens": "otel_llm_tokens_total",
    "calls": "otel_llm_calls_total",
    "unpriced": "otel_llm_calls_unpriced_total",
    "unmetered": "otel_llm_calls_unmetered_total",
    "hosted_tools": "otel_llm_hosted_tool_calls_total",
    "savings": "otel_llm_cache_savings_USD_total",
    "response_cache": "otel_llm_response_cache_requests_total",
    "attempts": "otel_llm_http_attempts_total",
    "token_usage_bucket": "gen_ai_client_token_usage_bucket",
}

# Standard metrics renamed by the latest GenAI conventions (OTEL_SEMCONV_STABILITY_OPT_IN=
# gen_ai_latest_experimental; README "Semantic conventions"): a reader of the v1.41.0 name reads
# this one too, `rate(a[5m]) or rate(b[5m])` per series (a /dup call, same labels, counts once).
LATEST_NAMES: Final[Mapping[str, str]] = {
    "gen_ai_client_operation_duration_seconds": "gen_ai_client_inference_duration_seconds",
    "gen_ai_client_operation_time_to_first_chunk_seconds": "gen_ai_client_inference_time_to_first_chunk_seconds",
}

# The input-token histograms whose exemplars point to the largest calls, under either conventions.
INPUT_TOKENS_EXEMPLARS: Final = (f'{METRICS["token_usage_bucket"]}{{gen_ai_token_type="input"}}'
                                 " or gen_ai_client_inference_operation_input_tokens_bucket")


def input_tokens_exemplars(where: str = "") -> str:
    """INPUT_TOKENS_EXEMPLARS, both selectors narrowed by the matchers `where`."""
    if not where:
        return INPUT_TOKENS_EXEMPLARS
    return (f'{METRICS["token_usage_bucket"]}{{gen_ai_token_type="input",{where}}}'
            f" or gen_ai_client_inference_operation_input_tokens_bucket{{{where}}}")


_MATCHER: Final = r'[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\\n]|\\.)*"'
_MATCHERS: Final = re.compile(rf"\s*{_MATCHER}(?:\s*,\s*{_MATCHER})*\s*,?\s*")


class MatchersError(argparse.ArgumentTypeError, ValueError):
    """`--match` is not label matchers (an argparse type error, so the parser prints the message)."""


def matchers(text: str) -> str:
    """`text` checked as PromQL label matchers (`label="value"`, `=`, `!=`, `=~`, `!~`, comma-separated),
    the form `--match` takes, so a typo is named here instead of surfacing as a query Prometheus rejects.
    Empty: no narrowing."""
    if not text.strip():
        return ""
    if _MATCHERS.fullmatch(text) is None:
        raise MatchersError(f"{text!r} is not label matchers: expected such as "
                         "'deployment_environment_name=\"prod\"' or 'server_address=~\"gw.*\"', comma-separated")
    return text.strip().rstrip(",").rstrip()  # joined to other matchers with a comma


def unmatched(prometheus: Prometheus, where: str, start: datetime, end: datetime) -> str | None:
    """Why the matchers `where` select none of the calls recorded in (start, end] while others were
    recorded (a typo in a label or a value), naming the values seen for their first label; None when
    they select some, or when nothing was recorded at all (an empty report is then the truth)."""
    window = _seconds((end - start).total_seconds())
    calls = METRICS["calls"]
    if prometheus.query(f"count(last_over_time({calls}{{{where}}}[{window}]))", end):
        return None
    if not prometheus.query(f"count(last_over_time({calls}[{window}]))", end):
        return None
    label = re.match(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)", where)
    seen = ""
    if label is not None:
        values = sorted({labels.get(label[1], "") for labels, _ in
                         prometheus.query(f"count by ({label[1]}) (last_over_time({calls}[{window}]))", end)})
        shown = ", ".join(repr(value) if value else "(none)" for value in values[:10])
        seen = f"; {label[1]} has {shown}{' ...' if len(values) > 10 else ''}"
    return (f"--match {where} selects none of the calls recorded between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M} UTC{seen}")


# Recording rules read by the CLI (prometheus/rules/*.yml and the rendered budgets).
RULES: Final[Mapping[str, str]] = {
    "budget_daily": "otel_llm:budget_usd:daily",
    "budget_monthly": "otel_llm:budget_usd:monthly",
    "spend_24h": "scope:otel_llm_cost_usd:sum24h",
    "spend_mtd": "scope:otel_llm_cost_usd:mtd",
    "spend_mtd_projected": "scope:otel_llm_cost_usd:mtd_projected",
    "calls_rate5m": "provider_model:otel_llm_calls:rate5m",
    "errors_ratio5m": "provider_model:otel_llm_calls_errors:ratio_rate5m",
    "http_429_ratio5m": "provider_model:otel_llm_http_attempts_429:ratio_rate5m",
}

# Report dimension -> Prometheus label.
LABELS: Final[Mapping[str, str]] = {
    "model": "gen_ai_request_model",
    "operation": "gen_ai_operation_name",
    "provider": "gen_ai_provider_name",
    "user": "user_id",
    "team": "otel_llm_team",
    "api_key": "otel_llm_api_key_fingerprint",
    "feature": "otel_llm_feature",
    "token_type": "gen_ai_token_type",
    "prompt_size": "otel_llm_prompt_size",
    "reference_model": "otel_llm_reference_model",
    "cache_kind": "otel_llm_cache_kind",
    "hosted_tool": "otel_llm_hosted_tool",
    "hosted_tool_priced": "otel_llm_hosted_tool_priced",
    "cache_result": "otel_llm_response_cache_result",
    "error_type": "error_type",
    "status_class": "otel_llm_http_status_class",
    "scope": "scope",
}
# The matcher of hosted tool runs whose fee is not in the spend (otel_llm_hosted_tool_calls_total).
TOOL_FEE_MISSING: Final = f'{LABELS["hosted_tool_priced"]}="false"'

# The rules' carry window: a series silent for longer than this before a period starts counts whole.
CARRY: Final = "1h"
CARRY_SECONDS: Final = 3600
_DAY_SECONDS: Final = 86400.0
# The start time every instrumented process reports (otel_llm/process.py): a new value under the same
# job and instance is a restart under the same id.
PROCESS_START: Final = "otel_llm_process_start_time_seconds"
# The runs of restarted processes read per query (each a `last_over_time(...[w] @ t)` of ~250 characters),
# told apart in the answer by a label of their own.
_RUNS_PER_QUERY: Final = 50
_RUN_LABEL: Final = "otel_llm_run"
# A query longer than this goes in a POST body: proxies in front of Prometheus limit a URL to ~8 KB.
_LONGEST_URL_QUERY: Final = 2000


# Prometheus' duration units, as its runtime information writes its retention ("15d", "1y2w", "12h").
_DURATION_UNITS: Final = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION_PART: Final = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")


def retention_seconds(setting: str) -> float | None:
    """The time part of Prometheus' `storageRetention` ("15d", "15d or 10GiB"), in seconds; None when
    it has none (a size limit only) or is unreadable."""
    for part in setting.split(" or "):
        part = part.strip()
        if part and _DURATION_PART.sub("", part) == "":
            return sum(int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(part))
    return None


class PrometheusError(RuntimeError):
    """Prometheus did not answer, or rejected a query; the message says which and where."""


def _seconds(value: float) -> str:
    return f"{max(round(value), 1)}s"


def _duration(seconds: float) -> str:
    """A PromQL duration exact to the millisecond (Prometheus' own resolution), at least 1 ms."""
    return f"{max(round(seconds * 1000), 1)}ms"


def _literal(value: str) -> str:
    """`value` as a PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def kept_from(retention: str | None, now: datetime) -> datetime | None:
    """The oldest moment a Prometheus with this retention setting still holds samples for, or None."""
    seconds = retention_seconds(retention) if retention else None
    return None if seconds is None else now - timedelta(seconds=seconds)


def _pinned(at: datetime | None) -> str:
    """PromQL's `@` modifier: a range evaluated as at `at`, whatever the query's own time."""
    return "" if at is None else f" @ {at.timestamp():.3f}"


def growth(metric: str, seconds: float | str, by: Iterable[str], where: str = "", unless: str = "",
           at: datetime | None = None) -> str:
    """The exact growth of `metric` over the `seconds` ending at the query time (or at `at`), summed by
    `by`, for processes that did not restart under the same id in it (see `exact_growth`). `seconds`
    may be a range string instead, such as Grafana's `$__range`. `unless`: a vector of (job, instance)
    to leave out."""
    w = seconds if isinstance(seconds, str) else _seconds(seconds)
    selector = f"{metric}{{{where}}}" if where else metric
    pin = _pinned(at)
    each = (f"(last_over_time({selector}[{w}]{pin}) - last_over_time({selector}[{CARRY}]{pin} offset {w})) >= 0"
            f" or last_over_time({selector}[{w}]{pin})")
    if unless:
        each = f"({each}) unless on (job, instance) ({unless})"
    return f"sum by ({', '.join(by)}) ({each})"


class Change(NamedTuple):
    """One change of a process's start time: its samples either side of it."""

    before: float  # the old run's last sample
    after: float  # the new run's first
    back: bool  # the new start time is earlier: not a restart, two processes under one id


Pairs = dict[tuple[str, str], list[Change]]


def restart_pairs(prometheus: Prometheus, start: datetime, end: datetime) -> Pairs:
    """The processes, as (job, instance), whose start time changed in (start, end], with each change.
    Read a day at a time, each day's samples only for the processes whose start time changed in it:
    a month costs ~31 small queries plus one per restarted process and day, whatever the size of the
    fleet or the number of its restarts."""
    found: Pairs = {}
    lo, stop = start.timestamp(), end.timestamp()
    while lo < stop:
        hi = min(lo + _DAY_SECONDS, stop)
        at = datetime.fromtimestamp(hi, timezone.utc)
        lookback = _seconds(hi - lo + CARRY_SECONDS)  # the sample before the day's first one is within the carry
        changed = prometheus.query(f"changes({PROCESS_START}[{lookback}]) > 0", at)
        for job, instance in sorted({(labels.get("job", ""), labels.get("instance", "")) for labels, _ in changed}):
            selector = f"{PROCESS_START}{{job={_literal(job)},instance={_literal(instance)}}}[{lookback}]"
            points = sorted(point for _, values in prometheus.samples(selector, at) for point in values)
            for (before, old), (after, new) in pairwise(points):
                if new != old and lo < after <= hi:
                    found.setdefault((job, instance), []).append(Change(before, after, new < old))
        lo = hi
    return found


def restarts(prometheus: Prometheus, start: datetime, end: datetime,
             pairs: Pairs | None = None) -> dict[tuple[str, str], list[datetime]]:
    """The processes, as (job, instance), that restarted under the same id in (start, end], each with
    the moments that part its runs: halfway between the old run's last sample and the new run's first
    (a run's samples all share its export times, within a millisecond or two), and no earlier than
    `start`. A crash loop is restarts, however many. A start time that goes back is two processes
    writing under one id, whose sums no query can tell apart: an error naming the id and the fix.
    `pairs`: `restart_pairs` already read over a span holding this one (read here if None)."""
    if pairs is None:
        pairs = restart_pairs(prometheus, start, end)
    first, last = start.timestamp(), end.timestamp()
    found: dict[tuple[str, str], list[datetime]] = {}
    for (job, instance), changes in sorted(pairs.items()):
        inside = [change for change in changes if first < change.after <= last]
        back = next((change for change in inside if change.back), None)
        if back is not None:
            when = datetime.fromtimestamp(back.after, timezone.utc)
            raise PrometheusError(
                f"job {job!r} instance {instance!r}: its start time went back at {when:%Y-%m-%d %H:%M:%S} UTC, "
                "so two processes write under one id (alert LLMSeriesWrittenByTwoProcesses) and no sum between "
                f"{start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC can be exact; give each process its own "
                "service.instance.id"
            )
        cuts = sorted({max((change.before + change.after) / 2, first) for change in inside})
        if cuts:
            found[(job, instance)] = [datetime.fromtimestamp(cut, timezone.utc) for cut in cuts]
    return found


def exact_growth(prometheus: Prometheus, metric: str, start: datetime, end: datetime, by: Sequence[str],
                 where: str = "", restarted: Mapping[tuple[str, str], Sequence[datetime]] | None = None) -> list[Sample]:
    """The exact growth of `metric` in (start, end], summed by `by`, restarts under the same id included:
    one `growth` query for every process that ran through, and for each that restarted (`restarted`,
    from `restarts`; read here when not given) its runs one by one, read in batches. The run going at
    `start` grows from its value there (the two-ends form, up to the first cut); every later run
    starts from zero, so its growth is its last value before the next cut (or at `end`)."""
    if restarted is None:
        restarted = restarts(prometheus, start, end)
    if not restarted:
        return prometheus.query(growth(metric, (end - start).total_seconds(), by, where), end)
    # Every restarted process, whether or not it still runs at `end` (an exited one too: counted once).
    lookback = _seconds((end - start).total_seconds() + CARRY_SECONDS)
    ids = " or ".join(f"last_over_time({PROCESS_START}{{job={_literal(job)},instance={_literal(instance)}}}[{lookback}])"
                      for job, instance in restarted)
    totals: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)
    for labels, value in prometheus.query(growth(metric, (end - start).total_seconds(), by, where, ids), end):
        totals[tuple(sorted(labels.items()))] += value
    # Each restarted process's runs, each a query pinned to its run's end (`@`), sent in batches.
    runs: list[str] = []
    for (job, instance), cuts in restarted.items():
        only = join_matchers(where, f"job={_literal(job)}", f"instance={_literal(instance)}")
        if cuts[0] > start:  # the run that was going at `start`, up to its end
            runs.append(growth(metric, _duration((cuts[0] - start).total_seconds()), by, only, at=cuts[0]))
        for since, until in zip(cuts, [*cuts[1:], end], strict=True):  # the later runs, each from zero
            if until > since:
                window = _duration((until - since).total_seconds())
                runs.append(f"sum by ({', '.join(by)}) (last_over_time({metric}{{{only}}}[{window}]{_pinned(until)}))")
    for first in range(0, len(runs), _RUNS_PER_QUERY):
        batch = runs[first:first + _RUNS_PER_QUERY]
        promql = " or ".join(f'label_replace({run}, "{_RUN_LABEL}", "{n}", "", "")' for n, run in enumerate(batch))
        for labels, value in prometheus.query(promql, end):
            labels.pop(_RUN_LABEL, None)
            totals[tuple(sorted(labels.items()))] += value
    return [(dict(key), value) for key, value in totals.items()]


def processes_seen(prometheus: Prometheus, start: datetime, end: datetime) -> int:
    """How many instrumented processes reported to this Prometheus in (start, end]: each exports its
    start time at every collection, calls or not, so none means no telemetry arrived at all."""
    return round(prometheus.scalar(reporting(_duration((end - start).total_seconds())), end) or 0)


def restart_counts(window: str, where: str = "") -> str:
    """How often each process, as (job, instance), changed its start time within `window` (e.g.
    `$__range`): 0 for most. A figure read at a window's two ends (`growth`) misses what a process
    counted before each of its restarts, so a panel that shows one lists these beside it; the report
    reads the runs (`exact_growth`). Two processes writing under one id change it too, and are as wrong."""
    selector = f"{PROCESS_START}{{{where}}}" if where else PROCESS_START
    return f"sum by (job, instance) (changes({selector}[{window}]))"


def reporting(window: str, where: str = "") -> str:
    """How many instrumented processes reported within `window` (as `processes_seen`, for a panel):
    0 means no telemetry arrived, so the range's $0 is not a measured zero."""
    selector = f"{PROCESS_START}{{{where}}}" if where else PROCESS_START
    return f"count(last_over_time({selector}[{window}])) or vector(0)"


def seen(metric: str, lookback: str, by: Iterable[str] = ()) -> str:
    """What a counter stood at last within `lookback`, summed: found after the app has exited."""
    labels = ", ".join(by)
    return f"sum by ({labels}) (last_over_time({metric}[{lookback}]))"


def budget_query(period: str, scope: str = "global") -> str:
    """The budget the alert rules compare spend against (rendered from prometheus/budgets.yaml)."""
    return f'max(last_over_time({RULES[f"budget_{period}"]}{{scope="{scope}"}}[1h]))'


@dataclass(frozen=True)
class Prometheus:
    """Instant and exemplar queries against one Prometheus over its HTTP API."""

    url: str
    timeout: float = 10.0

    def _api(self, path: str, params: Mapping[str, str]) -> Any:
        encoded = urllib.parse.urlencode(params)
        if len(encoded) > _LONGEST_URL_QUERY:  # the API takes the same form as a POST body
            request = urllib.request.Request(f"{self.url.rstrip('/')}{path}", data=encoded.encode(), method="POST")
        else:
            request = urllib.request.Request(f"{self.url.rstrip('/')}{path}?{encoded}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise PrometheusError(f"Prometheus at {self.url} rejected the query: {detail}") from exc
        except (OSError, ValueError) as exc:
            raise PrometheusError(f"cannot query Prometheus at {self.url}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus rejected the query: {body.get('error')}")
        return body["data"]

    def _instant(self, promql: str, at: datetime | None) -> Any:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        return self._api("/api/v1/query", params)

    def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        data = self._instant(promql, at)
        if data.get("resultType") == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def samples(self, promql: str, at: datetime | None = None) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """The raw samples a range selector such as `m[1h]` holds at `at`: [(labels, [(timestamp, value)])]."""
        data = self._instant(promql, at)
        if data.get("resultType") != "matrix":
            raise PrometheusError(f"Prometheus answered {data.get('resultType')!r} to a range selector: {promql}")
        return [(item["metric"], [(float(t), float(v)) for t, v in item["values"]]) for item in data["result"]]

    def retention(self) -> str | None:
        """How long this Prometheus keeps samples, as it reports it ("15d"; "15d or 10GiB"), or None when
        it does not say (Mimir, Thanos: their retention lives in their own config)."""
        try:
            data = self._api("/api/v1/status/runtimeinfo", {})
        except PrometheusError:
            return None
        value = data.get("storageRetention") if isinstance(data, dict) else None
        return value if isinstance(value, str) and value else None

    def scalar(self, promql: str, at: datetime | None = None) -> float | None:
        """The single value of `promql`, or None when it returns nothing."""
        samples = self.query(promql, at)
        return samples[0][1] if samples else None

    def exemplars(self, promql: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Exemplars of the series selected by `promql`: [{labels, value, timestamp, series labels}]."""
        data = self._api("/api/v1/query_exemplars",
                         {"query": promql, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}"})
        out = []
        for series in data or []:
            for exemplar in series.get("exemplars", []):
                out.append({"series": series.get("seriesLabels", {}), "labels": exemplar.get("labels", {}),
                            "value": float(exemplar["value"]), "timestamp": float(exemplar["timestamp"])})
        return out


# Named figures for every reader that shows a range (Grafana panels, the report): name -> (metric
# key, labels to group by, extra matcher). A Grafana panel that shows one of these figures draws on
# `figure(name, "$__range", its variables' matchers)` (grafana/build.py), and the report's queries
# read the same metrics and matchers per period (reportdata.PERIOD_QUERIES, grouped finer and
# summed in Python): tests/cli/test_report.py checks both give the same figure on a replayed day.
WINDOW: Final = "$__range"
_MODEL, _TYPE = LABELS["model"], LABELS["token_type"]
FIGURES: Final[Mapping[str, tuple[str, tuple[str, ...], str]]] = {
    "spend": ("cost", (), ""),
    "spend_by_model": ("cost", (_MODEL,), ""),
    "spend_by_user": ("cost", (LABELS["user"],), ""),
    "spend_by_team": ("cost", (LABELS["team"],), ""),
    "spend_by_api_key": ("cost", (LABELS["api_key"],), ""),
    "spend_by_feature": ("cost", (LABELS["feature"],), ""),
    "spend_by_provider": ("cost", (LABELS["provider"],), ""),
    "spend_by_prompt_size": ("cost", (LABELS["prompt_size"],), ""),
    "reference_by_prompt_size": ("cost_reference", (LABELS["prompt_size"],), ""),
    "tokens_by_type": ("tokens", (_TYPE,), ""),
    "cache_savings_by_kind": ("savings", (LABELS["cache_kind"],), ""),
    "unpriced_calls_by_model": ("unpriced", (_MODEL,), ""),
    "unmetered_calls_by_model": ("unmetered", (_MODEL,), ""),
    "unpriced_tool_runs_by_model": ("hosted_tools", (_MODEL,), TOOL_FEE_MISSING),
    "failed_calls_by_model": ("calls", (_MODEL,), 'error_type!=""'),
    "http_429_by_model": ("attempts", (_MODEL,), f'{LABELS["status_class"]}="429"'),
}
# Ratios over the range: name -> (numerator, denominator), each (metric key, matcher), summed.
RATIOS: Final[Mapping[str, tuple[tuple[str, str], tuple[str, str]]]] = {
    "prompt_cache_hit_ratio": (("tokens", f'{_TYPE}="cache_read"'), ("tokens", f'{_TYPE}="input"')),
    "response_cache_hit_ratio": (("response_cache", f'{LABELS["cache_result"]}="hit"'), ("response_cache", "")),
}


def join_matchers(*parts: str) -> str:
    """Label matchers joined into one selector's, the empty ones left out."""
    return ",".join(part for part in parts if part)


def figure(name: str, window: str = WINDOW, where: str = "") -> str:
    """The named range figure `name` (FIGURES or RATIOS) over `window`, every selector narrowed by
    the matchers `where` (a dashboard's variables, e.g. `deployment_environment_name=~"$env"`)."""
    if name in RATIOS:
        (top, top_where), (bottom, bottom_where) = RATIOS[name]
        by = [_TYPE] if top == "tokens" else [LABELS["cache_result"]]
        return (f"sum({growth(METRICS[top], window, by, join_matchers(top_where, where))})"
                f" / sum({growth(METRICS[bottom], window, by, join_matchers(bottom_where, where))})")
    metric, by_labels, matcher = FIGURES[name]
    return growth(METRICS[metric], window, by_labels, join_matchers(matcher, where))


SHARED: Final[Mapping[str, str]] = {
    **{name: figure(name) for name in (*FIGURES, *RATIOS)},
    "budget_daily": budget_query("daily"),
    "budget_monthly": budget_query("monthly"),
    "spend_24h_budget_view": f'{RULES["spend_24h"]}{{scope="global"}}',
    "spend_mtd_budget_view": f'{RULES["spend_mtd"]}{{scope="global"}}',
    "spend_mtd_projected": f'{RULES["spend_mtd_projected"]}{{scope="global"}}',
    "error_ratio_by_model": RULES["errors_ratio5m"],
    "http_429_ratio_by_model": RULES["http_429_ratio5m"],
}

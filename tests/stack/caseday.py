"""A day of the case's traffic as OpenMetrics, for backfilling a real Prometheus (issues 17.7, 19),
and the exact sums it wrote (`Truth`), for every suite that needs a replayed day: the dashboards'
panel check (tests/stack/test_caseday.py) and the report's tests (tests/cli/test_report*.py).

About 2,750 calls by 25 users of 2 teams on 2 keys and 3 features, routed to the case's 4 models
through one gateway, sampled every 60 s as remote write delivers them, with the day's incidents: a
runaway loop at 02:00, a revoked key on a 5% canary, a 40-minute 429 spike, a slow hour, a replica
restart under the same instance id and a replica first seen running at 18:00. Besides: prompt-cache
hits (cached input at half price), response-cache lookups and hits, reference-model cost by prompt
size, a fine-tuned model with no price and streams that ended without usage. The series and labels
are the ones otel_llm exports (docs/CONTRACT.md); histograms carry a subset of the buckets to keep
the file small. Deterministic for a seed. Calls start in the day's second minute, so a calendar day
(end at midnight) holds all of them in (start, end].

    text = caseday.openmetrics(end=now_minute, seed=7)
    caseday.backfill(text, data_dir, promtool)        # promtool tsdb create-blocks-from openmetrics
    text, truth = caseday.generate(date(2026, 11, 29), restart=False)   # a calendar day, UTC

`restart=False` leaves out the restart under the same instance id, for the suites that compare the
report with the dashboards: a panel's range figure compares a series' values at the range's ends and
cannot see a reset inside it, where the report reads the process start time, as the recording rules
do (cli/queries.exact_growth; tests/cli/test_report_restarts.py replays the day with it).
"""

from __future__ import annotations

import math
import random
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from datetime import time as clock
from pathlib import Path
from typing import Any, Final

MODELS: Final = {  # $ per million tokens, input / output (the case's price table)
    "gpt-4.1": (2.00, 8.00), "claude-sonnet-4.5": (3.00, 15.00),
    "gemini-2.5-flash": (0.35, 2.50), "deepseek-v3.2": (0.14, 0.42),
}
SERVER: Final = "gw.example.com"
CANARY: Final = "canary.gw.example.com"
USERS: Final = [f"u{n:02d}" for n in range(25)]
TEAMS: Final = ("support", "research")
KEYS: Final = ("0123456789ab", "0f1e2d3c4b5a")  # the first has budgets in prometheus/tests/budgets.fixture.yaml
REVOKED_KEY: Final = "c0ffeec0ffee"
FEATURES: Final = ("triage", "reply", "summary")
PRICES: Final = MODELS
REFERENCE: Final = "deepseek-v3.2"  # routing: what the calls would have cost on it
UNPRICED_MODEL: Final = "ft-support-v2"  # a fine-tuned model nobody priced
# The standard histograms of chat calls under the latest GenAI conventions (README "Semantic conventions").
LATEST_HISTOGRAMS: Final = {
    "gen_ai_client_operation_duration_seconds": "gen_ai_client_inference_duration_seconds",
    "gen_ai_client_operation_time_to_first_chunk_seconds": "gen_ai_client_inference_time_to_first_chunk_seconds",
}
BUCKETS: Final = (0.64, 1.28, 2.56, 5.12, 10.24)
CALLS_PER_DAY: Final = 2750
JOB: Final = "chatbot"
Labels = tuple[tuple[str, str], ...]


@dataclass
class Truth:
    """The exact sums written, for the tests."""

    spend: float = 0.0
    by: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    tokens: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: int = 0
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    http_429: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unpriced: int = 0
    unmetered: int = 0
    unpriced_tool_runs: int = 0  # code interpreter runs: counted, their fee not in the spend
    prompt_savings: float = 0.0
    response_hits: int = 0
    response_lookups: int = 0
    response_savings: float = 0.0
    reference: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    spend_by_size: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    # (model, user, team, key, feature) -> [cost, input, output, cache_read]
    rows: dict[tuple[str, ...], list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0] * 4))


def price(model: str, input_tokens: int, cached: int, output: int) -> float:
    price_in, price_out = MODELS[model]
    return ((input_tokens - cached) * price_in + cached * price_in / 2 + output * price_out) / 1e6


@dataclass
class Day:
    """Counters and gauges, each series' samples at every minute from its first value on."""

    counters: dict[str, dict[Labels, float]] = field(default_factory=lambda: defaultdict(dict))
    gauges: dict[str, dict[Labels, float]] = field(default_factory=lambda: defaultdict(dict))
    histograms: dict[str, dict[Labels, list[float]]] = field(default_factory=lambda: defaultdict(dict))
    samples: dict[tuple[str, str, Labels], list[tuple[int, float | list[float]]]] = field(
        default_factory=lambda: defaultdict(list))

    calls: int = 0  # calls made (the counters restart with app-2; this does not)
    truth: Truth = field(default_factory=Truth)
    histogram_names: dict[str, str] = field(default_factory=dict)  # v1.41.0 name -> the name written

    def add(self, name: str, labels: dict[str, str], amount: float) -> None:
        key = tuple(sorted(labels.items()))
        self.counters[name][key] = self.counters[name].get(key, 0.0) + amount

    def spend(self, labels: dict[str, str], usd: float) -> None:
        """A priced call's cost, into the counter and the truth (all its attribution labels)."""
        self.add("otel_llm_cost_USD_total", labels, usd)
        truth = self.truth
        truth.spend += usd
        truth.spend_by_size[labels["otel_llm_prompt_size"]] += usd
        for dim, label in (("model", "gen_ai_request_model"), ("user", "user_id"), ("team", "otel_llm_team"),
                           ("api_key", "otel_llm_api_key_fingerprint"), ("feature", "otel_llm_feature")):
            truth.by[dim][labels[label]] += usd
        truth.rows[_row(labels)][0] += usd

    def observe(self, name: str, labels: dict[str, str], value: float) -> None:
        key = tuple(sorted(labels.items()))
        name = self.histogram_names.get(name, name)
        # le buckets (cumulative), +Inf, then count and sum.
        found = self.histograms[name].setdefault(key, [0.0] * (len(BUCKETS) + 3))
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                found[i] += 1
        found[len(BUCKETS)] += 1
        found[len(BUCKETS) + 1] += 1
        found[len(BUCKETS) + 2] += value

    def reset_instance(self, instance: str) -> None:
        """A restart: every series of `instance` starts again from zero (and is re-created on use)."""
        for family in (*self.counters.values(), *self.histograms.values()):
            for key in [k for k in family if ("instance", instance) in k]:
                del family[key]

    def snapshot(self, ts: int) -> None:
        for kind, families in (("counter", self.counters), ("gauge", self.gauges)):
            for name, series in families.items():
                for key, value in series.items():
                    self.samples[(kind, name, key)].append((ts, value))
        for name, series in self.histograms.items():
            for key, cells in series.items():
                self.samples[("histogram", name, key)].append((ts, list(cells)))


def _calls_this_minute(rng: random.Random, minute: int) -> int:
    # Office hours in UTC+7 (01:00-11:00 UTC) carry most of the traffic.
    hour = minute // 60
    weight = 1.6 if 1 <= hour < 11 else 0.45
    mean = CALLS_PER_DAY / 1440 * weight
    return sum(1 for _ in range(int(mean * 4)) if rng.random() < mean / int(mean * 4 or 1))


def simulate(end: int, seed: int = 7, restart: bool = True, conventions: str = "v1.41.0") -> Day:
    """The day ending at `end` (a Unix time on a minute), minute by minute. `conventions`: "latest"
    for apps with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental (renamed histograms)."""
    rng = random.Random(seed)
    day = Day(histogram_names=LATEST_HISTOGRAMS if conventions == "latest" else {})
    start = end - 86400
    started = {"app-1": start - 3 * 86400, "app-2": start - 3 * 86400}
    # Routed by task complexity: each user's tasks go to one model.
    models = sorted(MODELS)
    prefs = {u: models[n % len(models)] for n, u in enumerate(USERS)}
    for minute in range(1441):
        ts = start + minute * 60
        if minute == 13 * 60 and restart:  # app-2 restarts under the same instance id
            day.reset_instance("app-2")
            started["app-2"] = ts - 30
        if minute == 18 * 60:  # app-3 ran for two days behind a broken Collector: first seen now
            started["app-3"] = start - 2 * 86400
            day.spend({"job": JOB, "instance": "app-3", "gen_ai_provider_name": "openai",
                       "gen_ai_request_model": "gemini-2.5-flash", "server_address": SERVER, "user_id": "u24",
                       "otel_llm_team": "support", "otel_llm_api_key_fingerprint": KEYS[1],
                       "otel_llm_feature": FEATURES[0], "otel_llm_prompt_size": "small"}, 5.0)
        for instance, when in started.items():
            day.gauges["otel_llm_process_start_time_seconds"][(("instance", instance), ("job", JOB))] = when
            day.gauges["target_info"][(("instance", instance), ("job", JOB))] = 1
        calls: list[tuple[str, str | None, str]] = []
        if minute:  # none in the first minute: its sample closes the previous day
            calls = [(rng.choice(USERS), None, "") for _ in range(_calls_this_minute(rng, minute))]
            if 120 <= minute < 150:  # a runaway agent loop at 02:00
                calls += [("u07", "gpt-4.1", "")] * 10
            if minute % 20 == 0:  # a fine-tuned model nobody priced
                calls.append((rng.choice(USERS), UNPRICED_MODEL, "unpriced"))
            if minute % 15 == 0:  # a stream that ended without usage
                calls.append((rng.choice(USERS), "gpt-4.1", "unmetered"))
            if minute % 45 == 0:  # a Responses call with web searches (priced) and a code interpreter run (not)
                tool = {"job": JOB, "instance": "app-1", "gen_ai_provider_name": "openai", "server_address": SERVER,
                        "gen_ai_request_model": "gpt-4.1", "gen_ai_operation_name": "chat"}
                day.add("otel_llm_hosted_tool_calls_total", {**tool, "otel_llm_hosted_tool": "web_search",
                                                             "otel_llm_hosted_tool_priced": "true"}, 2)
                day.add("otel_llm_hosted_tool_calls_total", {**tool, "otel_llm_hosted_tool": "code_interpreter",
                                                             "otel_llm_hosted_tool_priced": "false"}, 1)
                day.truth.unpriced_tool_runs += 1
            if minute % 30 == 0:  # a gateway reporting an impossible usage
                day.add("otel_llm_usage_rejected_total", {
                    "job": JOB, "instance": "app-1", "gen_ai_provider_name": "openai", "server_address": SERVER,
                    "gen_ai_request_model": "gpt-4.1", "gen_ai_operation_name": "chat",
                    "otel_llm_rejected_reason": "tokens_out_of_range"}, 1)
        for user, forced, kind in calls:
            _call(day, rng, minute, user, forced or prefs[user], kind)
        day.snapshot(ts)
    return day


def add_billing(day: Day, end: int) -> None:
    """The reconcile exporter's gauges (issue 18) for the settled day before `end`: billed 3% above
    what was recorded (a gateway fee), held at every minute of the day."""
    settled = time.strftime("%Y-%m-%d", time.gmtime(end - 86400))
    for model in MODELS:
        recorded = sum(v for k, v in day.counters["otel_llm_cost_USD_total"].items()
                       if ("gen_ai_request_model", model) in k)
        key = (("date", settled), ("model", model), ("provider", "openai"))
        for ts, _ in day.samples[("gauge", "otel_llm_process_start_time_seconds",
                                  (("instance", "app-1"), ("job", JOB)))]:
            day.samples[("gauge", "otel_llm_reconcile_recorded_cost_usd", key)].append((ts, recorded))
            day.samples[("gauge", "otel_llm_billed_cost_usd", key)].append((ts, recorded * 1.03))


def _row(labels: dict[str, str]) -> tuple[str, ...]:
    return tuple(labels[k] for k in ("gen_ai_request_model", "user_id", "otel_llm_team",
                                     "otel_llm_api_key_fingerprint", "otel_llm_feature"))


def _call(day: Day, rng: random.Random, minute: int, user: str, model: str, kind: str = "") -> None:
    """One call. `kind`: "" (priced), "unpriced" (no price for the model), "unmetered" (no usage)."""
    day.calls += 1
    truth = day.truth
    number = USERS.index(user)
    instance = f"app-{1 + number % 2}"  # sticky sessions: a user's calls go to one replica
    team = TEAMS[number % 2]
    canary = not kind and minute >= 9 * 60 and rng.random() < 0.05
    key = REVOKED_KEY if canary else KEYS[number // 13]
    server = CANARY if canary else SERVER
    base = {"job": JOB, "instance": instance, "gen_ai_provider_name": "openai",
            "gen_ai_request_model": model, "server_address": server}
    attempt = {**base, "otel_llm_api_key_fingerprint": key}
    who = {**base, "user_id": user, "otel_llm_team": team, "otel_llm_api_key_fingerprint": key,
           "otel_llm_feature": FEATURES[number // 3 % 3]}
    env = {"deployment_environment_name": "production"}  # on the calls only: the file stays small
    truth.calls += 1
    if canary:  # the revoked key: one 401, no retry, no usage
        day.add("otel_llm_http_attempts_total", {**attempt, "otel_llm_http_status_class": "401"}, 1)
        day.add("otel_llm_calls_total", {**who, **env, "error_type": "AuthenticationError"}, 1)
        truth.failed[model] += 1
        return
    spike = model == "deepseek-v3.2" and 10 * 60 <= minute < 10 * 60 + 40  # 3 of 4 attempts get 429
    limited = sum(1 for _ in range(2) if rng.random() < (0.75 if spike else 0.02))
    if limited:
        day.add("otel_llm_http_attempts_total", {**attempt, "otel_llm_http_status_class": "429"}, limited)
        truth.http_429[model] += limited
        for _ in range(limited):
            day.observe("otel_llm_http_backoff_duration_seconds", base, rng.uniform(0.4, 2.0))
        if limited == 2 and rng.random() < 0.5:
            day.add("otel_llm_calls_total", {**who, **env, "error_type": "RateLimitError"}, 1)
            truth.failed[model] += 1
            return
    size = ("small", "medium", "large")[number % 3]  # routed by complexity: one size per user here
    tokens_in = {"small": 300, "medium": 1200, "large": 12000}[size] + rng.randrange(200)
    day.add("otel_llm_calls_total", {**who, **env}, 1)
    if model == "gemini-2.5-flash" and rng.random() < 0.25:  # a temperature=0 FAQ: a response-cache lookup
        hit = rng.random() < 0.4
        truth.response_lookups += 1
        day.add("otel_llm_response_cache_requests_total",
                {**base, "otel_llm_response_cache_result": "hit" if hit else "miss"}, 1)
        if hit:  # answered from the cache: no attempt, no usage, no cost
            saved = price(model, tokens_in, 0, 120)
            day.add("otel_llm_cache_savings_USD_total", {**who, "otel_llm_cache_kind": "response"}, saved)
            truth.response_hits += 1
            truth.response_savings += saved
            return
    day.add("otel_llm_http_attempts_total", {**attempt, "otel_llm_http_status_class": "2xx"}, 1)
    slow = 4.0 if model == "claude-sonnet-4.5" and 14 * 60 <= minute < 15 * 60 else 1.0
    duration = rng.lognormvariate(math.log(0.42), 0.6) * slow
    day.observe("gen_ai_client_operation_duration_seconds", base, duration)
    day.observe("gen_ai_client_operation_time_to_first_chunk_seconds", base, duration * 0.3)
    if kind == "unmetered":
        day.add("otel_llm_calls_unmetered_total", {**base, "gen_ai_operation_name": "chat"}, 1)
        truth.unmetered += 1
        return
    tokens_out = rng.randrange(50, 600)
    cached = tokens_in // 2 if rng.random() < 0.34 else 0
    row = truth.rows[_row(who)]
    for token_type, amount, column in (("input", tokens_in, 1), ("output", tokens_out, 2), ("cache_read", cached, 3)):
        if amount:
            day.add("otel_llm_tokens_total", {**who, "gen_ai_token_type": token_type}, amount)
            truth.tokens[token_type] += amount
            row[column] += amount
    if kind == "unpriced":
        day.add("otel_llm_calls_unpriced_total", {**base, "gen_ai_response_model": f"{model}-0611"}, 1)
        truth.unpriced += 1
        return
    day.spend({**who, "otel_llm_prompt_size": size}, price(model, tokens_in, cached, tokens_out))
    reference = price(REFERENCE, tokens_in, cached, tokens_out)
    day.add("otel_llm_cost_reference_USD_total",
            {**who, "otel_llm_prompt_size": size, "otel_llm_reference_model": REFERENCE}, reference)
    truth.reference[size] += reference
    if cached:
        saved = cached * MODELS[model][0] / 2 / 1e6
        day.add("otel_llm_cache_savings_USD_total", {**base, "otel_llm_cache_kind": "prompt"}, saved)
        truth.prompt_savings += saved


def _labels(key: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = (*key, *extra)
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}"


def _lines(day: Day) -> Iterator[str]:
    by_family: dict[tuple[str, str], list[Labels]] = defaultdict(list)
    for kind, name, key in day.samples:
        by_family[(kind, name)].append(key)
    for (kind, name), keys in sorted(by_family.items()):
        family = name.removesuffix("_total") if kind == "counter" else name
        yield f"# TYPE {family} {'unknown' if name == 'target_info' else kind}"
        for key in sorted(keys):
            for ts, value in day.samples[(kind, name, key)]:
                if kind != "histogram":
                    yield f"{name}{_labels(key)} {value} {ts}"
                    continue
                assert isinstance(value, list)
                for bound, count in zip((*map(str, BUCKETS), "+Inf"), value, strict=False):
                    yield f"{name}_bucket{_labels(key, (('le', bound),))} {count} {ts}"
                yield f"{name}_count{_labels(key)} {value[-2]} {ts}"
                yield f"{name}_sum{_labels(key)} {value[-1]} {ts}"
    yield "# EOF"


def openmetrics(end: int, seed: int = 7, restart: bool = True, conventions: str = "v1.41.0") -> str:
    """The day ending at `end` as an OpenMetrics exposition with timestamps (one sample a minute)."""
    return generate_until(end, seed, restart, conventions)[0]


def generate_until(end: int, seed: int = 7, restart: bool = True, conventions: str = "v1.41.0") -> tuple[str, Truth]:
    """The day ending at `end` as OpenMetrics, and the truth it holds."""
    day = simulate(end, seed, restart, conventions)
    add_billing(day, end)
    return "\n".join(_lines(day)) + "\n", day.truth


def generate(calendar_day: date, seed: int = 7, restart: bool = False) -> tuple[str, Truth]:
    """A calendar day (UTC) as OpenMetrics, and the truth it holds."""
    end = datetime.combine(calendar_day, clock(0), tzinfo=timezone.utc).timestamp() + 86400
    return generate_until(int(end), seed, restart)


def backfill(text: str, data_dir: Path, promtool: str) -> None:
    """Write `text` into TSDB blocks under `data_dir` (Prometheus then starts on that directory)."""
    source = data_dir.parent / "caseday.om"
    source.write_text(text, encoding="utf-8")
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
                   check=True, capture_output=True, text=True, timeout=600)
    source.unlink()


@contextmanager
def caseday_prometheus(workdir: Path, calendar_day: date,
                       budgets: tuple[float, float] = (50.0, 1000.0), restart: bool = False) -> Iterator[Any]:
    """A real Prometheus holding `calendar_day` (UTC, with the restart if asked) backfilled with promtool,
    and the budget series of the rules (rendered from `budgets`, daily and monthly, evaluated every
    second). Yields (Prometheus, Truth). Skips when the tools are not installed."""
    import pytest
    from stackservers import running_prometheus, tool, wait_until

    from otel_llm.cli.budget_rules import Budget, render_rules

    promtool = tool("promtool")
    if promtool is None or tool("prometheus") is None:
        pytest.skip("prometheus/promtool not installed: run scripts/install-tools (CI does)")
    text, truth = generate(calendar_day, restart=restart)
    backfill(text, workdir / "prometheus-data", promtool)
    rules = workdir / "budgets.yml"
    rendered = render_rules((Budget("global", "", "daily", budgets[0]), Budget("global", "", "monthly", budgets[1])),
                            "caseday")
    rules.write_text(rendered.replace("interval: 1m", "interval: 1s"), encoding="utf-8")
    # compose.yaml's retention: the report's month to date (up to 31 days back) is inside it.
    with running_prometheus(workdir, rule_files=[rules], extra_args=["--storage.tsdb.retention.time=45d"]) as prometheus:
        wait_until(lambda: bool(prometheus.query('otel_llm:budget_usd:daily{scope="global"}')["result"]), 30,
                   "the budget rules' first evaluation")
        yield prometheus, truth

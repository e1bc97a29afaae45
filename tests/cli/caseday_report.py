"""A replayed day of the case for the report's tests: about 2,750 calls by 25 users of 5 teams on 3 keys
and 3 features, routed to the case's 4 models by prompt size, with the gateway's prices (cached input
at half price), a few 429s and failed calls, response-cache hits, a dozen calls on a model with no
price and a few with no usage. It writes the counters as OpenMetrics text with timestamps, as an app
scraped every 15 minutes would have left them (plus a sample at every change), for
`promtool tsdb create-blocks-from openmetrics`, and keeps the exact sums it wrote (`Truth`) for the
tests to compare the report's figures with.

Same idea as the stack's caseday generator (tests/stack/caseday.py); this one also carries the
labels the report ranks by (feature, prompt size, reference cost, unpriced and unmetered calls).
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import pytest

PRICES = {  # $ per million tokens: input, output (the case's gateway table); cached input at half
    "gpt-4.1": (2.00, 8.00),
    "claude-sonnet-4.5": (3.00, 15.00),
    "gemini-2.5-flash": (0.35, 2.50),
    "deepseek-v3.2": (0.14, 0.42),
}
REFERENCE = "deepseek-v3.2"
UNPRICED_MODEL = "acme-llama-70b"
ROUTES = (("deepseek-v3.2", 5, (200, 900)), ("gemini-2.5-flash", 3, (900, 4000)),
          ("gpt-4.1", 1, (3000, 12000)), ("claude-sonnet-4.5", 1, (3000, 12000)))
TEAMS = ("support", "billing", "onboarding", "search", "platform")
KEYS = ("0a1b2c3d4e5f", "1b2c3d4e5f60", "2c3d4e5f6071")
FEATURES = ("triage", "reply", "summary")
SCRAPE = 900  # seconds between the periodic samples
Labels = tuple[tuple[str, str], ...]


def prompt_size(input_tokens: int) -> str:
    return "small" if input_tokens < 1000 else "medium" if input_tokens < 10000 else "large"


def cost(model: str, input_tokens: int, cached: int, output: int) -> float:
    price_in, price_out = PRICES[model]
    return ((input_tokens - cached) * price_in + cached * price_in / 2 + output * price_out) / 1e6


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
    prompt_savings: float = 0.0
    response_hits: int = 0
    response_lookups: int = 0
    response_savings: float = 0.0
    reference: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    spend_by_size: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    # (model, user, team, key, feature) -> [cost, input, output, cache_read]
    rows: dict[tuple[str, ...], list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0] * 4))


class Counters:
    """Cumulative counters with their sample times: series -> {t: value}."""

    def __init__(self) -> None:
        self.samples: dict[tuple[str, Labels], dict[int, float]] = defaultdict(dict)
        self.value: dict[tuple[str, Labels], float] = defaultdict(float)

    def add(self, metric: str, labels: dict[str, str], amount: float, t: int) -> None:
        key = (metric, tuple(sorted(labels.items())))
        self.value[key] += amount
        self.samples[key][t] = self.value[key]

    def openmetrics(self, end: int) -> str:
        lines: list[str] = []
        for family in sorted({metric for metric, _ in self.samples}):
            lines.append(f"# TYPE {family.removesuffix('_total')} counter")
            for (metric, labels), points in sorted(self.samples.items()):
                if metric != family:
                    continue
                first = min(points)
                value = 0.0
                times = sorted(set(points) | set(range(first, end + 1, SCRAPE)))
                label_text = ",".join(f'{k}="{v}"' for k, v in labels)
                for t in times:
                    value = points.get(t, value)
                    lines.append(f"{metric}{{{label_text}}} {value!r} {t}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def generate(day: date, calls: int = 2750, users: int = 25, seed: int = 19) -> tuple[str, Truth]:
    """OpenMetrics text of `day` (UTC) and the truth it holds."""
    rng = random.Random(seed)
    start = int(datetime.combine(day, time(0), tzinfo=timezone.utc).timestamp())
    counters, truth = Counters(), Truth()
    for t in sorted(start + rng.randrange(86400 - SCRAPE) for _ in range(calls)):
        user = f"user-{rng.randrange(users):02d}"
        who = {"user_id": user, "otel_llm_team": TEAMS[int(user[-2:]) % 5],
               "otel_llm_api_key_fingerprint": KEYS[int(user[-2:]) % 3], "otel_llm_feature": rng.choice(FEATURES)}
        model, _, (low, high) = rng.choices(ROUTES, weights=[r[1] for r in ROUTES])[0]
        draw = rng.random()
        if draw < 0.005:
            model = UNPRICED_MODEL
        _one_call(counters, truth, rng, t, model, who, rng.randint(low, high), draw)
    return counters.openmetrics(start + 86400 - 1), truth


def _one_call(counters: Counters, truth: Truth, rng: random.Random, t: int, model: str, who: dict[str, str],
              input_tokens: int, draw: float) -> None:
    base = {"gen_ai_request_model": model, "gen_ai_provider_name": "openai_compatible",
            "gen_ai_operation_name": "chat"}
    row_key = (model, who["user_id"], who["otel_llm_team"], who["otel_llm_api_key_fingerprint"],
               who["otel_llm_feature"])
    truth.calls += 1
    retried = 3 if 0.01 <= draw < 0.03 else 1 if 0.03 <= draw < 0.08 else 0
    for _ in range(retried):
        counters.add("otel_llm_http_attempts_total", base | {"otel_llm_http_status_class": "429"}, 1, t)
        truth.http_429[model] += 1
    if retried == 3:  # the SDK gave up: a failed call, no usage, no cost
        counters.add("otel_llm_calls_total", base | who | {"error_type": "RateLimitError"}, 1, t)
        truth.failed[model] += 1
        return
    counters.add("otel_llm_calls_total", base | who, 1, t)
    if model == "gemini-2.5-flash" and rng.random() < 0.25:  # a temperature=0 FAQ: a response cache lookup
        truth.response_lookups += 1
        hit = rng.random() < 0.4
        counters.add("otel_llm_response_cache_requests_total",
                     {"gen_ai_request_model": model, "otel_llm_response_cache_result": "hit" if hit else "miss"}, 1, t)
        if hit:
            saved = cost(model, input_tokens, 0, 120)
            truth.response_hits += 1
            truth.response_savings += saved
            counters.add("otel_llm_cache_savings_USD_total", base | who | {"otel_llm_cache_kind": "response"}, saved, t)
            return
    counters.add("otel_llm_http_attempts_total", base | {"otel_llm_http_status_class": "2xx"}, 1, t)
    if model == "gpt-4.1" and draw > 0.997:  # a stream that ended without usage
        counters.add("otel_llm_calls_unmetered_total", base, 1, t)
        truth.unmetered += 1
        return
    cached = input_tokens // 2 if rng.random() < 0.34 else 0
    output = rng.randint(50, 600)
    size = prompt_size(input_tokens)
    for kind, amount in (("input", input_tokens), ("output", output), ("cache_read", cached)):
        if amount:
            counters.add("otel_llm_tokens_total", base | who | {"gen_ai_token_type": kind}, amount, t)
            truth.tokens[kind] += amount
    row = truth.rows[row_key]
    row[1] += input_tokens
    row[2] += output
    row[3] += cached
    if model == UNPRICED_MODEL:
        counters.add("otel_llm_calls_unpriced_total", base, 1, t)
        truth.unpriced += 1
        return
    usd = cost(model, input_tokens, cached, output)
    counters.add("otel_llm_cost_USD_total", base | who | {"otel_llm_prompt_size": size}, usd, t)
    row[0] += usd
    truth.spend += usd
    truth.spend_by_size[size] += usd
    for dim, label in (("model", "gen_ai_request_model"), ("user", "user_id"), ("team", "otel_llm_team"),
                       ("api_key", "otel_llm_api_key_fingerprint"), ("feature", "otel_llm_feature")):
        truth.by[dim][(base | who)[label]] += usd
    reference = cost(REFERENCE, input_tokens, cached, output)
    counters.add("otel_llm_cost_reference_USD_total", base | who | {"otel_llm_prompt_size": size,
                                                                    "otel_llm_reference_model": REFERENCE}, reference, t)
    truth.reference[size] += reference
    if cached:
        saved = cached * PRICES[model][0] / 2 / 1e6
        counters.add("otel_llm_cache_savings_USD_total", base | who | {"otel_llm_cache_kind": "prompt"}, saved, t)
        truth.prompt_savings += saved


@contextmanager
def caseday_prometheus(workdir: Path, day: date, budgets: tuple[float, float] = (50.0, 1000.0)) -> Iterator[Any]:
    """A real Prometheus holding `day` backfilled with promtool, and the budget series of the rules
    (rendered from `budgets`, daily and monthly, evaluated every second). Yields (Prometheus, Truth)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stack"))
    from stackservers import running_prometheus, tool, wait_until

    from otel_llm.cli.budget_rules import Budget, render_rules

    promtool = tool("promtool")
    if promtool is None or tool("prometheus") is None:
        pytest.skip("prometheus/promtool not installed: run scripts/install-tools (CI does)")
    text, truth = generate(day)
    source = workdir / "caseday.om"
    source.write_text(text, encoding="utf-8")
    data = workdir / "prometheus-data"
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                   check=True, capture_output=True)
    source.unlink()
    rules = workdir / "budgets.yml"
    rendered = render_rules((Budget("global", "", "daily", budgets[0]), Budget("global", "", "monthly", budgets[1])),
                            "caseday")
    rules.write_text(rendered.replace("interval: 1m", "interval: 1s"), encoding="utf-8")
    with running_prometheus(workdir, rule_files=[rules]) as prometheus:
        wait_until(lambda: bool(prometheus.query('otel_llm:budget_usd:daily{scope="global"}')["result"]), 30,
                   "the budget rules' first evaluation")
        yield prometheus, truth

"""End to end: the demo's report against the simulator's own count of tokens x the example prices, and
its response-cache figures against the answers the workload received twice."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llm.cli.demo import _workload_env, build_parser
from otel_llm.cli.procs import find_binary

REPO = Path(__file__).parents[2]
PRICES = yaml.safe_load((REPO / "examples" / "prices.yaml").read_text())["models"]
needs_binaries = pytest.mark.skipif(
    find_binary("prometheus") is None or find_binary("prometheus-alertmanager", "alertmanager") is None,
    reason="prometheus / alertmanager binaries not installed: run scripts/install-tools",
)


def _usd(model: str, prompt: int, cached: int, completion: int) -> float:
    """The example prices file applied by hand (the canary has no special prices)."""
    price = PRICES[model]
    return ((prompt - cached) * price["input"] + cached * price["cached_input"] + completion * price["output"]) / 1e6


def _truth(stats: list[dict]) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """USD and tokens per model, from what the simulators served. Response-cache hits never reach
    a simulator and cost nothing, so this stays the truth for spend with the cache on."""
    dollars: dict[str, float] = {}
    tokens: dict[str, dict[str, int]] = {}
    for snapshot in stats:
        for model, tally in snapshot["models"].items():
            if not tally["prompt_tokens"]:
                continue
            cached = tally["cached_tokens"]
            usd = _usd(model, tally["prompt_tokens"], cached, tally["completion_tokens"])
            dollars[model] = dollars.get(model, 0.0) + usd
            into = tokens.setdefault(model, {"input": 0, "output": 0, "cache_read": 0})
            into["input"] += tally["prompt_tokens"]
            into["output"] += tally["completion_tokens"]
            into["cache_read"] += cached
    return dollars, tokens


def _repeats_would_have_cost(repeats: dict[str, dict[str, int]]) -> float:
    """The answers the workload received a second time (the simulator never repeats a reply id, so
    the response cache served them), priced with the usage the app was shown: what those calls
    would have cost had they gone to the provider."""
    return sum(_usd(model, t.get("prompt_tokens", 0), t.get("cached_tokens", 0), t.get("completion_tokens", 0))
               for model, t in repeats.items())


@pytest.mark.prometheus
@needs_binaries
def test_demo_report_matches_simulator_truth_and_alert_fires() -> None:
    from otel_llm.cli.demo import run_demo

    panels: dict[str, list[Any]] = {}
    result = run_demo(calls=120, budget_daily=0.02, inspect=lambda url: panels.update(_dashboard_queries(url)))
    assert result.seconds < 60
    outcomes = result.workload["outcomes"]
    assert outcomes.get("RateLimitError", 0) >= 1 and outcomes["ok"] >= 100
    assert result.simulator_stats[1]["total"]["requests"] >= 1  # the canary got traffic
    assert result.simulator_stats[0]["total"]["status_codes"].get("429", 0) >= 1

    dollars, tokens = _truth(result.simulator_stats)
    day = result.report["last_24h"]
    by_model = {row["name"]: row for row in day["by"]["model"]}
    assert set(by_model) == set(dollars) == {"gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2"}
    for model, usd in dollars.items():
        assert by_model[model]["spend_usd"] == pytest.approx(usd, rel=0.01), model
        assert by_model[model]["input_tokens"] == pytest.approx(tokens[model]["input"], rel=0.01), model
        assert by_model[model]["output_tokens"] == pytest.approx(tokens[model]["output"], rel=0.01), model
    assert day["spend_usd"] == pytest.approx(sum(dollars.values()), rel=0.01)
    assert result.report["month_to_date"]["spend_usd"] == pytest.approx(day["spend_usd"], rel=1e-9)
    cached = sum(t["cache_read"] for t in tokens.values())
    assert cached > 0
    assert day["cache_hit_ratio"] == pytest.approx(cached / sum(t["input"] for t in tokens.values()), rel=0.01)
    assert day["cache_savings_usd"] > 0

    # The response cache (on by default in the demo): every FAQ call is one lookup; the hits are
    # exactly the answers the app received twice, and they never reached a simulator.
    repeats = result.workload["repeat_answers"]
    hits = sum(t["calls"] for t in repeats.values())
    lookups = day["response_cache_requests"]
    assert hits > 0
    assert lookups == {"hit": hits, "miss": result.workload["faq_calls"] - hits, "error": 0}
    assert day["response_cache_hit_ratio"] == pytest.approx(hits / result.workload["faq_calls"])
    served = sum(s["total"]["status_codes"].get("200", 0) for s in result.simulator_stats)
    assert served == outcomes["ok"] - hits
    would_have_cost = _repeats_would_have_cost(repeats)
    assert would_have_cost > 0
    assert day["response_cache_savings_usd"] == pytest.approx(would_have_cost, rel=0.01)
    assert result.report["month_to_date"]["response_cache_savings_usd"] == pytest.approx(
        day["response_cache_savings_usd"], rel=1e-9)

    # Every query of every dashboard panel returns data from that Prometheus.
    assert len(panels) > 30
    empty = sorted(where for where, rows in panels.items() if not rows)
    assert empty == sorted(EMPTY_BY_DESIGN)

    assert result.alert_fired
    daily = [a for a in result.alerts if a["labels"]["alertname"] == "LLMDailyBudgetSpent"]
    assert {a["labels"]["severity"] for a in daily} >= {"critical"}


def _dashboard_queries(prometheus: str) -> dict[str, list[Any]]:
    """Every Prometheus query of every dashboard panel, run against the demo's Prometheus with the
    dashboard variables set to a user and a model the workload really used (a 429-hit model)."""
    import importlib.util

    from otel_llm.cli import report

    spec = importlib.util.spec_from_file_location("grafana_checks", REPO / "tests/stack/test_grafana.py")
    assert spec and spec.loader
    checks = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "tests/stack"))
    try:
        spec.loader.exec_module(checks)
    finally:
        sys.path.remove(str(REPO / "tests/stack"))
    # The workload has exited: its series are stale, so read them through a range.
    user = report.query(prometheus, "topk(1, sum by (user_id) (last_over_time(otel_llm_cost_USD_total[10m])))")[0][0]
    model = report.query(prometheus, 'topk(1, sum by (gen_ai_request_model) (last_over_time('
                                     'otel_llm_calls_total{error_type="RateLimitError"}[10m])))')[0][0]
    variables = {**checks.GRAFANA_VARIABLES, "$user": user["user_id"], "$model": model["gen_ai_request_model"],
                 "$__range": "1h"}
    out = {}
    for where, expr in checks.all_exprs():
        for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
            expr = expr.replace(name, value)
        out[where] = report.query(prometheus, expr)
    return out


# Panels that are rightly empty after the demo's workload: it prices every model it calls, and its
# budgets file sets a global budget only, no per-user one.
EMPTY_BY_DESIGN = {"cost-overview: Unpriced calls in range (spend under-reported)", "drilldown: Daily budget used today",
                   # No reconcile exporter, no key budgets, no bad usage, no process first seen running
                   # in the demo: the "can the number be trusted?" row is empty when all is well.
                   "cost-overview: Billed vs recorded, per day and model",
                   "cost-overview: Remaining monthly budget per API key",
                   "cost-overview: Rejected usage in range (outside what a call can reach)",
                   "cost-overview: Unmetered calls in range (no usage at all: spend not measured)",
                   "cost-overview: Spend possibly missed (upper bound, last 24h)",
                   # The demo runs no hosted tool (Responses API) whose fee goes unpriced.
                   "cost-overview: Hosted tool runs in range without their fee in the spend"}


def test_response_cache_flag_decides_the_workload_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_LLM_RESPONSE_CACHE", "redis://127.0.0.1:1/0")  # the caller's own: not the demo's
    assert build_parser().parse_args([]).response_cache is True
    assert build_parser().parse_args(["--no-response-cache"]).response_cache is False
    assert _workload_env(9464, True)["OTEL_LLM_RESPONSE_CACHE"] == "memory://"
    assert "OTEL_LLM_RESPONSE_CACHE" not in _workload_env(9464, False)

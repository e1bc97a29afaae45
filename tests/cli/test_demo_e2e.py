"""End to end: the demo's report against the simulator's own count of tokens x the example prices."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from otel_llm.cli.procs import find_binary

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(
        find_binary("prometheus") is None or find_binary("prometheus-alertmanager", "alertmanager") is None,
        reason="prometheus / alertmanager binaries not installed: run scripts/install-tools",
    ),
]

PRICES = yaml.safe_load((Path(__file__).parents[2] / "examples" / "prices.yaml").read_text())["models"]


def _truth(stats: list[dict]) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """USD and tokens per model, from what the simulators served (the canary has no special prices)."""
    dollars: dict[str, float] = {}
    tokens: dict[str, dict[str, int]] = {}
    for snapshot in stats:
        for model, tally in snapshot["models"].items():
            if not tally["prompt_tokens"]:
                continue
            price = PRICES[model]
            cached = tally["cached_tokens"]
            usd = ((tally["prompt_tokens"] - cached) * price["input"] + cached * price["cached_input"]
                   + tally["completion_tokens"] * price["output"]) / 1e6
            dollars[model] = dollars.get(model, 0.0) + usd
            into = tokens.setdefault(model, {"input": 0, "output": 0, "cache_read": 0})
            into["input"] += tally["prompt_tokens"]
            into["output"] += tally["completion_tokens"]
            into["cache_read"] += cached
    return dollars, tokens


def test_demo_report_matches_simulator_truth_and_alert_fires() -> None:
    from otel_llm.cli.demo import run_demo

    result = run_demo(calls=120, budget_daily=0.02)
    assert result.seconds < 120
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

    assert result.alert_fired
    daily = [a for a in result.alerts if a["labels"]["alertname"] == "LLMDailyBudgetSpent"]
    assert {a["labels"]["severity"] for a in daily} >= {"critical"}

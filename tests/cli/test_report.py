from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from otel_llm.cli.report import build_report, exact_query, format_json, format_text


def _labels(model: str, user: str, team: str, key: str, **extra: str) -> dict[str, str]:
    return {"gen_ai_request_model": model, "user_id": user, "otel_llm_team": team,
            "otel_llm_api_key_fingerprint": key, **extra}


RAW = {
    "24h": {
        "cost": [(_labels("gpt-4.1", "alice", "support", "aaaaaaaaaaaa"), 3.0),
                 (_labels("deepseek-v3.2", "bob", "billing", "bbbbbbbbbbbb"), 1.0),
                 (_labels("gpt-4.1", "bob", "billing", "bbbbbbbbbbbb"), 2.0)],
        "tokens": [(_labels("gpt-4.1", "alice", "support", "aaaaaaaaaaaa", gen_ai_token_type="input"), 1000),
                   (_labels("gpt-4.1", "alice", "support", "aaaaaaaaaaaa", gen_ai_token_type="cache_read"), 250),
                   (_labels("gpt-4.1", "alice", "support", "aaaaaaaaaaaa", gen_ai_token_type="output"), 100)],
        "savings": [(_labels("gpt-4.1", "alice", "support", "aaaaaaaaaaaa", otel_llm_cache_kind="prompt"), 0.25)],
    },
}
RAW["month"] = RAW["24h"]
NOW = datetime(2025, 6, 11, 0, 0, tzinfo=timezone.utc)  # 10 of 30 days elapsed


def test_build_report_aggregates_every_dimension() -> None:
    report = build_report(RAW, NOW, budget_daily=5.0, budget_monthly=10.0, top=1)
    day = report["last_24h"]
    assert day["spend_usd"] == 6.0
    assert day["tokens"] == {"cache_read": 250, "input": 1000, "output": 100}
    assert day["cache_hit_ratio"] == 0.25
    assert day["cache_savings_usd"] == 0.25
    assert [(r["name"], r["spend_usd"]) for r in day["by"]["model"]] == [("gpt-4.1", 5.0), ("deepseek-v3.2", 1.0)]
    assert [(r["name"], r["spend_usd"]) for r in day["by"]["user"]] == [("alice", 3.0), ("bob", 3.0)]
    assert [r["name"] for r in day["by"]["api_key"]] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    assert day["top_spenders"] == day["by"]["user"][:1]
    forecast = report["forecast"]
    assert forecast["month_elapsed_ratio"] == pytest.approx(1 / 3)
    assert forecast["projected_month_end_usd"] == pytest.approx(18.0)
    assert forecast["over_monthly_budget"] is True
    assert forecast["daily_budget_ratio"] == pytest.approx(1.2)
    assert forecast["over_daily_budget"] is True


def test_empty_prometheus_gives_zeros_not_errors() -> None:
    report = build_report({}, NOW, None, None)
    assert report["last_24h"]["spend_usd"] == 0
    assert report["last_24h"]["cache_hit_ratio"] is None
    assert "budget" not in format_text(report).lower().split("forecast")[-1]


def test_format_text_and_json() -> None:
    report = build_report(RAW, NOW, budget_daily=5.0, budget_monthly=100.0)
    text = format_text(report)
    assert "spend $6.0000" in text
    assert "cache hit 25.0%" in text
    assert "Top spenders (24h): alice $3.0000, bob $3.0000" in text
    assert "Month-end forecast: $18.00 (33.3% of the month elapsed)" in text
    assert "Monthly budget $100.00: projected at 18%, within budget" in text
    assert "Daily budget $5.0000: 24h spend at 120%, OVER BUDGET" in text
    assert "\033[" not in text
    assert json.loads(format_json(report))["last_24h"]["spend_usd"] == 6.0


def test_exact_query_counts_a_new_series_whole() -> None:
    assert exact_query("m_total", 3600, ["a", "b"]) == (
        "sum by (a, b) ((last_over_time(m_total[3600s]) - last_over_time(m_total[5m] offset 3600s)) >= 0"
        " or last_over_time(m_total[3600s]))"
    )

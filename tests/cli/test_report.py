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
        "savings": [(_labels("gpt-4.1", "alice", "support", "aaaaaaaaaaaa", otel_llm_cache_kind="prompt"), 0.25),
                    (_labels("gpt-4.1", "bob", "billing", "bbbbbbbbbbbb", otel_llm_cache_kind="response"), 0.5),
                    (_labels("deepseek-v3.2", "bob", "billing", "bbbbbbbbbbbb", otel_llm_cache_kind="response"), 0.125)],
        "response_cache": [
            ({"gen_ai_request_model": "gpt-4.1", "otel_llm_response_cache_result": "hit"}, 3),
            ({"gen_ai_request_model": "gpt-4.1", "otel_llm_response_cache_result": "miss"}, 4),
            ({"gen_ai_request_model": "deepseek-v3.2", "otel_llm_response_cache_result": "hit"}, 2),
            ({"gen_ai_request_model": "deepseek-v3.2", "otel_llm_response_cache_result": "error"}, 1),
        ],
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
    assert day["cache_savings_usd"] == 0.25  # the provider's prompt cache only
    assert day["response_cache_requests"] == {"hit": 5, "miss": 4, "error": 1}
    assert day["response_cache_hit_ratio"] == 0.5
    assert day["response_cache_savings_usd"] == 0.625
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
    assert report["last_24h"]["response_cache_hit_ratio"] is None
    assert report["last_24h"]["response_cache_requests"] == {"hit": 0, "miss": 0, "error": 0}
    assert "budget" not in format_text(report).lower().split("forecast")[-1]
    assert "response cache: no lookups (off, or no deterministic requests)" in format_text(report)


def test_format_text_and_json() -> None:
    report = build_report(RAW, NOW, budget_daily=5.0, budget_monthly=100.0)
    text = format_text(report)
    assert "spend $6.0000" in text
    assert "prompt cache: hit 25.0% of input tokens, saved $0.2500" in text
    assert "response cache: hit 50.0% of 10 lookups, saved $0.6250" in text
    assert "Top spenders (24h): alice $3.0000, bob $3.0000" in text
    assert "Month-end forecast: $18.00 (33.3% of the month elapsed)" in text
    assert "Monthly budget $100.00: projected at 18%, within budget" in text
    assert "Daily budget $5.0000: 24h spend at 120%, OVER BUDGET" in text
    assert "\033[" not in text
    day = json.loads(format_json(report))["last_24h"]
    assert day["spend_usd"] == 6.0
    assert (day["response_cache_hit_ratio"], day["response_cache_savings_usd"]) == (0.5, 0.625)


def test_exact_query_counts_a_new_series_whole() -> None:
    assert exact_query("m_total", 3600, ["a", "b"]) == (
        "sum by (a, b) ((last_over_time(m_total[3600s]) - last_over_time(m_total[5m] offset 3600s)) >= 0"
        " or last_over_time(m_total[3600s]))"
    )

"""`otel-llm report --post-webhook URL`: the report's figures in a few lines, posted as a Slack-compatible
incoming-webhook message (`{"text": ...}` with mrkdwn), which Mattermost, Rocket.Chat, Discord's
/slack endpoint and Alertmanager-adjacent relays accept too."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from .report import spend, usd

__all__ = ["DigestError", "digest", "post"]


class DigestError(OSError):
    """The webhook did not take the digest; the message names the status, never the URL's secret path."""


def _flag(forecast: Mapping[str, Any], ratio: str, over: str) -> str:
    if ratio not in forecast:
        return "no budget"
    return f"{forecast[ratio]:.0%} of budget{', *OVER BUDGET*' if forecast[over] else ''}"


def digest(report: Mapping[str, Any]) -> str:
    """Pure: the digest's text, a handful of lines."""
    periods, fc = report["periods"], report["forecast"]
    day, month = report[periods[0]["key"]], report[periods[1]["key"]]
    models = ", ".join(f"{r['name']} {usd(r['spend_usd'])}" for r in day["by"]["model"][:3] if r["spend_usd"])
    users = ", ".join(f"{r['name']} {usd(r['spend_usd'])}" for r in day["by"]["user"][:3] if r["spend_usd"])
    lines = [
        f"*LLM spend {periods[0]['label']}* ({report['timezone']}): {spend(day)} ({_flag(fc, 'daily_budget_ratio', 'over_daily_budget')})",
        f"Month to date {spend(month)}; forecast {usd(fc['projected_month_end_usd'])} "
        f"({_flag(fc, 'projected_budget_ratio', 'over_monthly_budget')})",
        f"Top models: {models or '-'}",
        f"Top users: {users or '-'}",
    ]
    ratio = day["cache_hit_ratio"]
    lines.append(f"Prompt cache {'n/a' if ratio is None else f'{ratio:.0%}'} of input tokens, saved "
                 f"{usd(day['cache_savings_usd'])}; response cache saved {usd(day['response_cache_savings_usd'])}")
    missing = [f"{day[f'{k}_calls']:,.0f} {k} calls" for k in ("unpriced", "unmetered") if day[f"{k}_calls"]]
    if day["unpriced_tool_runs"]:
        missing.append(f"{day['unpriced_tool_runs']:,.0f} tool runs without their fee")
    failed = sum(r["errors"] for r in day["reliability"])
    limited = sum(r["http_429"] for r in day["reliability"])
    if missing or failed or limited:
        lines.append("Watch: " + ", ".join([*missing, f"{failed:,.0f} failed calls", f"{limited:,.0f} HTTP 429"]))
    return "\n".join(lines)


def post(url: str, text: str, timeout: float = 10.0) -> None:
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DigestError(f"the webhook refused the digest: HTTP {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise DigestError(f"cannot post the digest to the webhook: {getattr(exc, 'reason', exc)}") from exc
    if not 200 <= status < 300:
        raise DigestError(f"the webhook refused the digest: HTTP {status}")

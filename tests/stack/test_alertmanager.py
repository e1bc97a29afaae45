"""Alertmanager: the template renders to valid configs, routes by severity, groups one notification
per budget, and critical inhibits warning/info of the same budget (checked on a real Alertmanager)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from stackservers import Alertmanager, WebhookReceiver, wait_until

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = (REPO / "alertmanager/alertmanager.yml.tmpl").read_text()
ALL_ENV = {"ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/C",
           "PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef"}


def load_render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("am_render", REPO / "alertmanager/render.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


render = load_render()


def test_committed_example_is_a_fresh_render() -> None:
    assert (REPO / "alertmanager/alertmanager.yml").read_text() == render.EXAMPLE_HEADER + render.render(TEMPLATE, {})


def test_receivers_hold_exactly_the_configured_integrations() -> None:
    def integrations(env: dict[str, str]) -> dict[str, list[str]]:
        config = yaml.safe_load(render.render(TEMPLATE, env))
        return {r["name"]: sorted(k for k in r if k.endswith("_configs")) for r in config["receivers"]}

    assert integrations({}) == {"critical": [], "warning": [], "info": [], "deadman": []}
    assert integrations(ALL_ENV) == {
        "critical": ["pagerduty_configs", "slack_configs", "webhook_configs"],
        "warning": ["slack_configs", "webhook_configs"],
        "info": [],
        "deadman": [],
    }
    only_slack = integrations({"SLACK_WEBHOOK_URL": ALL_ENV["SLACK_WEBHOOK_URL"]})
    assert only_slack == {"critical": ["slack_configs"], "warning": ["slack_configs"], "info": [], "deadman": []}


def test_values_are_quoted_so_they_cannot_inject_yaml() -> None:
    hostile = "http://127.0.0.1:9/x\"\nglobal: {}\n#"
    config = yaml.safe_load(render.render(TEMPLATE, {"ALERT_WEBHOOK_URL": hostile}))
    assert config["receivers"][0]["webhook_configs"][0]["url"] == hostile


def test_unbalanced_blocks_and_missing_variables_are_errors() -> None:
    with pytest.raises(render.RenderError, match="never closed"):
        render.render("# if A\nx: 1\n", {})
    with pytest.raises(render.RenderError, match="MISSING is required"):
        render.render("x: ${MISSING}\n", {})


@pytest.mark.prometheus
@pytest.mark.parametrize("env", [{}, ALL_ENV, {"ALERT_WEBHOOK_URL": ALL_ENV["ALERT_WEBHOOK_URL"]}],
                         ids=["none", "all", "webhook-only"])
def test_amtool_accepts_every_render(amtool: str, tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(render.render(TEMPLATE, env))
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
@pytest.mark.parametrize(("labels", "receiver"), [
    (["alertname=LLMDailyBudgetSpent", "severity=critical", "budget=daily", "scope=global"], "critical"),
    (["alertname=LLMDailyBudgetSpent", "severity=warning", "budget=daily", "scope=user", "holder=alice"], "warning"),
    (["alertname=LLMDailyBudgetSpent", "severity=info", "budget=daily", "scope=global"], "info"),
    (["alertname=LLMAPIKeyUnauthorized", "severity=critical", "otel_llm_api_key_fingerprint=0123456789ab"],
     "critical"),
    (["alertname=LLMErrorRateHigh", "severity=warning"], "warning"),
    (["alertname=Unlabelled"], "warning"),
])
def test_routes_by_severity(amtool: str, tmp_path: Path, labels: list[str], receiver: str) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(render.render(TEMPLATE, ALL_ENV))
    result = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}",
                             f"--verify.receivers={receiver}", *labels], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def fast(config_text: str) -> str:
    """The same routing, inhibition and grouping, with waits short enough for a test."""
    config = yaml.safe_load(config_text)
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="2s")
    return str(yaml.safe_dump(config))


def budget_alert(holder: str, severity: str) -> dict[str, Any]:
    return {"labels": {"alertname": "LLMDailyBudgetSpent", "budget": "daily", "scope": "user",
                       "user_id": holder, "holder": holder, "severity": severity},
            "annotations": {"summary": f"{holder} {severity}"}}


@pytest.mark.prometheus
def test_one_notification_per_budget_and_critical_inhibits_lower_levels(
    start_alertmanager: Callable[[str], Alertmanager], webhook: WebhookReceiver
) -> None:
    am = start_alertmanager(fast(render.render(TEMPLATE, {"ALERT_WEBHOOK_URL": webhook.url})))
    am.post_alerts([budget_alert("alice", s) for s in ("critical", "warning", "info")]
                   + [budget_alert("bob", "warning"), budget_alert("bob", "info")])

    def settled() -> bool:
        return {(a["labels"]["holder"], a["labels"]["severity"]) for a in webhook.alerts()} >= {
            ("alice", "critical"), ("bob", "warning")}

    wait_until(settled, timeout=30, what="notifications for alice (critical) and bob (warning)")
    inhibited = {(a["labels"]["holder"], a["labels"]["severity"]) for a in am.alerts()
                 if a["status"]["inhibitedBy"]}
    assert inhibited == {("alice", "warning"), ("alice", "info"), ("bob", "info")}
    notified = [(a["labels"]["holder"], a["labels"]["severity"]) for a in webhook.alerts()]
    assert sorted(set(notified)) == [("alice", "critical"), ("bob", "warning")]
    # Grouped by budget: each notification carries exactly one budget holder.
    assert all(len({a["labels"]["holder"] for a in body["alerts"]}) == 1 for body in webhook.snapshot())


def alert(alertname: str, severity: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": alertname, "severity": severity, **labels},
            "annotations": {"summary": f"{alertname} {severity}"}}


@pytest.mark.prometheus
def test_inhibition_stays_within_an_alert_name_and_a_401_mutes_its_error_rate(
    start_alertmanager: Callable[[str], Alertmanager], webhook: WebhookReceiver
) -> None:
    """Issue 17.3: a burn-rate critical must not mute the monthly 80% or the projected overrun of the
    same budget; a rejected key (401, critical) mutes the error-rate warning of its provider."""
    am = start_alertmanager(fast(render.render(TEMPLATE, {"ALERT_WEBHOOK_URL": webhook.url})))
    monthly = {"budget": "monthly", "scope": "global"}
    am.post_alerts([
        alert("LLMMonthlyBudgetBurnRate", "critical", **monthly),
        alert("LLMMonthlyBudgetSpent", "warning", **monthly),
        alert("LLMMonthlyBudgetProjectedOverrun", "warning", **monthly),
        alert("LLMAPIKeyUnauthorized", "critical", otel_llm_api_key_fingerprint="0123456789ab",
              gen_ai_provider_name="openai", server_address="api.openai.com"),
        alert("LLMErrorRateHigh", "warning", gen_ai_provider_name="openai", gen_ai_request_model="gpt-4.1"),
    ])
    expected = {"LLMMonthlyBudgetBurnRate", "LLMMonthlyBudgetSpent", "LLMMonthlyBudgetProjectedOverrun",
                "LLMAPIKeyUnauthorized"}
    wait_until(lambda: {a["labels"]["alertname"] for a in webhook.alerts()} >= expected, timeout=30,
               what="the burn rate, the monthly 80%, the projection and the 401 at the webhook")
    inhibited = {a["labels"]["alertname"] for a in am.alerts() if a["status"]["inhibitedBy"]}
    assert inhibited == {"LLMErrorRateHigh"}


@pytest.mark.prometheus
@pytest.mark.parametrize(("labels", "receiver"), [
    (["alertname=LLMDailyBudgetSpent", "severity=info", "budget=daily", "scope=global"], "info"),
    (["alertname=Watchdog", "severity=none"], "deadman"),
])
def test_info_and_watchdog_have_their_own_receivers(amtool: str, tmp_path: Path, labels: list[str],
                                                     receiver: str) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(render.render(TEMPLATE, {**ALL_ENV, "DEADMAN_WEBHOOK_URL": "http://127.0.0.1:9/ping"}))
    result = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}",
                             f"--verify.receivers={receiver}", *labels], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_generic_webhook_gets_no_info_and_the_watchdog_only_the_deadman_switch() -> None:
    """Issue 17.3: an incident tool behind ALERT_WEBHOOK_URL must not page at 3 am for a 50% notice."""
    env = {**ALL_ENV, "INFO_WEBHOOK_URL": "http://127.0.0.1:9/chat", "DEADMAN_WEBHOOK_URL": "http://127.0.0.1:9/ping"}
    config = yaml.safe_load(render.render(TEMPLATE, env))
    urls = {r["name"]: [w["url"] for w in r.get("webhook_configs", [])] for r in config["receivers"]}
    assert urls["info"] == [env["INFO_WEBHOOK_URL"]]
    assert urls["deadman"] == [env["DEADMAN_WEBHOOK_URL"]]
    assert env["ALERT_WEBHOOK_URL"] not in urls["info"] + urls["deadman"]


def test_runbook_links_are_absolute_under_a_configured_base_url() -> None:
    """Issue 17.10: `runbook_url` is a repository path; notifications prefix RUNBOOK_BASE_URL so the
    link opens from a pager or chat."""
    base = "https://git.example.com/otel-llm/blob/main/"
    config = yaml.safe_load(render.render(TEMPLATE, {**ALL_ENV, "RUNBOOK_BASE_URL": base}))
    critical = next(r for r in config["receivers"] if r["name"] == "critical")
    link = base + "{{ .CommonAnnotations.runbook_url }}"
    assert critical["pagerduty_configs"][0]["links"][0]["href"] == link
    assert critical["slack_configs"][0]["text"].endswith("Runbook: " + link)
    # Unset: the path as the alert gives it, as before.
    config = yaml.safe_load(render.render(TEMPLATE, ALL_ENV))
    critical = next(r for r in config["receivers"] if r["name"] == "critical")
    assert critical["pagerduty_configs"][0]["links"][0]["href"] == "{{ .CommonAnnotations.runbook_url }}"


@pytest.mark.parametrize("bad", ["https://x/'\nglobal: {}", "javascript:alert(1)", "https://x/ y"])
def test_a_base_url_that_could_break_the_yaml_is_refused(bad: str) -> None:
    with pytest.raises(render.RenderError, match="RUNBOOK_BASE_URL"):
        render.render(TEMPLATE, {"RUNBOOK_BASE_URL": bad})

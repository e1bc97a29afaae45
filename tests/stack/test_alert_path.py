"""End to end on real binaries: a scraped cost counter -> the exact rules -> a budget alert in
Prometheus -> Alertmanager -> the webhook. The rule files are the shipped ones with their 1m group
interval shortened, so the path runs in seconds (the figures' exactness is the promtool tests' job)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stackservers import Alertmanager, Prometheus, WebhookReceiver, fixed_answer, wait_until

REPO = Path(__file__).resolve().parents[2]
EXPOSITION = (
    "# TYPE otel_llm_cost_USD_total counter\n"
    'otel_llm_cost_USD_total{user_id="alice",gen_ai_request_model="gpt-4.1"} 6.0\n'
)


@pytest.fixture
def app_target() -> Iterator[str]:
    """A loopback /metrics endpoint standing in for an instrumented app: alice spent $6."""
    with fixed_answer(EXPOSITION.encode(), content_type="text/plain; version=0.0.4") as root:
        yield root.removeprefix("http://")


def fast_rules(tmp_path: Path) -> list[Path]:
    out = []
    sources = [*(REPO / "prometheus/rules").glob("cost*.yml"), REPO / "prometheus/tests/budgets.fixture.rules.yml"]
    for source in sources:
        target = tmp_path / source.name
        target.write_text(re.sub(r"interval: 1m", "interval: 2s", source.read_text()))
        out.append(target)
    return out


@pytest.mark.prometheus
def test_budget_breach_reaches_the_webhook(
    tmp_path: Path, app_target: str, webhook: WebhookReceiver,
    start_prometheus: Callable[..., Prometheus], start_alertmanager: Callable[[str], Alertmanager],
) -> None:
    import test_alertmanager as am_tests  # the same render and fast-routing helpers

    am = start_alertmanager(am_tests.fast(am_tests.render.render(am_tests.TEMPLATE, {"ALERT_WEBHOOK_URL": webhook.url})))
    prometheus = start_prometheus(rule_files=fast_rules(tmp_path), scrape_targets=[app_target],
                                  alertmanager_url=am.url)

    def alice_figure() -> bool:
        result = prometheus.query('scope:otel_llm_cost_usd:sum24h{scope="user",user_id="alice"}')["result"]
        return bool(result) and float(result[0]["value"][1]) == 6.0

    wait_until(alice_figure, timeout=60, what="alice's exact 24h figure of $6 (first scrape counted)")

    def paged() -> bool:
        return any(a["labels"].get("holder") == "alice" and a["labels"]["severity"] == "critical"
                   and a["status"] == "firing" for a in webhook.alerts())

    wait_until(paged, timeout=60, what="the critical daily-budget page for alice at the webhook")
    # Inhibition: alice's info and warning never reach the webhook.
    assert {a["labels"]["severity"] for a in webhook.alerts() if a["labels"].get("holder") == "alice"} == {"critical"}


def fast_meta_rules(tmp_path: Path) -> list[Path]:
    """meta.alerts.yml with a 2s group interval and `for` of 2s: the same expressions and routing."""
    source = REPO / "prometheus/rules/meta.alerts.yml"
    text = re.sub(r"interval: 1m", "interval: 2s", source.read_text())
    target = tmp_path / source.name
    target.write_text(re.sub(r"for: \d+m", "for: 2s", text))
    return [target]


@pytest.mark.prometheus
def test_watchdog_reaches_the_deadman_switch_and_a_target_down_the_warning_receiver(
    tmp_path: Path, webhook: WebhookReceiver,
    start_prometheus: Callable[..., Prometheus], start_alertmanager: Callable[[str], Alertmanager],
) -> None:
    """Issue 17.5 end to end: the always-firing Watchdog arrives at the dead-man's switch (and only
    there), a scrape target nobody listens on raises LLMTargetDown at the warning receiver."""
    import test_alertmanager as am_tests
    from stackservers import free_port

    env = {"ALERT_WEBHOOK_URL": webhook.url, "DEADMAN_WEBHOOK_URL": webhook.url}
    am = start_alertmanager(am_tests.fast(am_tests.render.render(am_tests.TEMPLATE, env)))
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    # A firing alert is re-sent every resend-delay (1m by default): the Watchdog fires at the first
    # evaluation, possibly before Prometheus has its Alertmanager, so shorten it like the intervals.
    start_prometheus(rule_files=fast_meta_rules(tmp_path), scrape_targets=[dead], alertmanager_url=am.url,
                     extra_args=["--rules.alert.resend-delay=2s"])

    def received(receiver: str, alertname: str) -> bool:
        return any(body.get("receiver") == receiver and a["labels"]["alertname"] == alertname
                   and a["status"] == "firing" for body in webhook.snapshot() for a in body["alerts"])

    wait_until(lambda: received("deadman", "Watchdog"), timeout=60, what="the Watchdog at the dead-man's switch")
    wait_until(lambda: received("warning", "LLMTargetDown"), timeout=60, what="LLMTargetDown at the warning receiver")
    down = [a for a in webhook.alerts() if a["labels"]["alertname"] == "LLMTargetDown"]
    assert {a["labels"]["instance"] for a in down} == {dead}
    # The Watchdog never reaches the incident tool's receivers.
    assert all(a["labels"]["alertname"] != "Watchdog" for body in webhook.snapshot()
               if body.get("receiver") != "deadman" for a in body["alerts"])

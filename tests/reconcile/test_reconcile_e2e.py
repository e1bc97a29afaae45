"""The proof: the simulator serves traffic, a known share of it bypasses our instrumentation, our
telemetry goes to a real Prometheus, and `otel-llm reconcile` finds exactly that share against the
simulator's organization Costs and Usage APIs, per day and model."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_llm import OpenAIInstrumentor
from otel_llm.cli import reconcile
from otel_llm.simulator import Simulator, SimulatorConfig
from otel_llm.simulator.billing import PRICES, api_key_id

sys.path.insert(0, str(Path(__file__).parents[1] / "stack"))
from stackservers import free_port, running_prometheus, tool, wait_until

REPO = Path(__file__).parents[2]
ADMIN = "sk-admin-reconcile-test"
SYSTEM = "You are a support assistant for an online shop. Answer briefly and politely, in English. " * 4


@pytest.fixture
def metrics_endpoint() -> Iterator[tuple[MeterProvider, str]]:
    """Our telemetry's metrics on a real Prometheus exposition endpoint, as `opentelemetry-instrument`
    with OTEL_METRICS_EXPORTER=prometheus serves them."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    reader = PrometheusMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    try:
        yield provider, f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        provider.shutdown()


def _usd(model: str, usage: dict[str, Any]) -> float:
    price_in, price_cached, price_out = PRICES[model]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return ((usage["prompt_tokens"] - cached) * price_in + cached * price_cached
            + usage["completion_tokens"] * price_out) / 1e6


def _raw_call(sim: Simulator, model: str, text: str) -> dict[str, Any]:
    """A call that never goes through the (instrumented) openai SDK: a service we did not instrument."""
    body = json.dumps({"model": model, "messages": [{"role": "system", "content": SYSTEM},
                                                    {"role": "user", "content": text}]}).encode()
    request = urllib.request.Request(f"{sim.base_url}/chat/completions", body, method="POST", headers={
        "Authorization": "Bearer sk-other-service", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read())["usage"])


def _stats_usd(stats: dict[str, Any], model: str) -> float:
    """What the simulator served of a model, priced with its own table: from its stats, not its bill."""
    tally = stats["models"][model]
    return _usd(model, {"prompt_tokens": tally["prompt_tokens"], "completion_tokens": tally["completion_tokens"],
                        "prompt_tokens_details": {"cached_tokens": tally["cached_tokens"]}})


@pytest.mark.prometheus
@pytest.mark.skipif(tool("prometheus") is None, reason="prometheus not installed: run scripts/install-tools")
@pytest.mark.parametrize("scenario", ["uninstrumented", "priced_wrong", "stream_without_usage"])
def test_reconcile_finds_the_known_share(
    scenario: str, tmp_path: Path, metrics_endpoint: tuple[MeterProvider, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """uninstrumented: 6 gpt-4.1 calls from a service without otel_llm. priced_wrong: our prices file
    has gpt-4.1 10% under the bill. stream_without_usage: every gemini call streams without usage
    (usage asking turned off: OTEL_LLM_INCLUDE_STREAM_USAGE=never, as for a server that rejects it)."""
    meter_provider, target = metrics_endpoint
    prices = yaml.safe_load((REPO / "examples" / "prices.yaml").read_text())
    if scenario == "priced_wrong":
        prices["models"]["gpt-4.1"] = {"input": 1.80, "cached_input": 0.90, "output": 7.20}
    prices_path = tmp_path / "prices.yaml"
    prices_path.write_text(yaml.safe_dump(prices), encoding="utf-8")
    instrumentor = OpenAIInstrumentor()
    with Simulator(config=SimulatorConfig(latency_scale=0.0)) as sim, \
            running_prometheus(tmp_path, scrape_targets=[target]) as prometheus:
        usage = "never" if scenario == "stream_without_usage" else "auto"
        instrumentor.instrument(tracer_provider=TracerProvider(), meter_provider=meter_provider,
                                prices=str(prices_path), include_stream_usage=usage)
        try:
            client = openai.OpenAI(base_url=sim.base_url, api_key="sk-app", max_retries=0)
            for i in range(24):
                model = ("gpt-4.1", "deepseek-v3.2", "gemini-2.5-flash")[i % 3]
                messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"order {i}?"}]
                if scenario == "stream_without_usage" and model == "gemini-2.5-flash":
                    for _ in client.chat.completions.create(model=model, messages=messages, stream=True):
                        pass
                else:
                    client.chat.completions.create(model=model, messages=messages)
            missing = 0.0
            if scenario == "uninstrumented":
                missing = sum(_usd("gpt-4.1", _raw_call(sim, "gpt-4.1", f"refund {i}?")) for i in range(6))
            elif scenario == "priced_wrong":
                missing = 0.1 * _stats_usd(sim.stats(), "gpt-4.1")
            else:
                missing = _stats_usd(sim.stats(), "gemini-2.5-flash")
            wait_until(lambda: _scraped_calls(prometheus.query) >= 24, 30, "Prometheus to scrape every call")
            time.sleep(2.5)  # two more scrapes: every counter of the last call is in
        finally:
            instrumentor.uninstrument()
        monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN)
        argv = ["--base-url", sim.base_url, "--prometheus", prometheus.url, "--include-today", "--settle", "0",
                "--days", "2"]
        assert reconcile.main(argv) == 0
        text = capsys.readouterr().out
        code = reconcile.main([*argv, "--json"])
        out, err = capsys.readouterr()
    assert code == 0, err
    assert ADMIN not in out + err + text
    result = json.loads(out)
    summary = result["summary"]
    billed = summary["billed_cost_usd"]
    assert missing > 0 and billed > missing
    # The share reconcile finds is the share the telemetry missed, within 0.1%.
    assert summary["difference_usd"] == pytest.approx(missing, rel=1e-3)
    assert 1 - summary["explained_share"] == pytest.approx(missing / billed, rel=1e-3)
    assert f"recorded spend explains {summary['explained_share']:.1%} of the billed spend" in text
    rows = {row["model"]: row for row in result["rows"]}
    today = result["days"][-1]
    assert {row["date"] for row in result["rows"]} == {today}  # yesterday: nothing served, no row
    assert set(rows) == {"gpt-4.1", "deepseek-v3.2", "gemini-2.5-flash"}
    culprit, expected = {"uninstrumented": ("gpt-4.1", {"tokens_missing"}),
                         "priced_wrong": ("gpt-4.1", {"prices"}),
                         "stream_without_usage": ("gemini-2.5-flash", {"tokens_missing", "not_recorded"})}[scenario]
    assert rows[culprit]["cause"] in expected, rows[culprit]
    assert rows[culprit]["difference_usd"] == pytest.approx(missing, rel=1e-3)
    for model in set(rows) - {culprit}:
        assert rows[model]["cause"] == "ok", rows[model]
    assert summary["largest_differences"][0]["model"] == culprit
    if scenario == "uninstrumented":
        # Who sent it: the bill's own API key ids; the other service's requests are there.
        keys = {row["api_key"]: row for row in result["billed_by_api_key"]}
        assert set(keys) == {api_key_id("sk-app"), api_key_id("sk-other-service")}
        assert keys[api_key_id("sk-other-service")]["requests"] == 6


def _scraped_calls(query: Any) -> float:
    result = query("sum(otel_llm_calls_total)")["result"]
    return float(result[0]["value"][1]) if result else 0.0


@pytest.mark.prometheus
@pytest.mark.skipif(tool("prometheus") is None, reason="prometheus not installed: run scripts/install-tools")
def test_alert_fires_when_a_worker_runs_uninstrumented(
    tmp_path: Path, metrics_endpoint: tuple[MeterProvider, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exporter mode publishes the bill, Prometheus scrapes it beside our telemetry, and the shipped
    LLMSpendNotReconciled rule (its `for` shortened) fires for today when a third of the spend bypasses
    the instrumentation."""
    from otel_llm.cli.billing.exporter import Exporter

    meter_provider, target = metrics_endpoint
    rules = yaml.safe_load((REPO / "prometheus/rules/reconcile.alerts.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "0s"
    rules_path = tmp_path / "reconcile.alerts.yml"
    rules_path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN)
    urls: dict[str, str] = {}

    def fetch() -> tuple[list[Any], Any]:
        args = reconcile.build_parser().parse_args([
            "--base-url", urls["sim"], "--prometheus", urls["prometheus"], "--include-today", "--settle", "0",
            "--days", "1"])
        _, span, rows = reconcile.reconcile(args, datetime.now(timezone.utc))
        return rows, span.settled

    instrumentor = OpenAIInstrumentor()
    exporter = Exporter("openai", fetch, "127.0.0.1", 0, 3600).start()
    try:
        with Simulator(config=SimulatorConfig(latency_scale=0.0)) as sim, running_prometheus(
                tmp_path, rule_files=[rules_path], scrape_targets=[target, f"127.0.0.1:{exporter.port}"]) as prometheus:
            urls.update(sim=sim.base_url, prometheus=prometheus.url)
            instrumentor.instrument(tracer_provider=TracerProvider(), meter_provider=meter_provider,
                                    prices=str(REPO / "examples" / "prices.yaml"))
            try:
                client = openai.OpenAI(base_url=sim.base_url, api_key="sk-app", max_retries=0)
                for i in range(8):
                    client.chat.completions.create(model="gpt-4.1", messages=[
                        {"role": "system", "content": SYSTEM}, {"role": "user", "content": f"order {i}?"}])
                for i in range(4):  # the uninstrumented worker
                    _raw_call(sim, "gpt-4.1", f"refund {i}?")
                wait_until(lambda: _scraped_calls(prometheus.query) >= 8, 30, "Prometheus to scrape every call")
                time.sleep(2.5)
            finally:
                instrumentor.uninstrument()
            exporter.refresh()
            today = datetime.now(timezone.utc).strftime("%Y-%m-%d")

            def firing() -> list[dict[str, Any]]:
                return [a for a in prometheus.alerts()
                        if a["labels"].get("alertname") == "LLMSpendNotReconciled" and a["state"] == "firing"]

            wait_until(lambda: bool(firing()), 30, "LLMSpendNotReconciled to fire")
            [alert] = firing()
            up = prometheus.query('otel_llm_billing_up{provider="openai"}')["result"]
    finally:
        exporter.stop()
    assert alert["labels"]["date"] == today and alert["labels"]["provider"] == "openai"
    assert 0.5 < float(alert["value"]) < 0.8  # 8 of 12 similar calls recorded
    assert alert["annotations"]["runbook_url"] == "docs/runbook.md#llmspendnotreconciled"
    assert [float(r["value"][1]) for r in up] == [1.0]

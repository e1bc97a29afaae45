"""`otel-llm reconcile --demo`: one worker runs without otel_llm, and the bill says so.

A simulator serves an instrumented app and a worker nobody instrumented (plain HTTP); our telemetry
and the exporter mode's gauges go to a real Prometheus with the project's LLMSpendNotReconciled rule
(its `for` cut to 0 s and its interval to 1 s, so it fires in seconds); the demo waits for the alert,
then prints the reconciliation table and the alert. Everything it starts it stops.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import yaml

from ...simulator import Simulator, SimulatorConfig
from ..procs import Child, find_binary, free_port, http_ok, wait_until
from . import BillingError
from .compare import Row, summarise
from .exporter import Exporter

__all__ = ["DriftDemo", "run"]

ROOT: Final = Path(__file__).resolve().parents[3]
ALERT: Final = "LLMSpendNotReconciled"
ADMIN_KEY: Final = "sk-admin-demo"
MODELS: Final = ("gpt-4.1", "deepseek-v3.2", "gemini-2.5-flash")
SYSTEM: Final = "You are a support assistant for an online shop. Answer briefly and politely. " * 4


@dataclass
class DriftDemo:
    rows: list[Row]
    summary: dict[str, Any]
    alert: dict[str, Any] | None
    uninstrumented_usd: float


def run(calls: int = 30, uninstrumented: int = 10, timeout: float = 60.0) -> DriftDemo:
    """Serve `calls` instrumented calls and `uninstrumented` plain ones; wait for the alert."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import start_http_server

    from ... import OpenAIInstrumentor
    from .. import reconcile

    binary = find_binary("prometheus")
    if binary is None:
        raise BillingError("prometheus is not installed: run scripts/install-tools")
    workdir = Path(tempfile.mkdtemp(prefix="otel-llm-reconcile-demo-"))
    stops: list[Any] = []
    urls: dict[str, str] = {}

    def fetch() -> tuple[list[Row], datetime]:
        args = reconcile.build_parser().parse_args(["--base-url", urls["sim"], "--prometheus", urls["prometheus"],
                                                    "--include-today", "--settle", "0", "--days", "1"])
        args.admin_key = ADMIN_KEY
        _, span, rows = reconcile.reconcile(args, datetime.now(timezone.utc))
        assert span.settled is not None
        return rows, span.settled

    reader = PrometheusMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor = OpenAIInstrumentor()
    try:
        sim = Simulator(config=SimulatorConfig(latency_scale=0.0)).start()
        stops.append(sim.stop)
        app_port = free_port()
        server, _ = start_http_server(app_port, addr="127.0.0.1")
        stops += [server.server_close, server.shutdown, meter_provider.shutdown]
        exporter = Exporter("openai", fetch, "127.0.0.1", 0, 3600).start()
        stops.append(exporter.stop)
        prometheus = _prometheus(binary, workdir, [f"127.0.0.1:{app_port}", f"127.0.0.1:{exporter.port}"])
        stops.append(prometheus[0].stop)
        urls.update(sim=sim.base_url, prometheus=prometheus[1])

        instrumentor.instrument(tracer_provider=TracerProvider(), meter_provider=meter_provider,
                                prices=str(ROOT / "examples" / "prices.yaml"))
        stops.append(instrumentor.uninstrument)
        _instrumented_app(sim.base_url, calls)
        missing = sum(_worker_call(sim.base_url, i) for i in range(uninstrumented))
        if not wait_until(lambda: _scraped(prometheus[1]) >= calls, 30):
            raise BillingError("Prometheus did not scrape the app's calls within 30s")
        time.sleep(2.5)  # two more scrapes: every counter of the last call is in
        exporter.refresh()
        wait_until(lambda: _firing(prometheus[1]) is not None, timeout, interval=0.5)
        rows, _ = fetch()
        return DriftDemo(rows, summarise(rows), _firing(prometheus[1]), missing)
    finally:
        for stop in reversed(stops):
            try:
                stop()
            except Exception as exc:
                print(f"otel-llm reconcile --demo: while stopping: {exc}")
        shutil.rmtree(workdir, ignore_errors=True)  # its Prometheus' config and data, stopped above


def _instrumented_app(base_url: str, calls: int) -> None:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="sk-app", max_retries=0)
    for i in range(calls):
        client.chat.completions.create(model=MODELS[i % len(MODELS)], messages=[
            {"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Where is order {i}?"}])


def _worker_call(base_url: str, i: int) -> float:
    """The nightly summarising worker nobody instrumented: plain HTTP, gpt-4.1. Returns its USD at the
    simulator's prices (from the usage it was answered)."""
    from ...simulator.billing import price_of

    body = json.dumps({"model": "gpt-4.1", "messages": [{"role": "system", "content": SYSTEM},
                                                       {"role": "user", "content": f"Summarise ticket {i}."}]})
    request = urllib.request.Request(f"{base_url}/chat/completions", body.encode(), method="POST", headers={
        "Authorization": "Bearer sk-worker", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        usage = json.loads(response.read())["usage"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    price_in, price_cached, price_out = price_of("gpt-4.1")
    return float((usage["prompt_tokens"] - cached) * price_in + cached * price_cached
                 + usage["completion_tokens"] * price_out) / 1e6


def _prometheus(binary: str, workdir: Path, targets: list[str]) -> tuple[Child, str]:
    rules = yaml.safe_load((ROOT / "prometheus" / "rules" / "reconcile.alerts.yml").read_text(encoding="utf-8"))
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "0s"
    (workdir / "reconcile.alerts.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(workdir / "reconcile.alerts.yml")],
              "scrape_configs": [{"job_name": "otel-llm-reconcile-demo", "static_configs": [{"targets": targets}]}]}
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    child = Child("prometheus", [binary, f"--config.file={workdir / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                                 "--log.level=warn"], workdir / "prometheus.log")
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: http_ok(f"{url}/-/ready") or not child.alive(), 30) or not child.alive():
        child.stop()
        raise BillingError(f"prometheus did not start: {child.log_tail(3)}")
    return child, url


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _scraped(prometheus: str) -> float:
    try:
        result = _get(f"{prometheus}/api/v1/query?query=sum(otel_llm_calls_total)")["data"]["result"]
    except (OSError, ValueError, KeyError):
        return -1
    return float(result[0]["value"][1]) if result else 0.0


def _firing(prometheus: str) -> dict[str, Any] | None:
    try:
        alerts = _get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    except (OSError, ValueError, KeyError):
        return None
    return next((a for a in alerts if a["labels"].get("alertname") == ALERT and a["state"] == "firing"), None)

"""Prometheus, Alertmanager and a webhook receiver for the demo, all on free loopback ports in one
temporary directory. Product code: `otel-llm demo` uses it, and so do the end-to-end tests."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from .assets import asset
from .budget_rules import Budget, render_rules
from .procs import Child, find_binary, free_port, http_ok, wait_until

log = logging.getLogger(__name__)

__all__ = [
    "RULE_INTERVAL",
    "MissingBinary",
    "Webhook",
    "prometheus_config",
    "start_alertmanager",
    "start_prometheus",
    "write_demo_rules",
]

# The shipped rule groups evaluate every minute; the demo runs them every 5s so that an alert can
# fire within seconds. The exact-spend rules telescope over whatever interval they run at, so the
# figures stay exact; only the "1m" in the delta's name becomes a misnomer inside the demo.
RULE_INTERVAL = "5s"
_INTERVAL = re.compile(r"^(\s*interval:\s*)\S+", re.MULTILINE)


class MissingBinary(RuntimeError):
    """Prometheus or Alertmanager is not installed."""


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A sender that went away (Alertmanager closing a keep-alive connection) is no error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("webhook client %s went away", client_address)
            return
        log.exception("webhook: error while serving %s", client_address)


@dataclass
class Webhook:
    """A tiny HTTP server that records what Alertmanager posts (one JSON payload per request)."""

    payloads: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        payloads = self.payloads

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    payloads.append(json.loads(body))
                except ValueError:
                    pass
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def alerts(self) -> list[dict[str, Any]]:
        return [alert for payload in list(self.payloads) for alert in payload.get("alerts", [])]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def write_demo_rules(directory: Path, daily_usd: float, monthly_usd: float,
                     source: Path | None = None) -> list[Path]:
    """Copy the project's rule files with RULE_INTERVAL, and render the demo's own budgets file."""
    source = source or asset("prometheus/rules")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.glob("*.yml")):
        if path.name == "budgets.generated.yml":
            continue
        target = directory / path.name
        target.write_text(_INTERVAL.sub(rf"\g<1>{RULE_INTERVAL}", path.read_text(encoding="utf-8")),
                          encoding="utf-8")
        written.append(target)
    budgets = (Budget("global", "", "daily", daily_usd), Budget("global", "", "monthly", monthly_usd))
    text = render_rules(budgets, "otel-llm demo --budget-daily")
    target = directory / "budgets.demo.yml"
    target.write_text(_INTERVAL.sub(rf"\g<1>{RULE_INTERVAL}", text), encoding="utf-8")
    written.append(target)
    return written


def prometheus_config(scrape_target: str, alertmanager: str | None, rule_files: list[Path]) -> str:
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": RULE_INTERVAL},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{
            "job_name": "otel-llm-demo",
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "static_configs": [{"targets": [scrape_target]}],
        }],
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return str(yaml.safe_dump(config, sort_keys=False))


def start_prometheus(workdir: Path, scrape_target: str, alertmanager: str | None,
                     rule_files: list[Path]) -> tuple[Child, str]:
    binary = find_binary("prometheus")
    if binary is None:
        raise MissingBinary("prometheus")
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(prometheus_config(scrape_target, alertmanager, rule_files), encoding="utf-8")
    child = Child("prometheus", [
        binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        "--storage.tsdb.retention.time=45d",  # as compose.yaml: a month to date is read whole (report)
    ], workdir / "prometheus.log")
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: http_ok(f"{url}/-/ready") or not child.alive(), 30) or not child.alive():
        raise RuntimeError(f"prometheus did not start:\n{child.log_tail()}")
    return child, url


def start_alertmanager(workdir: Path, webhook_url: str) -> tuple[Child, str]:
    binary = find_binary("prometheus-alertmanager", "alertmanager")
    if binary is None:
        raise MissingBinary("prometheus-alertmanager")
    port = free_port()
    config = workdir / "alertmanager.yml"
    config.write_text(yaml.safe_dump({
        "route": {
            "receiver": "demo-webhook",
            "group_by": ["alertname", "budget", "scope", "severity"],
            "group_wait": "1s", "group_interval": "5s", "repeat_interval": "1h",
        },
        "receivers": [{"name": "demo-webhook",
                       "webhook_configs": [{"url": webhook_url, "send_resolved": False}]}],
    }, sort_keys=False), encoding="utf-8")
    child = Child("alertmanager", [
        binary, f"--config.file={config}", f"--storage.path={workdir / 'am'}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn",
    ], workdir / "alertmanager.log")
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: http_ok(f"{url}/-/ready") or not child.alive(), 30) or not child.alive():
        raise RuntimeError(f"alertmanager did not start:\n{child.log_tail()}")
    return child, url

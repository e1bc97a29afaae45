"""Start and stop the real Prometheus and Alertmanager binaries, and a webhook receiver, on loopback.

Kept apart from conftest.py so that other suites (the end-to-end test with the instrumented app)
can import the same helpers; conftest.py only wraps them in fixtures. Every process gets a free
127.0.0.1 port and a temporary data directory, and is stopped by its own PID.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import yaml

__all__ = [
    "Alertmanager", "Prometheus", "WebhookReceiver", "free_port", "http_json", "running_alertmanager",
    "running_prometheus", "tool", "wait_until",
]

ALERTMANAGER_BINARIES: Final = ("prometheus-alertmanager", "alertmanager")


def tool(*names: str) -> str | None:
    """The path of the first binary found on PATH, or None."""
    for name in names:
        if found := shutil.which(name):
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def http_json(url: str, body: object | None = None, timeout: float = 10) -> Any:
    """GET (or POST `body` as JSON) and decode the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def _process(argv: Sequence[str], ready_url: str, log: Path, timeout: float = 30) -> Iterator[int]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        try:
            wait_until(lambda: proc.poll() is None and _ready(ready_url), timeout, f"{argv[0]} ready")
        except TimeoutError as exc:
            raise RuntimeError(f"{argv[0]} did not start:\n{log.read_text(errors='replace')[-3000:]}") from exc
        yield proc.pid
    finally:
        proc.terminate()  # this PID only: never by name
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass(frozen=True)
class Prometheus:
    url: str
    pid: int
    data_dir: Path

    def query(self, expr: str, at: float | None = None) -> Any:
        """Instant query; returns the `data` of a successful answer, raises on a PromQL error."""
        return self._api("query", expr, {"time": str(at)} if at is not None else {})

    def query_range(self, expr: str, start: float, end: float, step: float) -> Any:
        """Range query, as a dashboard panel sends it; raises on a PromQL error."""
        return self._api("query_range", expr, {"start": str(start), "end": str(end), "step": str(step)})

    def _api(self, endpoint: str, expr: str, params: dict[str, str]) -> Any:
        url = f"{self.url}/api/v1/{endpoint}?{urllib.parse.urlencode({'query': expr} | params)}"
        try:
            answer = http_json(url)
        except urllib.error.HTTPError as exc:
            raise ValueError(f"{expr!r}: {exc.read().decode(errors='replace')}") from exc
        if answer.get("status") != "success":
            raise ValueError(f"{expr!r}: {answer}")
        return answer["data"]

    def alerts(self) -> list[dict[str, Any]]:
        return list(http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"])


@contextmanager
def running_prometheus(
    workdir: Path,
    rule_files: Sequence[Path] = (),
    scrape_targets: Sequence[str] = (),
    alertmanager_url: str | None = None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    extra_args: Sequence[str] = (),
) -> Iterator[Prometheus]:
    """A real Prometheus on a free loopback port with its own config, rules and data dir."""
    binary = tool("prometheus")
    if binary is None:
        raise FileNotFoundError("prometheus binary not found (run scripts/install-tools)")
    port = free_port()
    data = workdir / "prometheus-data"
    data.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": "app", "static_configs": [{"targets": list(scrape_targets)}]}]
        if scrape_targets else [],
    }
    if alertmanager_url:
        host = alertmanager_url.split("://", 1)[1].rstrip("/")
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    argv = [binary, f"--config.file={config_path}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver",
            "--enable-feature=exemplar-storage", *extra_args]
    url = f"http://127.0.0.1:{port}"
    with _process(argv, f"{url}/-/ready", workdir / "prometheus.log") as pid:
        yield Prometheus(url, pid, data)


@dataclass(frozen=True)
class Alertmanager:
    url: str
    pid: int
    data_dir: Path

    def post_alerts(self, alerts: Sequence[dict[str, Any]]) -> None:
        http_json(f"{self.url}/api/v2/alerts", list(alerts))

    def alerts(self) -> list[dict[str, Any]]:
        return list(http_json(f"{self.url}/api/v2/alerts"))


@contextmanager
def running_alertmanager(workdir: Path, config_text: str) -> Iterator[Alertmanager]:
    """A real Alertmanager (no cluster peers) on a free loopback port with `config_text`."""
    binary = tool(*ALERTMANAGER_BINARIES)
    if binary is None:
        raise FileNotFoundError("alertmanager binary not found (run scripts/install-tools)")
    port = free_port()
    data = workdir / "alertmanager-data"
    data.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(config_text, encoding="utf-8")
    argv = [binary, f"--config.file={config_path}", f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
    url = f"http://127.0.0.1:{port}"
    with _process(argv, f"{url}/-/ready", workdir / "alertmanager.log") as pid:
        yield Alertmanager(url, pid, data)


@dataclass
class WebhookReceiver:
    """Records the JSON bodies POSTed to it (Alertmanager's webhook payloads)."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.received.append(body)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every notification received, in arrival order."""
        return [alert for body in self.snapshot() for alert in body.get("alerts", [])]


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            receiver.record(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    with serving(Handler) as root:
        receiver.url = f"{root}/alerts"
        yield receiver


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` on a free loopback port for the block; yields the server's root URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def fixed_answer(body: bytes, status: int = 200, content_type: str = "text/plain") -> Iterator[str]:
    """A loopback server that answers every GET with the same reply; yields its root URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    with serving(Handler) as root:
        yield root


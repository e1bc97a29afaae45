"""The billed figures as Prometheus gauges (exporter mode of `otel-llm reconcile --serve`).

Only settled days are published (at most the last 35): a day the provider may still add to would
read as a shortfall. Gauges, labels `provider`, `date` (UTC day), `model`:
`otel_llm_billed_cost_usd`, `otel_llm_billed_tokens` (+ `token_type`: input, output, cache_read),
`otel_llm_reconcile_recorded_cost_usd`; and `otel_llm_billing_settled_date_timestamp_seconds{provider}`
(UTC midnight starting the newest settled day), `otel_llm_billing_up{provider}` (1 when the last fetch
of the bill and of Prometheus succeeded; on failure the previous figures stay published).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from ... import semconv as sc
from . import BillingError
from .compare import Row

__all__ = ["MAX_DAYS", "Exporter", "render"]

log = logging.getLogger(__name__)
MAX_DAYS: Final = 35
_TOKENS: Final = (("input", "input_tokens"), ("output", "output_tokens"), ("cache_read", "cache_read_tokens"))
_HELP: Final = {
    sc.BILLED_COST_USD: "Spend the provider billed for a settled UTC day and model, USD.",
    sc.BILLED_TOKENS: "Tokens the provider billed for a settled UTC day and model.",
    sc.RECONCILE_RECORDED_COST_USD: "Spend our telemetry recorded for that day and model, USD.",
    sc.BILLING_SETTLED_DATE: "UTC midnight starting the newest settled billing day.",
    sc.BILLING_UP: "1 when the last fetch of billing data and of the recorded figures succeeded.",
}

Fetch = Callable[[], tuple[list[Row], datetime]]  # -> rows of settled days, newest settled day


def render(provider: str, rows: list[Row] | None, settled: datetime | None, up: bool) -> str:
    """Pure: the exposition text. `rows` None (never fetched) publishes only the up gauge."""
    samples: dict[str, list[str]] = {name: [] for name in _HELP}
    dates = sorted({row.date for row in rows or []})[-MAX_DAYS:]
    for row in rows or []:
        if row.date not in dates:
            continue
        base = f'provider="{_esc(provider)}",date="{row.date}",model="{_esc(row.model)}"'
        if row.billed.cost_usd is not None:
            samples[sc.BILLED_COST_USD].append(f"{{{base}}} {row.billed.cost_usd!r}")
        for token_type, field in _TOKENS:
            value = getattr(row.billed, field)
            if value is not None:
                samples[sc.BILLED_TOKENS].append(f'{{{base},token_type="{token_type}"}} {value!r}')
        samples[sc.RECONCILE_RECORDED_COST_USD].append(f"{{{base}}} {(row.recorded.cost_usd or 0.0)!r}")
    label = f'{{provider="{_esc(provider)}"}}'
    if settled is not None:
        samples[sc.BILLING_SETTLED_DATE].append(f"{label} {settled.timestamp()!r}")
    samples[sc.BILLING_UP].append(f"{label} {1 if up else 0}")
    lines = []
    for name, values in samples.items():
        lines += [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} gauge"]
        lines += [f"{name}{value}" for value in values]
    return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Exporter:
    """Serves /metrics; refreshes the figures every `interval` seconds in a background thread."""

    def __init__(self, provider: str, fetch: Fetch, host: str, port: int, interval: float) -> None:
        self.provider, self._fetch, self.interval = provider, fetch, interval
        self._rows: list[Row] | None = None
        self._settled: datetime | None = None
        self._up = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def refresh(self) -> None:
        try:
            rows, settled = self._fetch()
        except BillingError as error:
            log.warning("otel-llm reconcile: %s (keeping the previous figures)", error)
            with self._lock:
                self._up = False
            return
        except Exception:
            # A bug of ours must not stop the refresh loop: say so, mark the figures stale, carry on.
            log.exception("otel-llm reconcile: refresh failed (keeping the previous figures)")
            with self._lock:
                self._up = False
            return
        with self._lock:
            self._rows, self._settled, self._up = rows, settled, True

    def text(self) -> str:
        with self._lock:
            return render(self.provider, self._rows, self._settled, self._up)

    def start(self) -> Exporter:
        self._thread.start()
        return self

    def run(self) -> None:
        """Refresh now and every interval until stop() (or Ctrl-C)."""
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        return Handler

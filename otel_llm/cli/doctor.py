"""`otel-llm doctor`: why do I see no LLM telemetry? Checks, in the order a user would:

1. otel_llm imports and its `opentelemetry_instrumentor` entry point is registered (what
   `opentelemetry-instrument` loads), and OTEL_LLM_ENABLED does not switch it off;
2. no other openai instrumentation is installed (two would double-count or fight over the patch),
   unless OTEL_PYTHON_DISABLED_INSTRUMENTATIONS names it;
3. where traces and metrics go (OTEL_*_EXPORTER) and whether that endpoint answers (TCP connect);
4. with --prometheus: Prometheus answers, has otel_llm series, and no model is unpriced;
5. whether message content capture is on (a privacy note, not a failure).

Exit 0 when all is well, 1 when a problem was found. The checks take the environment, the installed
distributions and the network probes as arguments, so tests run them against a fake world.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import socket
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import queries
from ._term import colour

__all__ = ["Finding", "main", "run_checks"]

PROG = "otel-llm doctor"
OTHER_INSTRUMENTATIONS = {
    "opentelemetry-instrumentation-genai-openai": "openai",
    "opentelemetry-instrumentation-openai-v2": "openai_v2",
    "opentelemetry-instrumentation-openai": "openai",
    "openinference-instrumentation-openai": "openinference",
}
_TRUE = {"1", "true", "yes", "on"}
Connect = Callable[[str, int], bool]
Query = Callable[[str, str], list[tuple[dict[str, str], float]]]


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "info", "problem"
    message: str


def tcp_connect(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _prom_query(base_url: str, promql: str) -> list[tuple[dict[str, str], float]]:
    from .queries import Prometheus

    return Prometheus(base_url, timeout=3).query(promql)


def installed_distributions() -> set[str]:
    return {(dist.metadata["Name"] or "").lower() for dist in importlib.metadata.distributions()}


def registered_instrumentors() -> set[str]:
    return {ep.name for ep in importlib.metadata.entry_points(group="opentelemetry_instrumentor")}


def _check_package(env: Mapping[str, str], entry_points: set[str]) -> Iterable[Finding]:
    try:
        importlib.import_module("otel_llm")
        yield Finding("ok", "otel_llm imports")
    except Exception as exc:
        yield Finding("problem", f"otel_llm does not import: {exc}")
    if "otel_llm" in entry_points:
        yield Finding("ok", "entry point opentelemetry_instrumentor:otel_llm is registered")
    else:
        yield Finding("problem", "entry point opentelemetry_instrumentor:otel_llm is missing: "
                      "reinstall the package (pip install otel-llm) in the app's environment")
    if env.get("OTEL_LLM_ENABLED", "true").strip().lower() in {"0", "false", "no", "off"}:
        yield Finding("problem", "OTEL_LLM_ENABLED is off: the instrumentation does nothing")
    disabled = {name.strip() for name in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")}
    if "otel_llm" in disabled:
        yield Finding("problem", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS disables otel_llm")


def _check_conflicts(env: Mapping[str, str], distributions: set[str]) -> Iterable[Finding]:
    disabled = {name.strip() for name in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")}
    for dist, entry in OTHER_INSTRUMENTATIONS.items():
        if dist in distributions and entry not in disabled:
            yield Finding("problem", f"{dist} is installed too: both patch openai, so calls are counted "
                          f"twice; uninstall it or set OTEL_PYTHON_DISABLED_INSTRUMENTATIONS={entry}")


def _otlp_target(env: Mapping[str, str], signal: str) -> tuple[str, str, int]:
    protocol = env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
    default = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
    endpoint = env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or default
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    port = parts.port or (4317 if protocol == "grpc" else (443 if parts.scheme == "https" else 80))
    return endpoint, parts.hostname or "localhost", port


def _check_exporters(env: Mapping[str, str], connect: Connect) -> Iterable[Finding]:
    for signal, variable in (("TRACES", "OTEL_TRACES_EXPORTER"), ("METRICS", "OTEL_METRICS_EXPORTER")):
        exporters = [name.strip() for name in env.get(variable, "otlp").split(",") if name.strip()]
        if not exporters or exporters == ["none"]:
            level = "problem" if signal == "METRICS" else "info"
            yield Finding(level, f"{variable}=none: no {signal.lower()} are exported")
            continue
        for exporter in exporters:
            if exporter == "otlp":
                endpoint, host, port = _otlp_target(env, signal)
                if connect(host, port):
                    yield Finding("ok", f"{signal.lower()} go to OTLP {endpoint}, which answers")
                else:
                    yield Finding("problem", f"{signal.lower()} go to OTLP {endpoint} ({variable}=otlp), "
                                  f"but nothing answers on {host}:{port}; set OTEL_EXPORTER_OTLP_ENDPOINT "
                                  "or start a Collector")
            elif exporter == "prometheus":
                scrape_port = env.get("OTEL_EXPORTER_PROMETHEUS_PORT", "9464")
                yield Finding("info", f"metrics are served by the app itself on :{scrape_port}/metrics "
                              "(only while it runs); make sure Prometheus scrapes it")
            elif exporter == "console":
                yield Finding("info", f"{signal.lower()} are printed to stdout (console exporter)")
            else:
                yield Finding("info", f"{variable} uses exporter {exporter!r}")


def _check_prometheus(url: str, query: Query) -> Iterable[Finding]:
    try:
        calls = query(url, queries.seen(queries.METRICS["calls"], "24h"))
        unpriced = query(url, queries.seen(queries.METRICS["unpriced"], "24h", [queries.LABELS["model"]]) + " > 0")
    except Exception as exc:
        yield Finding("problem", f"Prometheus at {url} does not answer: {exc}")
        return
    if not calls:
        yield Finding("problem", f"Prometheus at {url} has no otel_llm_calls_total: is the app scraped, "
                      "and did it make a call since it started?")
    else:
        yield Finding("ok", f"Prometheus has seen {calls[0][1]:.0f} LLM calls")
    for labels, value in unpriced:
        yield Finding("problem", f"model {labels.get('gen_ai_request_model', '?')!r} has {value:.0f} unpriced calls: "
                      "add it to the OTEL_LLM_PRICES file")
    if calls and not unpriced:
        yield Finding("ok", "every model seen so far is priced")


def _check_content(env: Mapping[str, str]) -> Iterable[Finding]:
    value = env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false").strip().lower()
    if value in _TRUE:
        yield Finding("info", "message content capture is ON: prompts and replies go into spans")
    else:
        yield Finding("ok", "message content capture is off (spans carry no prompts)")


def run_checks(env: Mapping[str, str], distributions: set[str], entry_points: set[str], connect: Connect,
               prometheus: str | None = None, query: Query = _prom_query) -> list[Finding]:
    findings = [*_check_package(env, entry_points), *_check_conflicts(env, distributions),
                *_check_exporters(env, connect)]
    if prometheus:
        findings += _check_prometheus(prometheus, query)
    findings += _check_content(env)
    return findings


def format_findings(findings: Sequence[Finding], tty: bool) -> str:
    marks = {"ok": ("ok", "green"), "info": ("--", "dim"), "problem": ("!!", "red")}
    lines = []
    for finding in findings:
        mark, name = marks[finding.level]
        lines.append(f"[{colour(mark, name) if tty else mark}] {finding.message}")
    problems = sum(f.level == "problem" for f in findings)
    lines.append(f"{problems} problem(s) found" if problems else "no problems found")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", metavar="URL", help="also check that Prometheus sees priced LLM calls")
    args = parser.parse_args(argv)
    findings = run_checks(dict(os.environ), installed_distributions(), registered_instrumentors(),
                          tcp_connect, args.prometheus)
    print(format_findings(findings, tty=colour("x", "red") != "x"))
    return 1 if any(f.level == "problem" for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())

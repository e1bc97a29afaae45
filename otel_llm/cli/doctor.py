"""`otel-llm doctor`: why do I see no LLM telemetry? Checks, in the order a user would:

1. otel_llm imports and its `opentelemetry_instrumentor` entry point is registered (what
   `opentelemetry-instrument` loads), and OTEL_LLM_ENABLED does not switch it off;
2. no other openai instrumentation is installed (two would double-count or fight over the patch),
   unless OTEL_PYTHON_DISABLED_INSTRUMENTATIONS names it;
3. the OpenTelemetry SDK is installed and configured: a configurator (opentelemetry-distro), the
   exporter package for each chosen exporter and OTLP protocol (traces, metrics and logs: one
   missing and the SDK does not start), and OTEL_SERVICE_NAME;
4. where traces and metrics go (OTEL_*_EXPORTER) and whether that endpoint answers (TCP connect);
5. with --prometheus: Prometheus answers, has otel_llm series, no calls are unpriced or unmetered
   (ended with no usage), no hosted tool ran whose fee is not in the cost, and it keeps samples longer
   than a month to date (the report's reach);
6. whether message content capture is on (a privacy note, not a failure).

Exit 0 when all is well, 1 when a problem was found.

The checks take the environment, the installed distributions and entry points and the network probes
as arguments, so tests run them against a fake world.
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

from ..record import BILLED_BY_OTHER_MEASURE
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
SIGNALS = ("traces", "metrics", "logs")
# OTLP protocol -> the exporter entry point the SDK loads for `otlp` (opentelemetry-sdk _configuration)
OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}
EXPORTER_PACKAGES = {
    "otlp_proto_grpc": "opentelemetry-exporter-otlp-proto-grpc",
    "otlp_proto_http": "opentelemetry-exporter-otlp-proto-http",
    "prometheus": "opentelemetry-exporter-prometheus",
}
CONFIGURATOR_GROUP = "opentelemetry_configurator"
Connect = Callable[[str, int], bool]
Components = Mapping[str, set[str]]  # entry-point group -> names registered in it
Query = Callable[[str, str], list[tuple[dict[str, str], float]]]
Retention = Callable[[str], "str | None"]  # Prometheus URL -> its storageRetention ("15d"), None if unsaid
# How far back the report reads: a month to date (31 days) and the exact growth's carry window.
MONTH_REACH_SECONDS = 31 * 86400 + queries.CARRY_SECONDS


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


def _prom_retention(base_url: str) -> str | None:
    return queries.Prometheus(base_url, timeout=3).retention()


def installed_distributions() -> set[str]:
    return {(dist.metadata["Name"] or "").lower() for dist in importlib.metadata.distributions()}


def registered_instrumentors() -> set[str]:
    return {ep.name for ep in importlib.metadata.entry_points(group="opentelemetry_instrumentor")}


def installed_components() -> dict[str, set[str]]:
    groups = [CONFIGURATOR_GROUP, *(f"opentelemetry_{signal}_exporter" for signal in SIGNALS)]
    return {group: {ep.name for ep in importlib.metadata.entry_points(group=group)} for group in groups}


def _exporter_names(env: Mapping[str, str], signal: str) -> list[str]:
    names = [name.strip() for name in env.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").split(",") if name.strip()]
    return [] if names == ["none"] else names


def _check_sdk(env: Mapping[str, str], distributions: set[str], components: Components) -> Iterable[Finding]:
    findings = list(_sdk_problems(env, distributions, components))
    return findings or [Finding("ok", "the OpenTelemetry SDK, a configurator and the chosen exporters are "
                                      f"installed; service {env['OTEL_SERVICE_NAME']!r}"
                                      if env.get("OTEL_SERVICE_NAME") else "the OpenTelemetry SDK, a "
                                      "configurator and the chosen exporters are installed")]


def _sdk_problems(env: Mapping[str, str], distributions: set[str], components: Components) -> Iterable[Finding]:
    """What makes `opentelemetry-instrument` start no SDK at all, or label everything unknown_service."""
    if "opentelemetry-sdk" not in distributions:
        yield Finding("problem", "the OpenTelemetry SDK is not installed: otel_llm records into the API's no-op "
                      "providers and nothing is exported; pip install 'otel-llm[cli]' (or set the SDK up in the app)")
        return
    if not components.get(CONFIGURATOR_GROUP):
        yield Finding("problem", "no OpenTelemetry configurator is installed: `opentelemetry-instrument` then sets up "
                      "no SDK and exports nothing; pip install opentelemetry-distro (in the cli extra)")
    for signal in SIGNALS:
        variable = f"OTEL_{signal.upper()}_EXPORTER"
        for name in _exporter_names(env, signal):
            entry = name
            if name == "otlp":
                protocol = (env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
                            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip()
                if protocol not in OTLP_BY_PROTOCOL:
                    yield Finding("problem", f"OTLP protocol {protocol!r} is not one the SDK knows "
                                  f"({', '.join(OTLP_BY_PROTOCOL)}): the SDK does not start")
                    continue
                entry = OTLP_BY_PROTOCOL[protocol]
            if entry not in components.get(f"opentelemetry_{signal}_exporter", set()):
                package = EXPORTER_PACKAGES.get(entry, f"the package that provides the {entry!r} exporter")
                where = f"{variable}={name}" + (f" over {protocol}" if name == "otlp" else "")
                yield Finding("problem", f"{where} needs the {entry} exporter, which is not installed: the SDK "
                              f"does not start and nothing is recorded; pip install {package}")
    if not env.get("OTEL_SERVICE_NAME", "").strip() and "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        yield Finding("problem", "OTEL_SERVICE_NAME is not set: the app's telemetry is labelled "
                      "unknown_service and cannot be told from another app's; export OTEL_SERVICE_NAME=your-app")


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


def _check_retention(setting: str | None) -> Finding:
    """Prometheus deletes samples past its retention (15 days unless set): a month to date reaching
    further back cannot be read exactly (the report flags it; this says so before it happens)."""
    if setting is None:
        return Finding("info", "Prometheus does not say how long it keeps samples (Mimir, Thanos: their own "
                       "retention): keep more than a month, or the report's month to date is not exact")
    seconds = queries.retention_seconds(setting)
    if seconds is None:
        return Finding("info", f"Prometheus keeps samples up to a size ({setting}): make sure it holds more than "
                       "a month, or the report's month to date is not exact")
    if seconds < MONTH_REACH_SECONDS:
        return Finding("problem", f"Prometheus keeps samples for {setting}: a report's month to date reaches back up to "
                       "31 days, so late in the month it cannot be exact; set --storage.tsdb.retention.time=45d "
                       "(as compose.yaml does)")
    return Finding("ok", f"Prometheus keeps samples for {setting}, longer than a month to date")


def _check_prometheus(url: str, query: Query, retention: Retention = _prom_retention) -> Iterable[Finding]:
    try:
        by = [queries.LABELS["model"], "server_address"]
        calls = query(url, queries.seen(queries.METRICS["calls"], "24h"))
        unpriced = query(url, queries.seen(queries.METRICS["unpriced"], "24h", by) + " > 0")
        unmetered = query(url, queries.seen(queries.METRICS["unmetered"], "24h", [*by, queries.LABELS["operation"]])
                          + " > 0")
        tool = queries.LABELS["hosted_tool"]
        tools_unpriced = query(url, queries.seen(f'{queries.METRICS["hosted_tools"]}{{{queries.TOOL_FEE_MISSING}}}',
                                                 "24h", [*by, tool]) + " > 0")
    except Exception as exc:
        yield Finding("problem", f"Prometheus at {url} does not answer: {exc}")
        return
    if not calls:
        yield Finding("problem", f"Prometheus at {url} has no otel_llm_calls_total: is the app scraped, "
                      "and did it make a call since it started?")
    else:
        yield Finding("ok", f"Prometheus has seen {calls[0][1]:.0f} LLM calls")
    for labels, value in unpriced:
        yield Finding("problem", f"model {labels.get('gen_ai_request_model', '?')!r}{_at(labels)} has {value:.0f} "
                      "unpriced calls: add it to the OTEL_LLM_PRICES file")
    for labels, value in unmetered:
        where = f"model {labels.get('gen_ai_request_model', '?')!r}{_at(labels)} has {value:.0f} unmetered calls"
        operation = labels.get(queries.LABELS["operation"], "")
        if operation in BILLED_BY_OTHER_MEASURE:
            yield Finding("problem", f"{where} ({operation}, billed per image, character or minute with no token "
                          "usage: otel_llm does not price them, so their cost is in no figure; `otel-llm reconcile` "
                          "compares with the bill)")
        else:
            yield Finding("problem", f"{where} (no usage at all, so no tokens and no cost): for streams set "
                          "OTEL_LLM_INCLUDE_STREAM_USAGE=always or name that host in it; a gateway that strips "
                          "usage must pass it through")
    for labels, value in tools_unpriced:
        yield Finding("problem", f"model {labels.get('gen_ai_request_model', '?')!r}{_at(labels)} ran the hosted "
                      f"{labels.get(tool, '?')} tool {value:.0f} times without its fee in the cost (otel_llm prices web "
                      "and file search at OpenAI's list fee on calls priced at OpenAI's list; code interpreter and "
                      "image generation are billed by measures a call does not carry): set a fee per run under "
                      "`hosted_tools:` in the OTEL_LLM_PRICES file")
    if calls and not unpriced:
        yield Finding("ok", "every model seen so far is priced")
    if calls and not unmetered:
        yield Finding("ok", "every call seen so far reported its usage")
    yield _check_retention(retention(url))


def _at(labels: Mapping[str, str]) -> str:
    return f" at {labels['server_address']}" if labels.get("server_address") else ""


def _check_content(env: Mapping[str, str]) -> Iterable[Finding]:
    value = env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false").strip().lower()
    if value in _TRUE:
        yield Finding("info", "message content capture is ON: prompts and replies go into spans")
    else:
        yield Finding("ok", "message content capture is off (spans carry no prompts)")


def run_checks(env: Mapping[str, str], distributions: set[str], entry_points: set[str], connect: Connect,
               prometheus: str | None = None, query: Query = _prom_query,
               components: Components | None = None, retention: Retention = _prom_retention) -> list[Finding]:
    """All checks; `components` (entry points by group) None skips the SDK checks."""
    findings = [*_check_package(env, entry_points), *_check_conflicts(env, distributions)]
    if components is not None:
        findings += _check_sdk(env, distributions, components)
    findings += _check_exporters(env, connect)
    if prometheus:
        findings += _check_prometheus(prometheus, query, retention)
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
    help_text = (__doc__ or "").split("\n\nThe checks take")[0].replace("`otel-llm doctor`: ", "", 1)
    parser = argparse.ArgumentParser(prog=PROG, description=help_text,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", metavar="URL",
                        help="also check that Prometheus sees LLM calls, all priced and metered")
    args = parser.parse_args(argv)
    findings = run_checks(dict(os.environ), installed_distributions(), registered_instrumentors(),
                          tcp_connect, args.prometheus, components=installed_components())
    print(format_findings(findings, tty=colour("x", "red") != "x"))
    return 1 if any(f.level == "problem" for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())

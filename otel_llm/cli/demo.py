"""`otel-llm demo`: the whole story on one machine in about twenty seconds.

Starts two simulators (the gateway, with a few random 429s, and a "canary" base URL), Prometheus with
the project's rules (run every 5s) and a demo budget low enough to be spent, Alertmanager routing to a
webhook receiver in this process, then the workload under `opentelemetry-instrument`, with the
in-memory response cache on unless --no-response-cache. It waits for Prometheus to scrape the final
values and for its budget rules to have counted them, then for the daily budget alert to reach the
webhook, prints the report and the alerts, and stops everything it started unless --keep.
`run_demo()` returns a DemoResult for tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otel_llm.simulator import Simulator, SimulatorConfig

from . import report as report_mod
from ._term import colour, error
from .assets import AssetMissing, asset
from .procs import Child, free_port, wait_until
from .stack import MissingBinary, Webhook, start_alertmanager, start_prometheus, write_demo_rules

__all__ = ["DemoResult", "main", "run_demo"]

PROG = "otel-llm demo"
ALERT = "LLMDailyBudgetSpent"
DAILY_PER_CALL = 0.05 / 300  # the default: $0.05 for 300 calls


@dataclass
class DemoResult:
    workload: dict[str, Any]
    simulator_stats: list[dict[str, Any]]  # gateway, canary
    report: dict[str, Any]
    alerts: list[dict[str, Any]]
    alert_fired: bool
    seconds: float
    urls: dict[str, str] = field(default_factory=dict)
    workdir: str = ""
    pids: dict[str, int] = field(default_factory=dict)  # the child processes (they outlive us with keep)
    spend_usd: float = 0.0  # what the budget rules counted
    budget_daily: float = 0.0
    reconciliation: str = ""  # the billed-vs-recorded line (otel_llm.cli.reconcile)


def scaled_budget(calls: int) -> float:
    """The demo's daily budget: DAILY_PER_CALL per call, so any --calls spends past it (a call costs
    $0.0003 to $0.002 with the workload's models; a one-off FAQ call can cost less)."""
    return round(calls * DAILY_PER_CALL, 6)


def _workload_env(metrics_port: int, response_cache: bool) -> dict[str, str]:
    env = dict(os.environ)
    # The demo's own choice wins over the caller's environment either way: the in-process memory
    # backend (nothing to install, nothing shared), or no cache at all.
    env.pop("OTEL_LLM_RESPONSE_CACHE", None)
    if response_cache:
        env["OTEL_LLM_RESPONSE_CACHE"] = "memory://"
    env.update({
        "OTEL_SERVICE_NAME": "otel-llm-demo",
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_LLM_PRICES": str(asset("examples/prices.yaml")),
        # The case's biggest lever: what sending these calls to the cheapest model would cost.
        "OTEL_LLM_REFERENCE_MODEL": "deepseek-v3.2",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _instrument_command() -> list[str]:
    exe = Path(sys.executable).with_name("opentelemetry-instrument")
    launcher = str(exe) if exe.exists() else (shutil.which("opentelemetry-instrument") or "opentelemetry-instrument")
    return [launcher, sys.executable, "-m", "otel_llm.cli.workload"]


def _scraped_calls(prometheus: str) -> float:
    try:
        samples = report_mod.query(prometheus, "sum(otel_llm_calls_total)", timeout=2)
    except report_mod.PrometheusError:
        return -1
    return samples[0][1] if samples else 0


def _rules_caught_up(prometheus: str) -> float | None:
    """The 24h spend the budget rules counted, once they have counted every scraped dollar (else None).
    Until then the workload must keep serving its metrics: once it exits its series go stale, and a
    rule evaluation (every 5s) that has not seen the final values by then never will, so the alert
    would wait on spend it cannot see."""
    try:
        scraped = report_mod.query(prometheus, "sum(otel_llm_cost_USD_total)", timeout=2)
        counted = report_mod.query(prometheus, 'scope:otel_llm_cost_usd:sum24h{scope="global"}', timeout=2)
    except report_mod.PrometheusError:
        return None
    if scraped and counted and counted[0][1] >= scraped[0][1] * (1 - 1e-9):
        return counted[0][1]
    return None


def _counted_spend(prometheus: str, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while (spend := _rules_caught_up(prometheus)) is None and time.monotonic() < deadline:
        time.sleep(0.25)
    return spend


def _critical_delivered(webhook: Webhook) -> bool:
    return any(a["labels"].get("alertname") == ALERT and a["labels"].get("severity") == "critical"
               for a in webhook.alerts())


def run_demo(calls: int = 300, budget_daily: float | None = None, budget_monthly: float = 1.0, keep: bool = False,
             alert_timeout: float = 60.0, out: Any = None, response_cache: bool = True,
             inspect: Callable[[str], None] | None = None) -> DemoResult:
    """Run the demo; raises MissingBinary when Prometheus/Alertmanager are not installed.

    `budget_daily` defaults to scaled_budget(calls). `inspect(prometheus_url)` runs once the alert is
    in, while everything still runs (tests use it)."""
    out = out or sys.stdout
    budget_daily = scaled_budget(calls) if budget_daily is None else budget_daily
    asset("examples/prices.yaml"), asset("prometheus/rules")  # AssetMissing now, before anything starts
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="otel-llm-demo-"))
    stoppers: list[Any] = []
    try:
        fast = SimulatorConfig(latency_scale=0.3, rate_429=0.03, retry_after=0.05, seed=1)
        gateway = Simulator(config=fast).start()
        stoppers.append(gateway.stop)
        canary = Simulator(config=SimulatorConfig(latency_scale=0.3, seed=2)).start()
        stoppers.append(canary.stop)
        webhook = Webhook()
        stoppers.append(webhook.stop)
        alertmanager, am_url = start_alertmanager(workdir, webhook.url)
        stoppers.append(alertmanager.stop)
        metrics_port = free_port()
        rules = write_demo_rules(workdir / "rules", budget_daily, budget_monthly)
        prometheus, prom_url = start_prometheus(workdir, f"127.0.0.1:{metrics_port}",
                                                am_url.removeprefix("http://"), rules)
        stoppers.append(prometheus.stop)
        print(f"demo: simulator {gateway.base_url} (canary {canary.base_url}), Prometheus {prom_url}, "
              f"Alertmanager {am_url}, webhook {webhook.url}", file=sys.stderr)

        workload = Child("workload", _instrument_command() + [
            "--base-url", gateway.base_url, "--canary-url", canary.base_url, "--calls", str(calls),
            "--linger", "120",
        ], workdir / "workload.log", env=_workload_env(metrics_port, response_cache), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, inherit_stderr=sys.stderr.isatty())
        # On a terminal the workload's progress bar shows live; otherwise its stderr goes to the log.
        stoppers.append(workload.stop)
        assert workload.proc.stdout is not None
        line = workload.proc.stdout.readline().decode()
        if not line:
            raise RuntimeError(f"the workload failed:\n{workload.log_tail()}")
        summary = json.loads(line)
        finished = sum(summary["outcomes"].values())
        if not wait_until(lambda: _scraped_calls(prom_url) >= finished, 30):
            raise RuntimeError("Prometheus did not scrape the workload's final values within 30s")
        time.sleep(2.5)  # two more scrapes: every counter of the last call is in
        spend = _counted_spend(prom_url, 30)
        if spend is None:
            raise RuntimeError("Prometheus' budget rules did not count the workload's spend within 30s")
        assert workload.proc.stdin is not None
        workload.proc.stdin.close()
        workload.proc.wait(timeout=15)

        # Under the budget the alert cannot fire: say so instead of waiting for it.
        fired = spend >= budget_daily and wait_until(lambda: _critical_delivered(webhook), alert_timeout,
                                                          interval=0.5)
        if inspect is not None:
            inspect(prom_url)
        now = datetime.now(timezone.utc)
        report = report_mod.build_report(report_mod.fetch(prom_url, now), now, budget_daily, budget_monthly)
        urls = {"prometheus": prom_url, "alertmanager": am_url, "webhook": webhook.url,
                "simulator": gateway.base_url, "canary": canary.base_url}
        # Reconcile: the simulators' own bill against the recorded spend.
        from .reconcile import demo_line
        reconciliation = demo_line(prom_url, [gateway.base_url, canary.base_url], "sk-admin-demo")
        pids = {"prometheus": prometheus.pid, "alertmanager": alertmanager.pid}
        return DemoResult(summary, [gateway.stats(), canary.stats()], report, webhook.alerts(), fired,
                          time.monotonic() - started, urls, str(workdir), pids, spend, budget_daily,
                          reconciliation)
    finally:
        if not keep:
            for stop in reversed(stoppers):
                try:
                    stop()
                except Exception as exc:
                    print(f"demo: while stopping: {exc}", file=sys.stderr)
            shutil.rmtree(workdir, ignore_errors=True)


def format_alerts(alerts: Sequence[dict[str, Any]]) -> str:
    seen = set()
    lines = []
    for alert in alerts:
        labels = alert.get("labels", {})
        key = (labels.get("alertname"), labels.get("severity"), labels.get("budget"), labels.get("scope"))
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"  [{labels.get('severity')}] {labels.get('alertname')} {labels.get('scope', '')}: "
                     f"{alert.get('annotations', {}).get('summary', '')}")
    return "\n".join(lines) or "  (none)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--calls", type=int, default=300, help="LLM calls in the workload (default: %(default)s)")
    parser.add_argument("--budget-daily", type=float, metavar="USD",
                        help="demo daily budget (default: $0.05 per 300 calls, low enough that the "
                             "workload spends past it and the alert fires)")
    parser.add_argument("--response-cache", action=argparse.BooleanOptionalAction, default=True,
                        help="answer the workload's exact-repeat temperature=0 questions from otel_llm's "
                             "in-memory response cache (default: on; --no-response-cache to compare)")
    parser.add_argument("--keep", action="store_true", help="leave everything running and print the URLs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.calls < 1 or (args.budget_daily is not None and args.budget_daily <= 0):
        parser.error("--calls and --budget-daily must be positive")
    try:
        if args.budget_daily is None and args.calls < 20:
            print(f"demo: with {args.calls} call{'' if args.calls == 1 else 's'} the spend may stay under the scaled daily budget "
                  f"${scaled_budget(args.calls):.4f}, and then no alert fires", file=sys.stderr)
        result = run_demo(args.calls, args.budget_daily, keep=args.keep, response_cache=args.response_cache)
    except MissingBinary as exc:
        error(PROG, f"{exc} is not installed: run scripts/install-tools")
        return 2
    except AssetMissing as exc:
        error(PROG, str(exc))
        return 2
    except KeyboardInterrupt:
        error(PROG, "interrupted; everything started was stopped")
        return 130
    except Exception as exc:
        error(PROG, str(exc))
        return 1
    print(report_mod.format_text(result.report, tty=colour("x", "red") != "x"))
    print()
    under = result.spend_usd < result.budget_daily
    if result.alert_fired:
        verdict = "the daily budget alert fired"
    elif under:
        verdict = (f"none expected: the workload spent ${result.spend_usd:.4f}, under the daily budget "
                   f"${result.budget_daily:.4f}; lower --budget-daily or raise --calls to see it fire")
    else:
        verdict = (f"NO critical alert within the wait, although the workload spent ${result.spend_usd:.4f} of "
                   f"a ${result.budget_daily:.4f} daily budget")
    print(f"Alerts delivered to the webhook ({verdict}):")
    print(format_alerts(result.alerts))
    print(f"\ndemo took {result.seconds:.0f}s")
    if result.reconciliation:
        print(f"Does it match the bill? {result.reconciliation}")
    # The HTML report: a bonus of the demo, never a reason for it to fail.
    from . import report_html

    html_path = Path(tempfile.gettempdir()) / "otel-llm-demo-report.html"
    try:
        html_path.write_text(report_html.render(result.report), encoding="utf-8")
        print(f"HTML report: {html_path}")
    except Exception as exc:
        print(f"HTML report: not written: {type(exc).__name__}: {exc}")
    if args.keep:
        print(format_kept(result))
    return 0 if result.alert_fired or under else 1


def format_kept(result: DemoResult) -> str:
    """What --keep leaves running (child processes, with their PIDs) and what stopped with us."""
    lines = [f"\nStill running (stop them with `kill {' '.join(str(p) for p in result.pids.values())}` when done):"]
    lines += [f"  {name}: {result.urls[name]} (pid {pid})" for name, pid in result.pids.items()]
    lines.append(f"  their files: {result.workdir} (remove it afterwards)")
    stopped = [name for name in result.urls if name not in result.pids]
    lines.append(f"Stopped with this command (they lived in its process): {', '.join(stopped)}")
    return "\n".join(lines)

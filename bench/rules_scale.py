"""Target 6: the budget rules at scale, on a real Prometheus scraping synthetic apps.

A local HTTP server exposes `otel_llm_cost_USD_total` for users x models x keys x replicas raw series
(labels as the Collector's Prometheus exporter writes them, `job`/`instance` per replica, honoured),
each growing every scrape, plus `otel_llm_process_start_time_seconds` per replica and, as otel_llm
exports them since issue 20, the per-process rollups `otel_llm_cost_by_scope_USD_total` (user, team,
key) and `otel_llm_cost_by_model_USD_total` (model, server). A real Prometheus (scripts/install-tools)
scrapes it every SCRAPE seconds and evaluates one of:
  shipped      the shipped rules (prometheus/rules/*.yml), apps with the rollups;
  shipped-raw  the shipped rules, apps without the rollups (an older otel_llm: the raw path);
  before       the rules of git ref BEFORE (the design before issue 20), apps with the rollups;
  plain        plain `increase()` rules giving the same per-scope windows. The group
interval is shortened from 1m to EVAL seconds so a run sees several evaluations in about a minute;
what one evaluation costs is the figure (`prometheus_rule_group_last_duration_seconds`), with the
caveat that the [1h] look-backs of the shipped rules hold more samples after an hour than here.

    .venv/bin/python -m bench.rules_scale [--series 1000,10000,100000] [--rules shipped,before,plain]
        [--seconds 75] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2")
WINDOWS = ("5m", "30m", "1h", "6h", "24h")
SCOPES = (("global", ""), ("user", "user_id"), ("team", "otel_llm_team"), ("api_key", "otel_llm_api_key_fingerprint"))


def shape(total: int) -> tuple[int, int, int, int]:
    """users, models, keys, replicas whose product is `total` (4 models, 5 keys, 5 replicas)."""
    models, keys, replicas = 4, 5, 5
    return max(total // (models * keys * replicas), 1), models, keys, replicas


class Exposition:
    """The synthetic apps' metrics, one text body per scrape; counters grow with time."""

    def __init__(self, total: int, rollups: bool = True) -> None:
        users, models, keys, replicas = shape(total)
        self.users, self.models, self.keys, self.rollups = users, models, keys, rollups
        self.started = time.time()
        self.replicas = [f"app-{r}" for r in range(replicas)]
        self.prefixes: list[str] = []
        for r in self.replicas:
            for u in range(users):
                for m in MODELS[:models]:
                    for k in range(keys):
                        self.prefixes.append(
                            f'otel_llm_cost_USD_total{{job="chatbot",instance="{r}",gen_ai_operation_name="chat",'
                            f'gen_ai_provider_name="openai",gen_ai_request_model="{m}",gen_ai_response_model="{m}",'
                            f'server_address="gateway.example.com",user_id="user-{u}",otel_llm_team="team-{u % 20}",'
                            f'otel_llm_api_key_fingerprint="key{k:02d}",otel_llm_prompt_size="medium"}} '
                        )
        self.count = len(self.prefixes)
        # What otel_llm's ledger.Rollup reports: every raw series of a (user, key) or of a model summed.
        self.by_scope = [
            f'otel_llm_cost_by_scope_USD_total{{job="chatbot",instance="{r}",user_id="user-{u}",'
            f'otel_llm_team="team-{u % 20}",otel_llm_api_key_fingerprint="key{k:02d}"}} '
            for r in self.replicas for u in range(users) for k in range(keys)
        ]
        self.by_model = [
            f'otel_llm_cost_by_model_USD_total{{job="chatbot",instance="{r}",gen_ai_request_model="{m}",'
            'server_address="gateway.example.com"} '
            for r in self.replicas for m in MODELS[:models]
        ]

    def body(self) -> bytes:
        minutes = (time.time() - self.started) / 60
        raw = 0.001 + minutes * 0.0123
        value = f"{raw:.6f}\n"
        head = "# TYPE otel_llm_cost_USD_total counter\n"
        start = "".join(
            f'otel_llm_process_start_time_seconds{{job="chatbot",instance="{r}"}} {self.started:.3f}\n'
            for r in self.replicas
        )
        text = (head + value.join(self.prefixes) + value + "# TYPE otel_llm_process_start_time_seconds gauge\n"
                + start)
        if self.rollups:
            scope, model = f"{raw * self.models:.6f}\n", f"{raw * self.users * self.keys:.6f}\n"
            text += ("# TYPE otel_llm_cost_by_scope_USD_total counter\n" + scope.join(self.by_scope) + scope
                     + "# TYPE otel_llm_cost_by_model_USD_total counter\n" + model.join(self.by_model) + model)
        return text.encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(exposition: Exposition) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            body = exposition.body()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def plain_rules(interval: str) -> str:
    """The per-scope windows as plain increase() over the raw counters (inexact: extrapolates, misses
    a series' first increment), the baseline the shipped design is compared with."""
    lines = ["groups:", "  - name: plain_increase", f"    interval: {interval}", "    rules:"]
    for window in WINDOWS:
        for scope, label in SCOPES:
            by = f" by ({label})" if label else ""
            sel = f'{{{label}!=""}}' if label else ""
            lines += [f"      - record: scope:plain_cost_usd:increase{window}",
                      f"        expr: sum{by} (increase(otel_llm_cost_USD_total{sel}[{window}]))",
                      f"        labels: {{scope: {scope}}}"]
    return "\n".join(lines) + "\n"


def rules_text(rules: str, interval: str, before: str) -> dict[str, str]:
    """The rule files a variant evaluates, with the group interval shortened to `interval`."""
    if rules == "plain":
        return {"plain.yml": plain_rules(interval)}
    if rules == "before":
        names = subprocess.run(["git", "ls-tree", "--name-only", before, "prometheus/rules/"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.split()
        texts = {Path(n).name: subprocess.run(["git", "show", f"{before}:{n}"], cwd=ROOT, capture_output=True,
                                              text=True, check=True).stdout for n in names if n.endswith(".yml")}
    else:
        texts = {p.name: p.read_text() for p in (ROOT / "prometheus" / "rules").glob("*.yml")}
    return {name: text.replace("interval: 1m", f"interval: {interval}") for name, text in texts.items()}


def _metrics(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)", line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out.setdefault(m.group(1), []).append((labels, float(m.group(4))))
    return out


def _query(port: int, q: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    return list(json.loads(urllib.request.urlopen(url, timeout=60).read())["data"]["result"])


def run(total: int, rules: str, seconds: float, scrape: str, interval: str, before: str = "9c8ab69") -> dict[str, Any]:
    exposition = Exposition(total, rollups=rules != "shipped-raw")
    server = _serve(exposition)
    work = Path(tempfile.mkdtemp(prefix="otel-llm-rules-scale-"))
    try:
        rules_dir = work / "rules"
        rules_dir.mkdir()
        for name, text in rules_text(rules, interval, before).items():
            (rules_dir / name).write_text(text)
        port = _free_port()
        (work / "prometheus.yml").write_text(
            f"global: {{scrape_interval: {scrape}, evaluation_interval: {interval}}}\n"
            f"rule_files: ['{rules_dir}/*.yml']\n"
            "scrape_configs:\n"
            "  - job_name: synthetic\n    honor_labels: true\n    scrape_timeout: 10s\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{server.server_address[1]}']}}]\n"
        )
        proc = subprocess.Popen(
            [shutil.which("prometheus") or "prometheus", f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=2h", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            durations: dict[str, list[float]] = {}
            seen: dict[str, float] = {}
            deadline = time.time() + seconds
            while time.time() < deadline:
                time.sleep(2)
                try:
                    m = _metrics(port)
                except OSError:
                    continue
                for labels, value in m.get("prometheus_rule_group_last_duration_seconds", []):
                    group = labels["rule_group"].split(";")[-1]
                    stamp = next((v for lab, v in m.get("prometheus_rule_group_last_evaluation_timestamp_seconds", [])
                                  if lab["rule_group"] == labels["rule_group"]), 0.0)
                    if stamp > 0 and seen.get(group) != stamp:
                        seen[group] = stamp
                        durations.setdefault(group, []).append(value)
            m = _metrics(port)
            rss = next(v for _, v in m["process_resident_memory_bytes"])
            head = next(v for _, v in m["prometheus_tsdb_head_series"])
            raw = _query(port, "count(otel_llm_cost_USD_total)")
            recorded = _query(port, 'count by (__name__) ({__name__=~".+:.+"})')
            rules_api = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=60).read())
            per_rule = sorted(
                ((r.get("evaluationTime", 0.0), r.get("name", "")) for g in rules_api["data"]["groups"]
                 for r in g["rules"]), reverse=True)[:6]
            samples = {lab["rule_group"].split(";")[-1]: v
                       for lab, v in m.get("prometheus_rule_group_last_evaluation_samples", [])}
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    by_name = {r["metric"]["__name__"]: int(float(r["value"][1])) for r in recorded}
    from bench.scale_report import machine

    return {
        "machine": machine(),
        "series": total, "exposed": exposition.count, "rules": rules, "shape": shape(total),
        "rollup_series": len(exposition.by_scope) + len(exposition.by_model) if exposition.rollups else 0,
        "raw_series_in_tsdb": int(float(raw[0]["value"][1])) if raw else 0,
        "head_series": head, "rss_mib": rss / 2**20,
        "recorded_series": sum(by_name.values()), "recorded_by_name": by_name,
        "slowest_rules_s": [[name, t] for t, name in per_rule],
        "groups": {
            g: {"evaluations": len(v), "median_s": statistics.median(v), "max_s": max(v),
                "samples": samples.get(g, 0.0)}
            for g, v in durations.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", default="1000,10000,100000")
    ap.add_argument("--rules", default="shipped,before,plain")
    ap.add_argument("--before", default="9c8ab69", help="git ref of the rules the `before` variant runs (issue 20's base)")
    ap.add_argument("--seconds", type=float, default=75)
    ap.add_argument("--scrape", default="15s")
    ap.add_argument("--interval", default="15s")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    results = []
    for total in (int(s) for s in a.series.split(",")):
        for rules in a.rules.split(","):
            r = run(total, rules, a.seconds, a.scrape, a.interval, a.before)
            results.append(r)
            print(f"{total} raw series ({r['raw_series_in_tsdb']} in the TSDB), {rules} rules: RSS {r['rss_mib']:.0f} MiB, "
                  f"head series {r['head_series']:.0f}, recorded by rules {r['recorded_series']}", flush=True)
            for g, s in sorted(r["groups"].items()):
                print(f"   {g:<36} {s['median_s'] * 1000:9.1f} ms median, max {s['max_s'] * 1000:9.1f} ms "
                      f"over {s['evaluations']} evaluations, {s['samples']:.0f} samples", flush=True)
            print("   slowest rules (last evaluation): " + ", ".join(f"{n} {t:.3f}s" for n, t in r["slowest_rules_s"]))
            if a.json:
                a.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

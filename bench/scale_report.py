"""The issue-20 sections of BENCHMARKS.md (where the time goes, contention, one collection, rules at
scale), from the JSON the parts write: bench/hotpath.json (by hand), bench/ablation.json,
bench/contention.json, bench/collection.json, bench/rules_scale.json.

`report.markdown` appends this; `python -m bench.scale_report` prints it alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["COLLECTION_MS", "CONTENTION_RATIO", "RULES_S", "markdown"]

HERE = Path(__file__).resolve().parent
CONTENTION_RATIO = 0.97  # target 4: otel_llm throughput >= 97% of the floor's
COLLECTION_MS = 100.0  # target 5: one collection at the series bound
RULES_S = 5.0  # target 6: the shipped groups per evaluation at 100k raw series


def _load(name: str) -> Any:
    path = HERE / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def machine() -> dict[str, Any]:
    """nproc, CPU model and the 1-minute load average now: each part stores it with its figures."""
    import os

    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg_1m": os.getloadavg()[0]}


def _machine_line(data: Any) -> str:
    m = data.get("machine") if isinstance(data, dict) else (data[-1].get("machine") if data else None)
    if not m:
        return ""
    return (f"Machine: `nproc` = {m['nproc']}, {m['cpu']}; 1-minute load average {m['loadavg_1m']:.1f} "
            f"{m.get('load_note', 'when the part started')}.")


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def _contention(data: dict[str, Any]) -> list[str]:
    out = ["## Contention (target 4)", "",
           f"{data['thread_count']} threads (sync client) and {data['task_count']} asyncio tasks (async client, one loop) call "
           "`chat.completions.create` at full speed through the real SDK and its mock transport, in one process; "
           "the modes are switched between windows of "
           f"{data['window_s']:g} s (paired, order rotated per round): the floor alone, otel_llm, otel_llm with its "
           "ledger lock swapped for a no-op (unsafe, to measure the lock), and the SDK call alone. "
           "Figures: median calls/s over rounds, and the per-round ratio. "
           "Command: `.venv/bin/python -m bench.contention --json bench/contention.json`.", "",
           "| load | floor calls/s | otel_llm calls/s | otel_llm / floor (target >= 0.97) | otel_llm / no-lock | baseline calls/s |",
           "|---|---:|---:|---:|---:|---:|"]
    for kind, label in (("threads", f"{data['thread_count']} threads"), ("tasks", f"{data['task_count']} asyncio tasks")):
        s = data.get(kind)
        if not s:
            continue
        r, lock = s["otel_llm/floor"], s["otel_llm/otel_llm_nolock"]
        out.append(
            f"| {label} | {s['floor']['calls_per_s']:.0f} | {s['otel_llm']['calls_per_s']:.0f} | "
            f"{r['median']:.3f} [IQR {r['iqr']:.3f}, {r['min']:.2f}-{r['max']:.2f}] {_verdict(r['median'] >= CONTENTION_RATIO)} | "
            f"{lock['median']:.3f} [IQR {lock['iqr']:.3f}] | {s['baseline']['calls_per_s']:.0f} |")
    if data.get("note"):
        out += ["", data["note"]]
    return out + ["", _machine_line(data), ""]


def _collection(data: dict[str, Any]) -> list[str]:
    full, cpu, ours = data["collection_full_ms"], data["collection_full_cpu_ms"], data["collection_ours_ms"]
    lat = data["latency_us"]
    out = ["## One collection at the series bound (target 5)", "",
           f"A ledger filled through the real recording path with {data['calls']:,} calls of distinct models and "
           f"users, far past the caps: every sum at the bound (OTEL_LLM_METRIC_SERIES_LIMIT = {data['series_limit']}). "
           f"One `get_metrics_data()` reads {data['data_points']:,} data points, {data['our_data_points']:,} of them "
           "our sums. Command: `.venv/bin/python -m bench.collection --json bench/collection.json`.", "",
           "| measure | median | IQR | max | target |", "|---|---:|---:|---:|---|",
           f"| one collection, wall ms | {full['median']:.1f} | {full['iqr']:.1f} | {full['max']:.1f} | "
           f"<= {COLLECTION_MS:g} ms {_verdict(full['median'] <= COLLECTION_MS)} (median) |",
           f"| one collection, CPU ms of the collecting thread | {cpu['median']:.1f} | {cpu['iqr']:.1f} | {cpu['max']:.1f} | |",
           f"| our observable callbacks alone, wall ms | {ours['median']:.2f} | {ours['iqr']:.2f} | {ours['max']:.2f} | |",
           "",
           "The rest of a collection is the OpenTelemetry SDK's own work per observation (attribute cleaning and "
           "hashing, about 15 µs per data point): our callbacks hand it a cached attribute dict per series and take "
           "no lock. So a collection can hold a call up only through the GIL, like any busy Python thread. Call "
           "latency of a thread making calls on existing series, in paired windows (µs; median over windows, and the "
           f"worst window's maximum; switch interval {data['switch_interval_ms']:.0f} ms):", "",
           "| meanwhile | p50 | p99 | max (median window) | max (worst window) | calls per window |",
           "|---|---:|---:|---:|---:|---:|"]
    for c, label in (("alone", "nothing"), ("busy", "a thread spinning pure Python"),
                     ("collecting", "a thread collecting back to back")):
        s = lat[c]
        out.append(f"| {label} | {s['p50']['median']:.0f} | {s['p99']['median']:.0f} | {s['max']['median']:.0f} | "
                   f"{s['max']['max']:.0f} | {s['calls']['median']:.0f} |")
    if data.get("note"):
        out += ["", data["note"]]
    return out + ["", _machine_line(data), ""]


_VARIANTS = {  # bench/rules_scale.py's variants, as the table names them
    "shipped": "shipped, apps with the rollups",
    "shipped-raw": "shipped, apps without the rollups (older otel_llm: raw path)",
    "before": "before issue 20 (per raw series)",
    "plain": "plain `increase()`",
    "preagg": "pre-aggregated in Prometheus (not shipped)",
}


def _rules(data: list[dict[str, Any]]) -> list[str]:
    out = ["## The budget rules at scale (target 6; `make bench-rules`)", "",
           "A real Prometheus scrapes synthetic apps exposing `otel_llm_cost_USD_total` for users x 4 models x 5 keys "
           "x 5 replicas raw series, each growing every scrape, with `otel_llm_process_start_time_seconds` and (as "
           "otel_llm exports them since issue 20) the per-process rollups `otel_llm_cost_by_scope_USD_total` and "
           "`otel_llm_cost_by_model_USD_total`. It evaluates the shipped rules (prometheus/rules), the same with apps "
           "that export no rollups (an older otel_llm: every raw series on the raw path), the rules before issue 20 "
           "(commit 9c8ab69: the exact steps per raw series), or plain `increase()` rules giving the same per-scope "
           "windows (global, user, team, key x 5m, 30m, 1h, 6h, 24h). Scrape and group interval shortened to 15 s so "
           "a run of 75 s sees several evaluations. Figures: `prometheus_rule_group_last_duration_seconds` per group "
           "(median, max), Prometheus RSS, head series (raw, rollups and recorded), and series written by recording "
           "rules. Command: `make bench-rules` (`python3 -m bench.rules_scale --json bench/rules_scale.json`; "
           "`--rules shipped,before,plain,shipped-raw` for every variant).", "",
           "| raw series | rules | heaviest group | median s | max s | other groups, max s | RSS MiB | head series | recorded series |",
           "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in data:
        groups = r["groups"]
        if not groups:
            continue
        heavy = max(groups, key=lambda g: groups[g]["median_s"])
        others = max((g["max_s"] for n, g in groups.items() if n != heavy), default=0.0)
        out.append(f"| {r['series']:,} | {_VARIANTS.get(r['rules'], r['rules'])} | {heavy} | {groups[heavy]['median_s']:.3f} | "
                   f"{groups[heavy]['max_s']:.3f} | {others:.3f} | {r['rss_mib']:.0f} | {r['head_series']:,.0f} | "
                   f"{r['recorded_series']:,} |")
    for variant in ("shipped", "shipped-raw"):
        runs = [r for r in data if r["rules"] == variant and r["groups"]]
        if runs:
            top = max(runs, key=lambda r: r["series"])
            worst = max(g["max_s"] for g in top["groups"].values())
            out += ["", f"Target, {_VARIANTS[variant]}: the shipped groups under {RULES_S:g} s per evaluation at "
                    f"{top['series']:,} raw series: worst evaluation {worst:.2f} s {_verdict(worst < RULES_S)}."]
    out += ["", "See docs/scaling.md (\"The budget rules at scale\") for the curve, the design and the series budget."]
    return out + ["", _machine_line(data), ""]


def _hotpath(data: dict[str, Any]) -> list[str]:
    out = ["## Targets 1-3: where the per-call time goes, and what changed (issue 20)", "",
           f"Measured {data['when']}. {data['profile']}", "",
           "| change | before | after | how measured |", "|---|---:|---:|---|"]
    out += [f"| {c} | {b} | {a} | {m} |" for c, b, a, m in data["changes"]]
    out += ["", data["ab"], ""]
    if data.get("declined"):  # an experiment measured and not taken (bench/experiments/)
        out += [data["declined"], ""]
    return out + [data["verdict"], ""]


_ABLATION_VARIANTS = {
    "floor": "the floor (the SDK work otel_llm asks for)",
    "floor_no_histograms": "the floor without its histogram records",
    "otel_llm": "otel_llm",
}


def _ablation(data: dict[str, Any], reading: str = "") -> list[str]:
    out = ["## Where the overhead goes in context (targets 1, 2 and 4)", "",
           "`bench.micro` times each piece in a tight loop, with hot caches; around a real call the SDK's own "
           "request building and response parsing evict them, and every piece costs more there. "
           f"`{data['command']}` (bench/ablate.py, git `{data['git']}`, {data['when']}, {data['seconds']} s) measures "
           "in that context: the real call, in one process, uninstrumented, with the floor's SDK work, with "
           "otel_llm, and with otel_llm with one piece replaced by a no-op (a knockout), the order shuffled "
           "every round. Figures are µs of process CPU per call above the same round's uninstrumented call; a "
           "piece's cost is otel_llm minus its knockout, paired round by round (median, 95% CI of the median).",
           ""]
    for r in data["results"]:
        above, pieces = r["above_off"], r["pieces"]
        out += [f"**{r['workload']}** ({r['rounds']} rounds of {r['calls']} calls; the uninstrumented call "
                f"{r['off_us_per_call']:.0f} µs):", "",
                "| in context | µs per call | IQR | 95% CI |", "|---|---:|---:|---|"]
        rows = [(label, above[name]) for name, label in _ABLATION_VARIANTS.items() if name in above]
        rows += [("  the floor's histogram records", r["floor_histograms"]),
                 ("  otel_llm above the floor", r["otel_llm_over_floor"])]
        rows += [(f"  cost of {p['label']}", p) for p in pieces.values()]
        out += [f"| {label} | {s['median']:.1f} | {s['iqr']:.1f} | [{s['ci_low']:.1f}, {s['ci_high']:.1f}] |"
                for label, s in rows]
        out.append("")
    if reading:
        out += [reading, ""]
    return out + [_machine_line(data), ""]


def _chunks(data: dict[str, Any]) -> list[str]:
    labels = {"added_us": "the app asked for usage", "we_asked_us": "otel_llm asked, and hides the usage chunk"}
    out = ["## Per streamed chunk, consecutive runs (target 3; `make bench-chunks`)", "",
           f"`bench.micro.per_chunk_in_process` in {len(data['runs'])} fresh processes one after the other, "
           f"{data['samples']} samples each (the figure `make bench` takes twice, above): a stream through "
           "otel_llm's proxy against the SDK's own stream of the same chunks in the same process, "
           "((ours200 - bare200) - (ours50 - bare50)) / 150 of process CPU per sample. Command: `make bench-chunks` "
           f"(`python -m bench.chunks --runs {len(data['runs'])} --json bench/chunks.json`), {data['when']}, "
           f"{data['seconds']} s.", "",
           "| run | path | µs per chunk | IQR | 95% CI | <= 1 µs |", "|---|---|---:|---:|---|---|"]
    for i, run in enumerate(data["runs"], 1):
        out += [f"| {i} | {label} | {run[k]['median']:.2f} | {run[k]['iqr']:.2f} | [{run[k]['ci_low']:.2f}, "
                f"{run[k]['ci_high']:.2f}] | {'CI clear' if run[k]['ci_high'] <= 1.0 else 'no'} |"
                for k, label in labels.items()]
    met = data["met"]
    out += ["", "Target 3, every run's CI under 1 µs: " + "; ".join(
        f"{label}: {_verdict(met[k])}" for k, label in labels.items()) + ".", ""]
    return out + [_machine_line(data), ""]


# Measured by hand on 2026-12-01: against 5cc0c0d, the code before crash loops were read (the bench file
# copied in), and the one-restart-a-day case after.
_RESTARTS_BEFORE = (
    ("before (5cc0c0d)", "1,439", 'exit 1: "two processes write under one id"', "-", "none"),
    ("before, one restart a day (`--run-minutes 1440`)", "29", "0.56 s", "517", "- / $164.16 read $164.16"),
    ("after (a802fcf), one restart a day", "29", "0.62 s", "265", "- / $164.16 read $164.16"),
)


def _report_restarts(data: dict[str, Any]) -> list[str]:
    day, month = data["day"], data["month_to_date"]
    out = ["## The report over a month with a crash-looping container (`make bench-report`)", "",
           f"One process (`job=\"worker\"`, `instance=\"pod-c\"`) lives {data['run_minutes']} minutes, dies and "
           "restarts under the same id, from the day before the month to the end of the day reported, exporting "
           "its cost and its start time once a minute; `promtool tsdb create-blocks-from openmetrics` writes the "
           "samples into a Prometheus that keeps 45 days, and `otel-llm report` (yesterday and its month to date, "
           "JSON) runs against it in the same process, its Prometheus queries counted. Command: `make bench-report` "
           f"(`.venv/bin/python -m bench.report_restarts --json bench/report_restarts.json`), {data['when']}.", "",
           "| | restarts in the month to date | report | queries | written / read (day, month to date) |",
           "|---|---:|---:|---:|---|"]
    out += [f"| {label} | {restarts} | {took} | {queries} | {figures} |"
            for label, restarts, took, queries, figures in _RESTARTS_BEFORE[:1]]
    out.append(f"| this run | {data['restarts_in_month_to_date']:,} | {data['seconds']} s | {data['queries']} "
               f"(longest {data['longest_query_chars'] / 1000:.1f}k characters, sent as POST) | "
               f"${day['written_usd']:.2f} / ${month['written_usd']:.2f} read ${day['report_usd']:.2f} / "
               f"${month['report_usd']:.2f} |")
    out += [f"| {label} | {restarts} | {took} | {queries} | {figures} |"
            for label, restarts, took, queries, figures in _RESTARTS_BEFORE[1:]]
    out += ["", "Before, a period with more than 100 restarts of one id stopped the report, and each restart cost "
            "about two queries per figure; now a restarted process's runs are read 50 to a query (PromQL's `@`), "
            "and only a start time that goes back (two processes under one id) stops it. "
            "`tests/bench/test_report_restarts_bench.py` checks the bench still reads its month exactly (no timing "
            "asserted).", ""]
    return out + [_machine_line(data), ""]


def markdown(suffix: str = ".json") -> str:
    """The sections whose JSON exists, or an empty string. `suffix` ".quick.json": a quick run's parts."""
    lines: list[str] = []
    contention, collection = _load(f"contention{suffix}"), _load(f"collection{suffix}")
    rules = _load("rules_scale.json")
    hotpath = _load("hotpath.json")
    if hotpath:
        lines += _hotpath(hotpath)
    ablation = _load("ablation.json")
    if ablation:
        lines += _ablation(ablation, (hotpath or {}).get("ablation_reading", ""))
    if contention:
        lines += _contention(contention)
    if collection:
        lines += _collection(collection)
    if rules:
        lines += _rules(rules)
    chunks, restarts = _load("chunks.json"), _load("report_restarts.json")
    if chunks:
        lines += _chunks(chunks)
    if restarts:
        lines += _report_restarts(restarts)
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())

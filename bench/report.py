"""Targets (PASS/FAIL) and the generated BENCHMARKS.md, from the results dict of `bench.run`."""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["PACKAGES", "markdown", "summary", "targets"]

PACKAGES = (
    "openai", "httpx2", "opentelemetry-api", "opentelemetry-sdk", "opentelemetry-instrumentation", "otel-llm",
    "opentelemetry-instrumentation-genai-openai", "opentelemetry-util-genai",
"opentelemetry-instrumentation-openai",
    "openinference-instrumentation-openai", "wrapt", "pydantic",
)
PEERS = ("genai_openai", "openllmetry", "openinference")
# Targets (issue 6, revised by issue 20), checked and printed as PASS/FAIL: every threshold lives here.
VS_PEER = 1.0  # otel_llm non-streaming overhead ahead of the best peer (issue 20 retired "half the best peer") ...
VS_FLOOR = 1.15  # ... and <= 1.15x the floor, sync and async, chat and embeddings
VS_FLOOR_STREAM = 1.3  # a streamed call's fixed cost (open, first chunk, end; chunks excluded) against the floor
CHUNK_US = 1.0  # per streamed chunk
PRICE_US = 2.0  # price lookup per call after warm-up
MEMORY_BLOCKS_PER_CALL = 0.01
# Allocated-block growth allowed between the two memory readings: 0.01 per call (a leak of one object
# per call reads >= 1.0) plus a constant for interpreter noise (interned strings, free lists).
MEMORY_SLACK_BLOCKS = 100
LABELS = {
    "baseline": "baseline",
    "floor": "floor (SDK only)",
    "otel_llm": "**otel_llm**",
    "genai_openai": "official genai-openai",
    "openllmetry": "OpenLLMetry",
    "openinference": "OpenInference",
}
WORKLOAD_LABELS = {
    "chat": "chat, sync",
    "chat_async": "chat, async",
    "stream": "stream (50 chunks), sync",
    "stream_async": "stream (50 chunks), async",
    "stream_200": "stream (200 chunks), sync",
    "stream_1": "stream (1 chunk), sync",
    "stream_1_async": "stream (1 chunk), async",
    "embeddings": "embeddings, sync",
    "embeddings_async": "embeddings, async",
}


def _status(results: dict[str, Any], name: str, workload: str) -> str:
    return str(results.get("emission", {}).get(name, {}).get(workload, {}).get("status", "not run"))


def _ok(results: dict[str, Any], name: str, workload: str) -> bool:
    return _status(results, name, workload) == "ok"


def _best_peer(results: dict[str, Any], workload: str) -> tuple[str, dict[str, float]] | None:
    ovh = results.get("overhead_us", {}).get(workload, {})
    peers = [(n, ovh[n]) for n in PEERS if n in ovh and _ok(results, n, workload)]
    return min(peers, key=lambda p: p[1]["median"]) if peers else None


def _target(name: str, measured: str, limit: str, ok: bool | None, why: str = "", spread: str = "") -> dict[str, Any]:
    status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
    return {"target": name, "measured": measured, "limit": limit, "status": status, "note": why, "spread": spread}


def _spread_note(ours: dict[str, float], limit: float, other_iqr: float = 0.0) -> str:
    """Is the verdict resolved? IQR of the per-round values against the margin to the limit (the
    issue's rule), and whether the 95% CI of our median excludes the limit."""
    iqr = max(ours["iqr"], other_iqr)
    margin = abs(limit - ours["median"])
    ci_clear = not (ours["ci_low"] <= limit <= ours["ci_high"])
    verdict = "resolved" if (iqr < margin and ci_clear) else (
        "CI clear, IQR wide" if ci_clear else "NOT resolved (more rounds / --sample-ms)")
    return (f"IQR {iqr:.1f} {'<' if iqr < margin else '>='} margin {margin:.1f}; "
            f"CI [{ours['ci_low']:.1f}, {ours['ci_high']:.1f}]: {verdict}")


def _versus_floor(label: str, ours: dict[str, float], floor: dict[str, float] | None, ratio: float) -> dict[str, Any]:
    """otel_llm's overhead against `ratio` times the floor's, on one workload."""
    if floor is None:
        return _target(label, f"{ours['median']:.1f} µs", "-", None, "floor not run")
    limit = ratio * floor["median"]
    measured = f"{ours['median']:.1f} µs = {ours['median'] / floor['median']:.2f}x floor" if floor["median"] > 0 else "-"
    return _target(label, measured, f"{limit:.1f} µs (floor {floor['median']:.1f})", ours["median"] <= limit,
                   spread=_spread_note(ours, limit, floor["iqr"]))


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ovh = results.get("overhead_us", {})
    ours_skip = results.get("skipped", {}).get("otel_llm")
    for workload in ("chat", "chat_async", "embeddings", "embeddings_async"):
        label = WORKLOAD_LABELS[workload]
        ours = ovh.get(workload, {}).get("otel_llm")
        if ours is None or not _ok(results, "otel_llm", workload):
            why = ours_skip or f"otel_llm {_status(results, 'otel_llm', workload)}"
            out.append(_target(f"{label}: otel_llm <= {VS_PEER:g}x best peer", "-", "-", None, why))
            out.append(_target(f"{label}: otel_llm <= {VS_FLOOR:g}x floor", "-", "-", None, why))
            continue
        best = _best_peer(results, workload)
        if best is None:
            out.append(_target(f"{label}: otel_llm <= {VS_PEER:g}x best peer", f"{ours['median']:.1f} µs", "-", None,
                               "no peer emitted spans and metrics"))
        else:
            limit = VS_PEER * best[1]["median"]
            out.append(_target(
                f"{label}: otel_llm <= {VS_PEER:g}x best peer", f"{ours['median']:.1f} µs",
                f"{limit:.1f} µs ({VS_PEER:g}x {LABELS[best[0]]} {best[1]['median']:.1f})", ours["median"] <= limit,
                spread=_spread_note(ours, limit, best[1]["iqr"])))
        out.append(_versus_floor(f"{label}: otel_llm <= {VS_FLOOR:g}x floor", ours, ovh.get(workload, {}).get("floor"),
                                 VS_FLOOR))
    # Target 2: a streamed call's fixed cost, measured on a stream of one content chunk (the floor does nothing per
    # chunk; ours, under 1 µs a chunk, adds about 3 µs for its three chunks).
    for workload in ("stream_1", "stream_1_async"):
        label = f"streamed call's fixed cost ({WORKLOAD_LABELS[workload]}): otel_llm <= {VS_FLOOR_STREAM:g}x floor"
        ours = ovh.get(workload, {}).get("otel_llm")
        if ours is None or not _ok(results, "otel_llm", workload):
            out.append(_target(label, "-", "-", None, ours_skip or f"otel_llm {_status(results, 'otel_llm', workload)}"))
            continue
        out.append(_versus_floor(label, ours, ovh.get(workload, {}).get("floor"), VS_FLOOR_STREAM))
    # Per chunk (target 3), in context: a stream through otel_llm's proxy against the SDK's own stream in the
    # same process, (200-chunk - 50-chunk) / 150, in two consecutive runs; met when both CIs clear the limit.
    runs = [r for r in results.get("per_chunk_in_context") or [] if r.get("added_us")]
    label = f"per streamed chunk <= {CHUNK_US:g} µs (in context, two consecutive runs; the app asked for usage)"
    if len(runs) == 2:
        both = all(r["added_us"]["ci_high"] <= CHUNK_US for r in runs)
        figure = " / ".join(f"{r['added_us']['median']:.2f}" for r in runs) + " µs"
        spread = "; ".join(f"{r['where']}: 95% CI [{r['added_us']['ci_low']:.2f}, {r['added_us']['ci_high']:.2f}]"
                           for r in runs)
        out.append(_target(label, figure, f"{CHUNK_US:g} µs, CI clear in both", both, spread=spread))
        asked = [r for r in runs if r.get("we_asked_us")]
        if len(asked) == 2:
            out.append(_target(
                f"per streamed chunk <= {CHUNK_US:g} µs (the same, otel_llm asked for usage and hides its chunk)",
                " / ".join(f"{r['we_asked_us']['median']:.2f}" for r in asked) + " µs",
                f"{CHUNK_US:g} µs, CI clear in both", all(r["we_asked_us"]["ci_high"] <= CHUNK_US for r in asked),
                spread="; ".join(f"{r['where']}: 95% CI [{r['we_asked_us']['ci_low']:.2f}, "
                                 f"{r['we_asked_us']['ci_high']:.2f}]" for r in asked)))
    else:
        skip = next((r.get("skip") for r in results.get("per_chunk_in_context") or [] if r.get("skip")), "not run")
        out.append(_target(label, "-", f"{CHUNK_US:g} µs", None, ours_skip or skip))
    pricing = results.get("pricing")
    if not pricing or "skip" in pricing:
        out.append(_target(f"price lookup per call <= {PRICE_US:g} µs", "-", f"{PRICE_US:g} µs", None,
                           (pricing or {}).get("skip", "not run")))
    else:
        out.append(_target(f"price lookup per call <= {PRICE_US:g} µs", f"{pricing['rates_and_cost_us']:.2f} µs",
                           f"{PRICE_US:g} µs", pricing["rates_and_cost_us"] <= PRICE_US))
    mem = results.get("memory", {})
    if "skip" in mem or not mem:
        out.append(_target("no memory growth", "-", "-", None, mem.get("skip", "not run")))
    else:
        first, last = mem["checkpoints"][-2]["calls"], mem["checkpoints"][-1]["calls"]
        calls = last - first
        limit = MEMORY_BLOCKS_PER_CALL * calls + MEMORY_SLACK_BLOCKS
        out.append(_target(
            f"no memory growth ({first:,} -> {last:,} calls)",
            f"{mem['blocks_growth']:+,} blocks ({mem['blocks_per_call']:+.4f}/call), "
            f"malloc {mem['malloc_growth_bytes'] / 1024:+,.0f} KiB, RSS {mem['rss_growth_bytes'] / 1024:+,.0f} KiB",
            f"<= {limit:,.0f} blocks ({MEMORY_BLOCKS_PER_CALL}/call + {MEMORY_SLACK_BLOCKS} for noise)", mem["blocks_growth"] <= limit))
    return out


def _cell(s: dict[str, float] | None, digits: int = 1) -> str:
    if not s:
        return "-"
    return f"{s['median']:.{digits}f} [{s['iqr']:.{digits}f}]"


def _overhead_table(results: dict[str, Any]) -> list[str]:
    ovh = results.get("overhead_us", {})
    base = results.get("baseline_us", {})
    names = [n for n in ("floor", "otel_llm", *PEERS) if any(n in by for by in ovh.values())]
    lines = ["| workload | baseline µs/call | " + " | ".join(LABELS[n] for n in names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    excluded: list[str] = []
    for workload, label in WORKLOAD_LABELS.items():
        if workload not in ovh:
            continue
        cells = []
        for n in names:
            s = ovh[workload].get(n)
            if s is None:
                cells.append("-")
            elif _ok(results, n, workload):
                cells.append(_cell(s))
            else:
                cells.append(f"excluded: {_status(results, n, workload)}")
                excluded.append(f"{LABELS[n]} / {label}: {_cell(s)} µs measured, "
                                f"but {_status(results, n, workload)}")
        lines.append(f"| {label} | {_cell(base.get(workload), 0)} | " + " | ".join(cells) + " |")
    chunk = results.get("per_chunk_us", {})
    if chunk:
        cells = []
        for n in names:
            s = chunk.get(n)
            ok = _ok(results, n, "stream") and _ok(results, n, "stream_200")
            cells.append(_cell(s, 2) if (s and ok) else ("excluded" if s else "-"))
        lines.append("| per streamed chunk, marginal ((200-chunk - 50-chunk) / 150) | - | " + " | ".join(cells) + " |")
        cells = []
        for n in names:
            s = ovh.get("stream", {}).get(n)
            ok = _ok(results, n, "stream")
            cells.append(f"{s['median'] / 50:.2f}" if (s and ok) else "-")
        lines.append("| per streamed chunk, amortized (50-chunk call / 50) | - | " + " | ".join(cells) + " |")
    floor_ops = ovh.get("floor_ops", {}).get("floor")
    floor_counters = ovh.get("floor_ops_counters", {}).get("floor")
    if floor_ops:
        lines.append("")
        lines.append(f"Floor ops timed alone (no openai call, same loop; the span with 26 attributes and 3 "
                     f"histogram records in its context, all otel_llm asks of the SDK per chat call): "
                     f"{_cell(floor_ops)} µs per call"
                     + (f". The same plus otel_llm's sums as 6 SDK `Counter.add` calls instead of its ledger: "
                        f"{_cell(floor_counters)} µs." if floor_counters else "."))
    in_context = [r for r in results.get("per_chunk_in_context") or [] if r.get("added_us")]
    if in_context:
        lines.append("")
        lines.append(f"Per streamed chunk, in context ({in_context[0]['how']}; bench.micro.per_chunk_in_process, "
                     f"{in_context[0]['added_us']['n']} samples a run): this is the per-chunk target's figure, all "
                     "that otel_llm's presence adds per chunk, its effect on the SDK's own parsing of the next chunk "
                     "included. The other stream comes from the client's own `post()`, which the SDK parses alike and "
                     "otel_llm does not wrap, so the two are read a few ms apart in one process with nothing switched "
                     "between them; switching otel_llm off and on between readings, as this figure was measured "
                     "before, read drift of 0.5% as 0.5 µs a chunk.")
        lines.append("")
        lines.append("| run | the app asked for usage: µs per chunk | IQR | 95% CI | otel_llm asked, and hides the "
                     "usage chunk: µs per chunk | IQR | 95% CI |")
        lines.append("|---|---:|---:|---|---:|---:|---|")
        for r in in_context:
            a, b = r["added_us"], r.get("we_asked_us") or {}
            lines.append(f"| {r['where']} | **{a['median']:.2f}** | {a['iqr']:.2f} | [{a['ci_low']:.2f}, "
                         f"{a['ci_high']:.2f}] | "
                         + (f"**{b['median']:.2f}** | {b['iqr']:.2f} | [{b['ci_low']:.2f}, {b['ci_high']:.2f}] |"
                            if b else "- | - | - |"))
    runs = results.get("per_chunk_paired") or []
    paired = [r for r in runs if r.get("added_us") and not r.get("burn")]
    check = next((r for r in runs if r.get("added_us") and r.get("burn")), None)
    if paired:
        lines.append("")
        lines.append(f"Per streamed chunk, our code's direct cost ({paired[0]['how']}; "
                     "bench.micro.per_chunk_interleaved): "
                     + "; ".join(f"{r['where']}, {r['added_us']['n']} pairs: **{r['added_us']['median']:.2f} µs**, "
                                 f"IQR {r['added_us']['iqr']:.2f}, 95% CI of the median "
                                 f"[{r['added_us']['ci_low']:.2f}, {r['added_us']['ci_high']:.2f}]" for r in paired)
                     + ". Each chunk is paired with its twin a few µs later, so drift cancels and the CI is "
                     "tight; but both streams run in the same instrumented process, one step apart, so what our "
                     "code costs the SDK's parsing of the next chunk lands on both and cancels too: this is a "
                     "lower bound of the target's figure above, not a replacement for it.")
        if check is not None:
            gained = check["added_us"]["median"] - paired[-1]["added_us"]["median"]
            lines.append(f"The method checked: with {check['burn']} additions done for every chunk our stream reads "
                         f"({check['burn_hot_us']:.2f} µs in a tight loop) the same process reads "
                         f"{check['added_us']['median']:.2f} µs (95% CI [{check['added_us']['ci_low']:.2f}, "
                         f"{check['added_us']['ci_high']:.2f}]), {gained:+.2f} µs: known work reads as added.")
    direct = results.get("per_chunk_direct") or {}
    if "added_us" in direct:
        lines.append("")
        lines.append(f"Per streamed chunk, otel_llm timed directly ({direct['how']}): "
                     f"{direct['proxy_us']:.2f} - {direct['bare_us']:.2f} = {direct['added_us']:.2f} µs added. "
                     "Hot caches and pre-parsed chunks: a lower bound. In an app the same code runs between the "
                     "SDK's own parsing of each chunk, where it costs more (the in-context figure).")
    if excluded:
        lines.append("")
        lines.append("Excluded (measured, not comparable: did not emit both spans and metrics):")
        lines.extend(f"- {e}" for e in excluded)
    return lines


def _relative_table(results: dict[str, Any]) -> list[str]:
    ovh = results.get("overhead_us", {})
    lines = ["| workload | otel_llm µs | floor µs | otel_llm / floor | best peer | best peer µs | otel_llm / best peer |",
             "|---|---:|---:|---:|---|---:|---:|"]
    for workload, label in WORKLOAD_LABELS.items():
        ours = ovh.get(workload, {}).get("otel_llm")
        if ours is None or not _ok(results, "otel_llm", workload):
            continue
        floor = ovh[workload].get("floor")
        best = _best_peer(results, workload)
        ratio_floor = f"{ours['median'] / floor['median']:.2f}x" if floor and floor["median"] > 0 else "-"
        ratio_peer = f"{ours['median'] / best[1]['median']:.2f}x" if best and best[1]["median"] > 0 else "-"
        lines.append(f"| {label} | {ours['median']:.1f} | {floor['median'] if floor else float('nan'):.1f} | "
                     f"{ratio_floor} | {LABELS[best[0]] if best else '-'} | "
                     f"{best[1]['median'] if best else float('nan'):.1f} | {ratio_peer} |")
    return lines if len(lines) > 2 else []


def _emission_table(results: dict[str, Any]) -> list[str]:
    lines = ["| contender | workload | spans/call | histogram records/call | counter series | span attributes "
             "| metrics | status |", "|---|---|---:|---:|---:|---:|---|---|"]
    for name, by in results.get("emission", {}).items():
        for workload, e in by.items():
            calls = max(e["calls"], 1)
            lines.append(f"| {LABELS.get(name, name)} | {workload} | {e['spans'] / calls:.1f} | "
                         f"{e['histogram_records'] / calls:.1f} | {e['counter_points']} | {e['span_attributes']} | "
                         f"{', '.join(e['metric_names']) or '-'} | {e['status']} |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    pk = env["packages"]
    timing = results.get("timing", {})
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [
        "# Benchmarks",
        "",
        f"Generated by `{results['config']['command']}` (bench/run.py) on {when}; do not edit by hand, "
        "re-run `make bench`. Raw numbers: `bench/results.json`.",
    ]
    if results["config"]["quick"]:
        md += ["", "**Quick smoke run: too few rounds for the numbers to mean anything.**"]
    md += [
        "",
        "## Machine and versions",
        "",
        f"- command: `{results['config']['command']}`, git `{env.get('git', '')}`, "
        f"{timing.get('rounds', 0)} rounds in {timing.get('seconds', 0):.0f} s, whole run {results.get('elapsed_s', 0):.0f} s",
        f"- machine: `nproc` = {env['nproc']}, {env['cpu_model']}, {env['platform']}",
        f"- Python {env['python']}; " + ", ".join(f"{k} {v}" for k, v in pk.items() if v),
        "- not installed: " + (", ".join(k for k, v in pk.items() if not v) or "none"),
        "",
        "## Targets",
        "",
        "| target | measured | limit | status | spread | note |",
        "|---|---|---|---|---|---|",
    ]
    md += [f"| {t['target']} | {t['measured']} | {t['limit']} | **{t['status']}** | {t['spread']} | {t['note']} |"
           for t in results.get("targets", [])]
    md += [
        "",
        "## CPU overhead per call",
        "",
        "µs of process CPU per call that each contender adds: its process with the contender switched on "
        "minus the same process with it switched off, in the same round; median [IQR] over "
        f"{timing.get('rounds', 0)} rounds. Baseline column: the un-instrumented call itself, in its own process.",
        "",
        *_overhead_table(results),
        "",
        *_cross_process_note(results),
    ]
    rel = _relative_table(results)
    if rel:
        md += ["### otel_llm relative to the floor and the best peer", "", *rel, ""]
    if results.get("skipped"):
        md += ["### Not run", ""]
        md += [f"- {LABELS.get(n, n)}: {why}" for n, why in results["skipped"].items()]
        md += [""]
    md += ["## What each contender emitted", "",
           "Counted before timing: spans from the exporter, histogram records and counter series from a delta "
           "metric reader. A contender must emit spans and metrics to be compared.", "",
           *_emission_table(results), ""]
    mem = results.get("memory", {})
    md += ["## Memory", ""]
    if "skip" in mem or not mem:
        md += [f"Skipped: {mem.get('skip', 'not run')}", ""]
    else:
        md += ["otel_llm worker, chat-heavy mix (1 in 50 calls a 50-chunk stream, 1 in 50 embeddings), each call "
               "with a distinct user id through `otel_llm.attributes`. A warm-up past the user-label limit "
               "(OTEL_LLM_METRIC_USER_LIMIT, 1,000) comes first: until then each new user is new metric series "
               "(bounded by design); afterwards memory must stay flat. Spans flushed, delta metrics collected and "
               "`gc.collect()` before each reading. Blocks: `sys.getallocatedblocks()`; malloc: glibc "
               "`mallinfo2()` in-use bytes (sees objects > 512 B and C extensions).", "",
               "| reading | allocated blocks | malloc in use MiB | RSS MiB | gc objects |", "|---|---:|---:|---:|---:|"]
        md += [f"| {p['label']} | {p['blocks']:,} | {p['malloc_bytes'] / 2**20:.2f} | {p['rss_bytes'] / 2**20:.1f} | "
               f"{p['gc_objects']:,} |" for p in mem["checkpoints"]]
        md += ["", f"The warm-up (one-off, bounded by the user limit) cost {mem['warmup_blocks']:+,} blocks and "
               f"{mem['warmup_rss_bytes'] / 2**20:+.1f} MiB RSS.", ""]
    pr = results.get("pricing")
    md += ["## Price lookup", ""]
    if not pr or "skip" in pr:
        md += [f"Skipped: {(pr or {}).get('skip', 'not run')}", ""]
    else:
        md += [f"`PriceBook.rates(...)` + `Rates.cost(Usage)` for `{pr['model']}` ({pr['source']}, "
               f"${pr['usd_per_call']:.6f}/call) after warm-up: **{pr['rates_and_cost_us']:.2f} µs** per call "
               f"(rates {pr['rates_us']:.2f} µs, cost {pr['cost_us']:.2f} µs; loop overhead subtracted).", ""]
    st = results.get("startup")
    md += ["## Start-up", ""]
    if not st:
        md += ["Skipped.", ""]
    else:
        md += [f"CPU (user+sys) of `python -c ...`, median of {st['reps']} interleaved runs; "
               "*added* is against `import openai` + creating the OTel SDK providers.", "",
               "| variant | CPU ms | IQR | wall ms | added ms | added vs bare `import openai` |",
               "|---|---:|---:|---:|---:|---:|"]
        for name, v in st["variants"].items():
            md.append(f"| {LABELS.get(name, name)} | {v['cpu_ms']['median']:.0f} | {v['cpu_ms']['iqr']:.0f} | "
                      f"{v['wall_ms']['median']:.0f} | {v['added_vs_sdk_ms']:+.0f} | "
                      f"{v['added_vs_import_openai_ms']:+.0f} |")
        if st.get("failed"):
            md += ["", "Could not start: " + ", ".join(f"{k} ({v})" for k, v in st["failed"].items())]
        md += [""]
    md += [
        "## Method",
        "",
        "- The real `openai` SDK (sync and async clients) against `httpx2.MockTransport` answering canned "
        "responses: chat completion with `prompt_tokens_details.cached_tokens` and "
        "`completion_tokens_details.reasoning_tokens`; SSE stream of 50 (or 200, or 1) content chunks, a finish "
        "chunk and a usage chunk; embeddings (1,536 dims, base64 as the SDK requests). No sockets.",
        "- Real OTel SDK in every worker: `TracerProvider` + `BatchSpanProcessor` into an exporter that counts "
        "and drops; `MeterProvider` + `InMemoryMetricReader` (delta temporality, collected only outside timing).",
        "- Each contender in its own long-lived process (peers patch `openai` globally), switched on and off "
        "there between samples (`uninstrument()` / `instrument()` with the same arguments; the floor drops its "
        "SDK calls). A contender must emit no spans and no histogram records while switched off, else it is "
        "paired with the baseline process instead. A round visits the baseline and every contender in turn "
        "(order reversed every other round); each contender runs every workload switched on, then off (or "
        "off, then on, alternating); overhead = on - off of the same round; median, IQR and a 95% CI of the "
        "median over rounds. CPU = `time.process_time()` (whole process, so the span export thread counts), "
        "n calls per sample.",
        "- Message-content capture off for every contender (OpenLLMetry and OpenInference default to on).",
        "- Floor: exactly what otel_llm asks of the SDK per call, with none of its code: one CLIENT span "
        "with the same attributes (26 on chat, 13 at start and 13 at the end; 29 on streams; 15 on embeddings) started and ended, "
        "and its histogram records in the span's context, so exemplars are sampled as for otel_llm (duration, token "
        "usage input/output: 3 on chat, 2 on embeddings; streams add time-to-first-chunk). otel_llm's sums are a ledger read by observable "
        "counters once per collection, not SDK work per call; `floor_ops_counters` shows what they would "
        "cost as SDK counters. Attribute dicts built per call.",
        "- Per streamed chunk: marginal = (overhead of a 200-chunk stream - of a 50-chunk stream) / 150, per "
        "round, so per-call costs cancel.",
        "- A streamed call's fixed cost (open, first chunk, end; chunks excluded): the overhead on a stream of one "
        "content chunk (then the finish and usage chunks), against the floor's on the same stream. The 50-chunk "
        "stream's ratio to the floor is not it: otel_llm does work per chunk, the floor none.",
        "",
    ]
    from bench import scale_report  # issue 20's parts: contention, one collection, rules at scale

    quick = bool(results["config"]["quick"])
    scale = scale_report.markdown(suffix=".quick.json" if quick else ".json")
    if scale:
        md += [scale]
    return "\n".join(md)


def _cross_process_note(results: dict[str, Any]) -> list[str]:
    """Chat overheads paired across processes (contender on - the baseline process), for comparison."""
    cross = results.get("cross_process_us", {})
    ovh = results.get("overhead_us", {})
    unswitched = [name for name, by in results.get("emission", {}).items()
                  if any(e.get("off_clean") is False for e in by.values())]
    lines = []
    if unswitched:
        lines += [", ".join(LABELS.get(n, n) for n in unswitched) + " still emitted spans or histogram records "
                  "after `uninstrument()`, so switching it on again could stack a second copy: its worker was "
                  "replaced by a fresh process, never switched, and it is paired with the baseline process of "
                  "the same round instead.", ""]
    rows = []
    for workload in ("chat", "chat_async"):
        for name in ("floor", "otel_llm", *PEERS):
            a, b = ovh.get(workload, {}).get(name), cross.get(workload, {}).get(name)
            if a and b and _ok(results, name, workload) and name not in unswitched:
                rows.append(f"| {WORKLOAD_LABELS[workload]} | {LABELS[name]} | {_cell(a)} | {_cell(b)} |")
    if not rows:
        return lines
    return [*lines, "Why each contender is paired with itself: the same samples paired across processes (contender "
            "switched on minus the baseline process of the same round) carry each process's own speed, a few "
            "percent of a ~1 ms call either way, in the difference and in its spread:", "",
            "| workload | contender | switched on - off, same process | on - baseline process |",
            "|---|---|---:|---:|", *rows, ""]


def summary(results: dict[str, Any]) -> str:
    lines = ["", "== bench targets =="]
    for t in results.get("targets", []):
        extra = f" ({t['note']})" if t["note"] else ""
        lines.append(f"{t['status']:4}  {t['target']}: {t['measured']} vs {t['limit']}{extra}")
    ovh = results.get("overhead_us", {})
    if ovh:
        lines.append("== overhead µs/call, median [IQR] ==")
        for workload, by in ovh.items():
            lines.append(f"{workload:17} " + "  ".join(
                f"{n}={_cell(s)}" + ("" if workload.startswith("floor_ops") or _ok(results, n, workload)
                                     else "(excl)")
                for n, s in by.items()))
    return "\n".join(lines)

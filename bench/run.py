"""`make bench`: CPU overhead per call of otel_llm against no instrumentation, the SDK floor and peers.

Method (BENCHMARKS.md repeats it next to the numbers):
- every contender (baseline, floor, otel_llm, each peer) is a long-lived worker process; only one
  runs at a time. A round visits every worker in turn (order reversed on odd rounds); a contender
  runs every workload switched on and switched off in its own process (order alternating);
- a sample is n calls (n calibrated on the baseline to --sample-ms of CPU); the figure is
  `time.process_time()` per call, so the span processor's export thread is counted too;
- overhead = on - off within the same process and round (pairing across processes would carry each
  process's own speed, a few percent of a call); reported: median over rounds, IQR, and a 95%
  confidence interval of the median (order statistics);
- before any number is reported the contender must have emitted spans AND metrics for that workload
  (counted from the exporter and a delta metric reader), else it is marked and excluded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench import report

__all__ = ["Config", "main", "run"]

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("genai_openai", "openllmetry", "openinference")
DEFAULT_CONTENDERS = ("baseline", "floor", "otel_llm", *PEERS)
TIMED_WORKLOADS = ("chat", "chat_async", "stream", "stream_async", "stream_200", "stream_1", "stream_1_async",
                   "embeddings", "embeddings_async", "floor_ops", "floor_ops_counters")
DIRECT = ("floor_ops", "floor_ops_counters")  # absolute costs timed in the floor worker, not paired
STREAM_CHUNKS = {"stream": 50, "stream_async": 50, "stream_200": 200, "stream_1": 1, "stream_1_async": 1}



@dataclass
class Config:
    quick: bool = False
    contenders: tuple[str, ...] = DEFAULT_CONTENDERS
    workloads: tuple[str, ...] = TIMED_WORKLOADS
    min_rounds: int = 30
    max_rounds: int = 80
    sample_ms: float = 60.0
    timing_budget_s: float = 240.0
    memory_checkpoints: tuple[int, ...] = (1_000, 100_000)
    startup_reps: int = 15
    pricing: bool = True
    startup: bool = True
    python: str = sys.executable
    out_md: Path | None = ROOT / "BENCHMARKS.md"
    out_json: Path | None = ROOT / "bench" / "results.json"
    command: str = "make bench"
    strict: bool = False
    log: IO[str] = field(default_factory=lambda: sys.stderr)

    @classmethod
    def quick_config(cls, **overrides: Any) -> Config:
        base: dict[str, Any] = dict(quick=True, min_rounds=4, max_rounds=4, sample_ms=8.0, timing_budget_s=20.0,
                                    memory_checkpoints=(100, 600), startup_reps=2, command="make bench-quick")
        base.update(overrides)
        return cls(**base)


# --- workers ----------------------------------------------------------------------------------
class WorkerProc:
    """A `bench.worker` subprocess; one JSON line per request and per answer."""

    def __init__(self, name: str, python: str, log: IO[str]) -> None:
        self.name = name
        self.log = log
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [python, "-m", "bench.worker", name], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        )
        hello = self._read()
        self.switchable = True  # may be switched off and on (see check_emissions)
        self.ready: bool = hello.get("ready", False)
        self.skip: str = hello.get("skip", "")
        self.version: str = hello.get("version", "")
        if hello.get("traceback"):
            log.write(f"[{name}] {hello['traceback']}")
        if not self.ready:
            self.proc.wait(timeout=30)

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(timeout=30)
            return {"ready": False, "skip": f"worker exited with code {code} (see stderr above)"}
        result: dict[str, Any] = json.loads(line)
        return result

    def ask(self, op: str, **kwargs: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if not answer.get("ok"):
            raise RuntimeError(f"worker {self.name}: {op}: {answer.get('error', answer.get('skip'))}\n"
                               f"{answer.get('traceback', '')}")
        return answer["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


# --- statistics -------------------------------------------------------------------------------
def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, IQR and a distribution-free 95% CI of the median."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        return {}
    if n == 1:
        q1 = q3 = xs[0]
    else:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    half = 1.96 * math.sqrt(n) / 2
    lo = max(math.floor(n / 2 - half), 0)
    hi = min(math.ceil(n / 2 + half), n - 1)
    return {"median": statistics.median(xs), "q1": q1, "q3": q3, "iqr": q3 - q1,
            "ci_low": xs[lo], "ci_high": xs[hi], "n": n}


# --- phases -----------------------------------------------------------------------------------
def _log(cfg: Config, msg: str) -> None:
    cfg.log.write(f"[bench] {msg}\n")
    cfg.log.flush()


def start_workers(cfg: Config) -> tuple[dict[str, WorkerProc], dict[str, str]]:
    workers: dict[str, WorkerProc] = {}
    skipped: dict[str, str] = {}
    for name in cfg.contenders:
        t0 = time.perf_counter()
        w = WorkerProc(name, cfg.python, cfg.log)
        if w.ready:
            workers[name] = w
            _log(cfg, f"{name}: ready in {time.perf_counter() - t0:.1f}s ({w.version or 'in-tree'})")
        else:
            skipped[name] = w.skip
            _log(cfg, f"{name}: SKIPPED - {w.skip}")
    if "baseline" not in workers:
        raise SystemExit("the baseline worker did not start: " + skipped.get("baseline", "not requested"))
    return workers, skipped


def check_emissions(cfg: Config, workers: dict[str, WorkerProc]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per contender and workload: what it emitted for 20 calls (spans, metric records), and, for
    the self-paired comparison, what it emits switched off (must be no spans and no histogram
    records; an observable counter keeps reporting its totals, which costs nothing per call).

    A contender that still emits when switched off may also have stacked a second copy of itself
    when switched on again: its worker is replaced by a fresh process that is never switched, and
    it is paired with the baseline process instead (`WorkerProc.switchable` False)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in list(workers):
        w = workers[name]
        supported = [wl for wl in w.ask("supports", workloads=list(cfg.workloads)) if wl not in DIRECT]
        clean = True
        if name != "baseline":
            for workload in supported:
                off = w.ask("emission_off", workload=workload)
                clean = clean and off["spans"] == 0 and off["histogram_records"] == 0
            if not clean:
                w.close()
                w = workers[name] = WorkerProc(name, cfg.python, cfg.log)
                w.switchable = False
                if not w.ready:
                    raise SystemExit(f"{name}: the fresh worker did not start: {w.skip}")
        out[name] = {wl: {**w.ask("emission", workload=wl, calls=5 if cfg.quick else 20), "off_clean": clean}
                     for wl in supported}
        statuses = {e["status"] for e in out[name].values()}
        _log(cfg, f"{name}: emission check {', '.join(sorted(statuses))}"
             + ("" if clean else "; still emits when switched off: paired with the baseline process"))
    return out


def timing_rounds(cfg: Config, workers: dict[str, WorkerProc]) -> dict[str, Any]:
    """Rounds of samples. Each contender's process runs every workload switched on and switched off
    (order alternating between rounds); the baseline process runs every workload once."""
    base = workers["baseline"]
    contenders = [n for n in workers if n != "baseline"]
    sizes: dict[str, int] = {}
    per_call: dict[str, float] = {}
    owned: dict[str, dict[str, int]] = {n: {} for n in workers}  # worker -> {workload: n}
    direct: dict[str, int] = {}
    for workload in cfg.workloads:
        owners = [n for n, w in workers.items() if workload in w.ask("supports", workloads=[workload])]
        if workload in DIRECT:
            if "floor" in owners:
                cal = workers["floor"].ask("calibrate", workload=workload, seconds=cfg.sample_ms / 1000)
                sizes[workload], per_call[workload] = cal["n"], cal["per_call"]
                direct[workload] = cal["n"]
            continue
        cal = base.ask("calibrate", workload=workload, seconds=cfg.sample_ms / 1000)
        sizes[workload], per_call[workload] = cal["n"], cal["per_call"]
        for name in ["baseline", *[n for n in contenders if n in owners]]:
            owned[name][workload] = sizes[workload]
    for name in contenders:  # warm every path, on and off, the same way
        if owned[name]:
            if workers[name].switchable:
                workers[name].ask("run_pairs", sizes=owned[name], on_first=True)
            else:
                for workload, n in owned[name].items():
                    workers[name].ask("run", workload=workload, n=n)
    for w in workers.values():
        w.ask("settle")
    _log(cfg, "samples: " + ", ".join(f"{k}={v}x{per_call[k] * 1e6:.0f}µs" for k, v in sizes.items()))

    raw: dict[str, dict[str, list[float]]] = {wl: {n: [] for n in workers if wl in owned[n]} for wl in sizes
                                              if wl not in DIRECT}
    off: dict[str, dict[str, list[float]]] = {wl: {n: [] for n in by if n != "baseline"} for wl, by in raw.items()}
    for wl in direct:
        raw[wl] = {"floor": []}
    started = time.perf_counter()
    rounds = 0
    while rounds < cfg.max_rounds:
        order = ["baseline", *contenders]
        for name in (order if rounds % 2 == 0 else order[::-1]):
            if name == "baseline" or not workers[name].switchable:  # switched on only
                for workload, n in owned[name].items():
                    r = workers[name].ask("run", workload=workload, n=n)
                    raw[workload][name].append(r["process"] / r["n"] * 1e6)
                continue
            if owned[name]:
                pairs = workers[name].ask("run_pairs", sizes=owned[name], on_first=rounds % 2 == 0)
                for workload, got in pairs.items():
                    raw[workload][name].append(got["on"])
                    off[workload][name].append(got["off"])
        for workload, n in direct.items():
            r = workers["floor"].ask("run", workload=workload, n=n)
            raw[workload]["floor"].append(r["process"] / r["n"] * 1e6)
        rounds += 1
        elapsed = time.perf_counter() - started
        if rounds % 5 == 0:
            _log(cfg, f"round {rounds}: {elapsed:.0f}s")
        if rounds >= cfg.min_rounds and (elapsed > cfg.timing_budget_s or _resolved(raw, off)):
            break
    return {"rounds": rounds, "seconds": time.perf_counter() - started, "sizes": sizes,
            "raw_us": raw, "off_us": off}


def paired_overheads(raw: dict[str, dict[str, list[float]]],
                     off: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, list[float]]]:
    """Per workload and contender: switched on - switched off, same process, same round (floor_ops
    are absolute). A contender never switched off (it still emitted when off, see check_emissions)
    is paired with the baseline process of the same round instead."""
    out: dict[str, dict[str, list[float]]] = {}
    for workload, by_name in raw.items():
        if workload in DIRECT:
            out[workload] = {"floor": list(by_name.get("floor", []))}
            continue
        out[workload] = {}
        for name, on in by_name.items():
            if name == "baseline":
                continue
            paired = off.get(workload, {}).get(name) or by_name["baseline"]
            out[workload][name] = [c - b for c, b in zip(on, paired, strict=False)]  # a worker that stopped early: its rounds so far
    return out


def cross_process(raw: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, list[float]]]:
    """The same contender switched on - the baseline process of the same round: what pairing
    across processes gives (each process's own speed included), shown for comparison."""
    return {wl: {n: [c - b for c, b in zip(v, by["baseline"], strict=False)] for n, v in by.items() if n != "baseline"}
            for wl, by in raw.items() if wl not in DIRECT and "baseline" in by}


def per_chunk(ovh: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    """Marginal cost per streamed chunk: (overhead at 200 chunks - at 50) / 150, per round."""
    if "stream" not in ovh or "stream_200" not in ovh:
        return {}
    extra = STREAM_CHUNKS["stream_200"] - STREAM_CHUNKS["stream"]
    return {n: [(b - a) / extra for a, b in zip(ovh["stream"][n], ovh["stream_200"][n], strict=False)]
            for n in ovh["stream"] if n in ovh["stream_200"]}


def _resolved(raw: dict[str, dict[str, list[float]]], off: dict[str, dict[str, list[float]]]) -> bool:
    """Stop early once the CI of otel_llm's chat overhead is clear of every comparison's target."""
    if "chat" not in raw or "otel_llm" not in raw["chat"]:
        return True
    ovh = paired_overheads({"chat": raw["chat"]}, {"chat": off["chat"]})["chat"]
    ours = summarize(ovh["otel_llm"])
    for name, values in ovh.items():
        if name == "otel_llm":
            continue
        s = summarize(values)
        factor = report.VS_FLOOR if name == "floor" else report.VS_PEER
        bound = factor * s["median"]
        if ours["ci_low"] <= bound <= ours["ci_high"]:
            return False
    return True


def memory_phase(cfg: Config, workers: dict[str, WorkerProc]) -> dict[str, Any]:
    if "otel_llm" not in workers:
        return {"skip": "otel_llm did not run"}
    t0 = time.perf_counter()
    points = workers["otel_llm"].ask("memory", checkpoints=list(cfg.memory_checkpoints))
    first, last = points[-2], points[-1]  # after the first and the last checkpoint
    calls = last["calls"] - first["calls"]
    growth = last["blocks"] - first["blocks"]
    out = {
        "checkpoints": points,
        "blocks_growth": growth,
        "blocks_per_call": growth / calls,
        "malloc_growth_bytes": last["malloc_bytes"] - first["malloc_bytes"],
        "rss_growth_bytes": last["rss_bytes"] - first["rss_bytes"],
        "gc_objects_growth": last["gc_objects"] - first["gc_objects"],
        "warmup_blocks": points[1]["blocks"] - points[0]["blocks"],
        "warmup_rss_bytes": points[1]["rss_bytes"] - points[0]["rss_bytes"],
        "seconds": time.perf_counter() - t0,
    }
    _log(cfg, f"memory: {growth:+d} blocks over {calls} calls, RSS {out['rss_growth_bytes'] / 1024:+.0f} KiB")
    return out


_SDK = ("from opentelemetry.sdk.trace import TracerProvider; from opentelemetry.sdk.metrics import MeterProvider; "
        "tp = TracerProvider(); mp = MeterProvider()")
_INSTRUMENTORS = {
    "otel_llm": "otel_llm",
    "genai_openai": "opentelemetry.instrumentation.genai.openai",
    "openllmetry": "opentelemetry.instrumentation.openai",
    "openinference": "openinference.instrumentation.openai",
}


def _child_cpu(python: str, code: str) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([python, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - t0, proc.returncode


def startup_phase(cfg: Config, contenders: Sequence[str]) -> dict[str, Any]:
    """CPU (user+sys, from wait4) of `python -c` start-ups; variants interleaved, median of reps."""
    variants = {"import openai": "import openai", "openai + OTel SDK providers": f"import openai; {_SDK}"}
    for name in contenders:
        if name in _INSTRUMENTORS:
            variants[name] = (f"import openai; {_SDK}; from {_INSTRUMENTORS[name]} import OpenAIInstrumentor as I; "
                              "I().instrument(tracer_provider=tp, meter_provider=mp)")
    failed: dict[str, str] = {}
    for name, code in list(variants.items()):  # warm the bytecode caches; drop what cannot start
        _, _, rc = _child_cpu(cfg.python, code)
        if rc != 0:
            failed[name] = f"exit code {rc}"
            del variants[name]
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for rep in range(cfg.startup_reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            c, w, _ = _child_cpu(cfg.python, variants[name])
            cpu[name].append(c * 1000)
            wall[name].append(w * 1000)
    out: dict[str, Any] = {"reps": cfg.startup_reps, "failed": failed, "variants": {}}
    sdk = statistics.median(cpu["openai + OTel SDK providers"]) if cpu.get("openai + OTel SDK providers") else 0.0
    bare = statistics.median(cpu["import openai"]) if cpu.get("import openai") else 0.0
    for name in names:
        med = statistics.median(cpu[name])
        out["variants"][name] = {"cpu_ms": summarize(cpu[name]), "wall_ms": summarize(wall[name]),
                                 "added_vs_sdk_ms": med - sdk, "added_vs_import_openai_ms": med - bare}
    _log(cfg, "startup: " + ", ".join(f"{k}={v['cpu_ms']['median']:.0f}ms" for k, v in out["variants"].items()))
    return out


def environment(cfg: Config) -> dict[str, Any]:
    code = (
        "import json, platform\nfrom importlib.metadata import version, PackageNotFoundError\n"
        "def v(d):\n    try: return version(d)\n    except PackageNotFoundError: return None\n"
        f"print(json.dumps({{'python': platform.python_version(), 'packages': {{d: v(d) for d in {report.PACKAGES!r}}}}}))"
    )
    info: dict[str, Any] = json.loads(subprocess.run([cfg.python, "-c", code], capture_output=True, text=True,
                                                     check=True, cwd=ROOT).stdout)
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info.update(nproc=os.cpu_count(), cpu_model=model, platform=platform.platform(), python_exe=cfg.python)
    try:
        info["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     cwd=ROOT).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "otel_llm"], capture_output=True,
                               text=True, cwd=ROOT).stdout.strip()
        if dirty:
            info["git"] += f" + uncommitted changes in otel_llm/ ({len(dirty.splitlines())} files)"
    except OSError:
        info["git"] = ""
    return info


def _per_chunk_in_context(cfg: Config, timing_worker: WorkerProc) -> list[dict[str, Any]]:
    """The per-chunk target's figure (bench.micro.per_chunk_in_process) in two consecutive runs, as the
    target asks: in the timing worker, then in a fresh process."""
    runs: list[dict[str, Any]] = []
    for where in ("timing worker", "fresh process"):
        w = timing_worker if where == "timing worker" else WorkerProc("otel_llm", cfg.python, cfg.log)
        try:
            got = (w.ask("per_chunk_in_process", samples=6 if cfg.quick else 300) if w.ready
                   else {"skip": w.skip})
        finally:
            if w is not timing_worker:
                w.close()
        for path in ("added_us", "we_asked_us"):
            if path in got:
                got[path] = summarize(got[path])
        runs.append({**got, "where": where})
    return runs


def _per_chunk_paired(cfg: Config, timing_worker: WorkerProc) -> list[dict[str, Any]]:
    """Our per-chunk code's direct cost, paired chunk by chunk (bench.micro.per_chunk_interleaved), in two
    consecutive runs: in the timing worker and in a fresh process; then, in the fresh process, a check of
    the method: known work added to every chunk must read as added."""
    streams = 8 if cfg.quick else 200
    runs: list[dict[str, Any]] = []
    for where, burn in (("timing worker", 0), ("fresh process", 0), ("fresh process, known work added", 25)):
        w = timing_worker if where == "timing worker" else WorkerProc("otel_llm", cfg.python, cfg.log)
        try:
            got = (w.ask("per_chunk_interleaved", streams=streams, burn=burn) if w.ready
                   else {"skip": w.skip})
        finally:
            if w is not timing_worker:
                w.close()
        if "added_us" in got:
            got["added_us"] = summarize(got["added_us"])
        runs.append({**got, "where": where})
    return runs


def scale_parts(cfg: Config) -> dict[str, Any]:
    """Targets 4 and 5 (issue 20), each in its own process after the timing rounds: contention
    (bench.contention) and one collection at the series bound (bench.collection). They write
    bench/contention.json and bench/collection.json, which report.markdown renders (bench.scale_report).
    A quick run writes beside them (*.quick.json) so the committed figures stay."""
    suffix = ".quick.json" if cfg.quick else ".json"
    parts = {
        "contention": ["--rounds", "2" if cfg.quick else "6", "--window", "0.3" if cfg.quick else "1.0"],
        "collection": ["--rounds", "4" if cfg.quick else "30", "--window", "0.2" if cfg.quick else "0.5"],
    }
    out: dict[str, Any] = {}
    for name, args in parts.items():
        path = ROOT / "bench" / f"{name}{suffix}"
        started = time.perf_counter()
        _log(cfg, f"part {name} ...")
        done = subprocess.run([cfg.python, "-m", f"bench.{name}", *args, "--json", str(path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=900)
        out[name] = {"returncode": done.returncode, "seconds": time.perf_counter() - started, "json": str(path),
                     "stdout": done.stdout[-2000:], "stderr": done.stderr[-2000:] if done.returncode else ""}
    return out


def run(cfg: Config) -> dict[str, Any]:
    """The whole benchmark; returns the results (also written to cfg.out_json / cfg.out_md)."""
    t0 = time.perf_counter()
    results: dict[str, Any] = {"config": {"quick": cfg.quick, "sample_ms": cfg.sample_ms,
                                          "min_rounds": cfg.min_rounds, "max_rounds": cfg.max_rounds,
                                          "command": cfg.command},
                               "environment": environment(cfg)}
    workers, skipped = start_workers(cfg)
    try:
        results["versions"] = {n: w.version for n, w in workers.items()}
        results["skipped"] = skipped
        results["emission"] = check_emissions(cfg, workers)
        timing = timing_rounds(cfg, workers)
        results["timing"] = timing
        ovh = paired_overheads(timing["raw_us"], timing["off_us"])
        results["overhead_us"] = {wl: {n: summarize(v) for n, v in by.items()} for wl, by in ovh.items()}
        results["cross_process_us"] = {wl: {n: summarize(v) for n, v in by.items()}
                                       for wl, by in cross_process(timing["raw_us"]).items()}
        results["baseline_us"] = {wl: summarize(by["baseline"]) for wl, by in timing["raw_us"].items()
                                  if "baseline" in by}
        results["per_chunk_us"] = {n: summarize(v) for n, v in per_chunk(ovh).items()}
        if "otel_llm" in workers:
            results["per_chunk_direct"] = workers["otel_llm"].ask("per_chunk", repeats=3 if cfg.quick else 15)
            results["per_chunk_in_context"] = _per_chunk_in_context(cfg, workers["otel_llm"])
            results["per_chunk_paired"] = _per_chunk_paired(cfg, workers["otel_llm"])
        if cfg.pricing:
            try:
                results["pricing"] = workers["baseline"].ask("pricing", n=2_000 if cfg.quick else 20_000,
                                                             repeats=3 if cfg.quick else 15)
            except RuntimeError as exc:
                results["pricing"] = {"skip": str(exc).splitlines()[0]}
        for name, w in workers.items():  # timing is over: only the memory check needs a worker now
            if name != "otel_llm":
                w.close()
        # The memory check (one worker, one core) runs beside the start-up timings, which count
        # their children's CPU time (wait4), not wall time: the other core is theirs.
        memory: dict[str, Any] = {"skip": "disabled"}

        def check_memory() -> None:
            nonlocal memory
            try:
                memory = memory_phase(cfg, workers)
            except Exception as exc:  # reported in the results, not fatal to the rest
                memory = {"skip": f"memory check failed: {exc}"}

        thread = threading.Thread(target=check_memory, name="memory")
        if cfg.memory_checkpoints:
            thread.start()
        if cfg.startup:
            results["startup"] = startup_phase(cfg, [n for n in cfg.contenders if n in workers])
        if cfg.memory_checkpoints:
            thread.join()
        results["memory"] = memory
    finally:
        for w in workers.values():
            w.close()
    results["scale_parts"] = scale_parts(cfg)
    results["targets"] = report.targets(results)
    results["elapsed_s"] = time.perf_counter() - t0
    if cfg.out_json:
        cfg.out_json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    markdown = report.markdown(results)
    if cfg.out_md:
        cfg.out_md.write_text(markdown)
    print(report.summary(results))
    return results


def parse(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="< 1 minute smoke run (numbers are not meaningful)")
    p.add_argument("--contenders", help=f"comma list, default {','.join(DEFAULT_CONTENDERS)}")
    p.add_argument("--workloads", help=f"comma list, default {','.join(TIMED_WORKLOADS)}")
    p.add_argument("--rounds", type=int, help="fixed number of rounds (min = max)")
    p.add_argument("--sample-ms", type=float, help="CPU time per sample")
    p.add_argument("--budget", type=float, help="seconds for the timing rounds before stopping early")
    p.add_argument("--memory-calls", type=int, help="calls for the memory check (0 = skip)")
    p.add_argument("--startup-reps", type=int, help="repetitions per start-up variant (0 = skip)")
    p.add_argument("--python", help="interpreter for the workers (default: this one)")
    p.add_argument("--out-md", type=Path, help="default BENCHMARKS.md ('-' = none)")
    p.add_argument("--out-json", type=Path, help="default bench/results.json ('-' = none)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target FAILs")
    a = p.parse_args(argv)
    cfg = Config.quick_config() if a.quick else Config()
    if a.contenders:
        cfg.contenders = tuple(dict.fromkeys(["baseline", *a.contenders.split(",")]))
    if a.workloads:
        cfg.workloads = tuple(a.workloads.split(","))
    if a.rounds:
        cfg.min_rounds = cfg.max_rounds = a.rounds
    if a.sample_ms:
        cfg.sample_ms = a.sample_ms
    if a.budget is not None:
        cfg.timing_budget_s = a.budget
    if a.memory_calls is not None:
        cfg.memory_checkpoints = (min(1_000, a.memory_calls // 10), a.memory_calls) if a.memory_calls else ()
    if a.startup_reps is not None:
        cfg.startup_reps = a.startup_reps
        cfg.startup = a.startup_reps > 0
    if a.python:
        cfg.python = a.python
    for attr, value in (("out_md", a.out_md), ("out_json", a.out_json)):
        if value is not None:
            setattr(cfg, attr, None if str(value) == "-" else value)
    if a.quick and a.out_md is None:
        cfg.out_md = ROOT / "bench" / "BENCHMARKS.quick.md"
    if a.quick and a.out_json is None:
        cfg.out_json = ROOT / "bench" / "results.quick.json"
    cfg.strict = a.strict
    cfg.command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse(argv)
    results = run(cfg)
    failed = any(t["status"] == "FAIL" for t in results["targets"])
    return 1 if (failed and cfg.strict) else 0

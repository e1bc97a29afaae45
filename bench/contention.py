"""Target 4: throughput under contention, otel_llm against the floor, in one process.

32 threads (sync client) or 500 asyncio tasks (async client) make chat calls at full speed through
the real `openai` SDK and its mock transport (bench.mock_openai) for a fixed window; calls per second
is the figure. The modes are switched in the same process between windows, so each round pairs them
on the same interpreter and heap (order rotated per round):

- `floor`: otel_llm uninstrumented, the floor's SDK work per call (bench.harness.Floor);
- `otel_llm`: otel_llm instrumented, no floor;
- `otel_llm_nolock`: as `otel_llm` with the ledger's lock swapped for a no-op (unsafe: only to measure
  what the lock costs under contention; sums may be lost, and are not checked);
- `baseline`: neither, the SDK call alone.

Ratio = otel_llm calls/s / floor calls/s in the same round; median, IQR and range over rounds.
Run: `.venv/bin/python -m bench.contention [--rounds R] [--window S] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import harness
from bench.scale_report import machine

MODES = ("floor", "otel_llm", "otel_llm_nolock", "baseline")


class _NoLock:
    """A context manager that locks nothing (measurement only)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

    def acquire(self, *args: Any) -> bool:
        return True

    def release(self) -> None:
        return None


class Contention:
    def __init__(self) -> None:
        # At full speed from 32 threads the span processor's default queue (2,048) fills and drops spans,
        # which would spare some modes work: a queue no window can fill, so every span is exported.
        os.environ.setdefault("OTEL_BSP_MAX_QUEUE_SIZE", "1000000")
        self.w = harness.Worker("otel_llm")
        self.floor = harness.Floor(self.w.tel.tracer_provider, self.w.tel.meter_provider)
        self.instrumentor = self.w.tel.instrumentor
        self.ledger = self.instrumentor.telemetry.ledger
        self.lock = self.ledger.lock

    @contextlib.contextmanager
    def mode(self, mode: str) -> Iterator[None]:
        on = mode.startswith("otel_llm")
        self.w.switch(on)
        if on:  # instrument() may build a new telemetry, over the same ledger (Ledger.for_meter)
            self.ledger = self.instrumentor.telemetry.ledger
        self.w.floor = self.floor if mode == "floor" else None
        if mode == "otel_llm_nolock":
            self.ledger.lock = _NoLock()  # type: ignore[assignment]
        try:
            yield
        finally:
            self.ledger.lock = self.lock
            self.w.tel.drain()

    def threads(self, n: int, seconds: float) -> dict[str, float]:
        """Calls per second of `n` threads calling for `seconds`, and process CPU per call."""
        import otel_llm

        stop = threading.Event()
        counts = [0] * n
        go = threading.Barrier(n + 1)

        def run(i: int) -> None:
            with otel_llm.attributes(user_id="user-1234", session_id="session-5678", team="search"):
                go.wait()
                while not stop.is_set():
                    self.w._chat()
                    counts[i] += 1

        pool = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in pool:
            t.start()
        go.wait()
        p0, w0 = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        done = sum(counts)
        p1, w1 = time.process_time(), time.perf_counter()
        stop.set()
        for t in pool:
            t.join()
        return {"calls_per_s": done / (w1 - w0), "cpu_us_per_call": (p1 - p0) / max(done, 1) * 1e6, "calls": done}

    def tasks(self, n: int, seconds: float) -> dict[str, float]:
        """Calls per second of `n` asyncio tasks on one loop calling for `seconds`."""
        return self.w.runner.run(self._tasks(n, seconds))

    async def _tasks(self, n: int, seconds: float) -> dict[str, float]:
        import otel_llm

        stop = False
        counts = [0] * n

        async def run(i: int) -> None:
            while not stop:
                await self.w._achat()
                counts[i] += 1
                # The mock transport never suspends, so a task would run forever without yielding;
                # a real network call yields here. Same for every mode.
                await asyncio.sleep(0)

        with otel_llm.attributes(user_id="user-1234", session_id="session-5678", team="search"):
            pool = [asyncio.create_task(run(i)) for i in range(n)]
        await asyncio.sleep(0.2)  # every task past its first call
        before = sum(counts)
        p0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        done = sum(counts) - before
        p1, w1 = time.process_time(), time.perf_counter()
        stop = True
        await asyncio.gather(*pool)
        return {"calls_per_s": done / (w1 - w0), "cpu_us_per_call": (p1 - p0) / max(done, 1) * 1e6, "calls": done}


def _iqr(values: list[float]) -> float:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[2] - q[0]


def summary(rounds: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        rates = [r[mode]["calls_per_s"] for r in rounds]
        cpu = [r[mode]["cpu_us_per_call"] for r in rounds]
        out[mode] = {"calls_per_s": statistics.median(rates), "iqr": _iqr(rates),
                     "cpu_us_per_call": statistics.median(cpu)}
    for num, den in (("otel_llm", "floor"), ("otel_llm", "otel_llm_nolock"), ("floor", "baseline"),
                     ("otel_llm", "baseline")):
        ratios = [r[num]["calls_per_s"] / r[den]["calls_per_s"] for r in rounds]
        out[f"{num}/{den}"] = {"median": statistics.median(ratios), "iqr": _iqr(ratios),
                               "min": min(ratios), "max": max(ratios), "rounds": len(ratios)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--window", type=float, default=1.5, help="seconds per mode per round")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    bench = Contention()
    result: dict[str, Any] = {"thread_count": args.threads, "task_count": args.tasks, "window_s": args.window,
                              "rounds": args.rounds, "machine": machine()}
    for kind in ("threads", "tasks"):
        rounds: list[dict[str, dict[str, float]]] = []
        for r in range(args.rounds):
            order = MODES[r % len(MODES):] + MODES[:r % len(MODES)]
            sample: dict[str, dict[str, float]] = {}
            for mode in order:
                with bench.mode(mode):
                    if kind == "threads":
                        sample[mode] = bench.threads(args.threads, args.window)
                    else:
                        sample[mode] = bench.tasks(args.tasks, args.window)
            rounds.append(sample)
        result[kind] = summary(rounds)
        result[f"{kind}_rounds"] = rounds
        s = result[kind]
        what = f"{args.threads} threads" if kind == "threads" else f"{args.tasks} asyncio tasks"
        print(f"{what}, {args.rounds} rounds of {args.window:g} s per mode:")
        for mode in MODES:
            print(f"  {mode:<16} {s[mode]['calls_per_s']:8.0f} calls/s (IQR {s[mode]['iqr']:.0f}), "
                  f"{s[mode]['cpu_us_per_call']:.0f} µs CPU/call")
        for key in ("otel_llm/floor", "otel_llm/otel_llm_nolock", "floor/baseline", "otel_llm/baseline"):
            q = s[key]
            print(f"  {key:<26} {q['median']:.3f} (IQR {q['iqr']:.3f}, range {q['min']:.3f}-{q['max']:.3f})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    bench.w.close()


if __name__ == "__main__":
    main()

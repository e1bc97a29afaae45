"""Where otel_llm's per-call overhead goes: cProfile over many calls of one workload, our functions only.

    .bench-venv/bin/python -m bench.profile [WORKLOAD] [--calls N] [--all]

Prints, per call, each otel_llm function's own time (tottime) and time including callees
(cumtime) with file:line, plus the OTel SDK entry points our code calls. cProfile inflates small
functions, so read the shares, and confirm a finding with `bench.micro` or the paired bench.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

from bench import harness

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
OURS = str(ROOT / "otel_llm")


def _label(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    path = Path(filename)
    try:
        path = path.relative_to(ROOT)
    except ValueError:
        parts = path.parts
        if "site-packages" in parts:
            path = Path(*parts[parts.index("site-packages") + 1:])
    return f"{path}:{line} {name}"


def profile(workload: str, calls: int, show_all: bool, limit: int) -> None:
    w = harness.Worker("otel_llm")
    w.run(workload, max(calls // 10, 5))  # warm-up
    w.settle()
    t0 = time.process_time()
    w.run(workload, calls)
    plain = (time.process_time() - t0) / calls * 1e6
    prof = cProfile.Profile()
    prof.enable()
    w.run(workload, calls)
    prof.disable()
    stats = pstats.Stats(prof)
    raw = stats.stats  # type: ignore[attr-defined]
    rows = []
    for key, (_cc, nc, tt, ct, callers) in raw.items():
        ours = key[0].startswith(OURS)
        called_by_us = any(c[0].startswith(OURS) for c in callers)
        if ours or called_by_us or show_all:
            rows.append((ct, tt, nc, key, ours))
    rows.sort(key=lambda r: r[0], reverse=True)
    print(f"\n{workload}: {calls} calls, {plain:.1f} µs/call without the profiler (whole call, SDK included)")
    print(f"{'cum µs/call':>11} {'own µs/call':>11} {'calls/call':>10}  function")
    for ct, tt, nc, key, ours in rows[:limit]:
        mark = "" if ours else "  (SDK/lib, called by otel_llm)"
        print(f"{ct / calls * 1e6:11.2f} {tt / calls * 1e6:11.2f} {nc / calls:10.2f}  {_label(key)}{mark}")
    w.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    p.add_argument("workloads", nargs="*", default=["chat", "stream"])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--all", action="store_true", help="every function, not only ours and what we call")
    p.add_argument("--limit", type=int, default=40)
    a = p.parse_args()
    for workload in a.workloads:
        n = a.calls if harness.WORKLOADS[workload].kind != "stream" else max(a.calls // 10, 20)
        profile(workload, n, a.all, a.limit)


if __name__ == "__main__":
    main()

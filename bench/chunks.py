"""Target 3 on its own: µs per streamed chunk in context, in consecutive fresh processes.

Each run is `bench.micro.per_chunk_in_process` in a new `bench.worker` process (the figure `make bench`
takes in its timing worker and in one fresh process): a stream through otel_llm's proxy against the
SDK's own stream of the same chunks, (200-chunk - 50-chunk) / 150 of process CPU per sample; both
request paths, the app asking for the usage chunk and otel_llm asking for it. The target is met when
every run's 95% CI of the median is under the limit.
Run: `.bench-venv/bin/python -m bench.chunks [--runs N] [--samples S] [--json PATH]` (~40 s a run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.run import WorkerProc, summarize
from bench.scale_report import machine

LIMIT_US = 1.0
PATHS = {"added_us": "the app asked for usage", "we_asked_us": "otel_llm asked, and hides the usage chunk"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    started = time.time()
    runs: list[dict[str, Any]] = []
    for i in range(args.runs):
        worker = WorkerProc("otel_llm", sys.executable, sys.stderr)
        try:
            got = worker.ask("per_chunk_in_process", samples=args.samples) if worker.ready else {"skip": worker.skip}
        finally:
            worker.close()
        if "skip" in got:
            print(f"run {i + 1}: skipped: {got['skip']}")
            return 1
        runs.append({path: summarize(got[path]) for path in PATHS})
        for path, label in PATHS.items():
            s = runs[-1][path]
            print(f"run {i + 1}, {label}: {s['median']:.2f} µs per chunk, IQR {s['iqr']:.2f}, "
                  f"95% CI [{s['ci_low']:.2f}, {s['ci_high']:.2f}], {s['n']} samples")
    met = {path: all(r[path]["ci_high"] <= LIMIT_US for r in runs) for path in PATHS}
    for path, label in PATHS.items():
        print(f"target 3 ({label}): {'MET' if met[path] else 'NOT MET'}: every run's CI under {LIMIT_US:g} µs")
    if args.json:
        args.json.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                                         "seconds": round(time.time() - started), "machine": machine(),
                                         "samples": args.samples, "runs": runs, "met": met}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

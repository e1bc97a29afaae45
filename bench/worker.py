"""One contender in its own process, driven by `bench.run` over a private pipe (JSON lines).

Peers monkeypatch the `openai` classes globally, so each contender lives alone in a process. The
orchestrator keeps every worker alive for the whole run and asks one at a time for a timed sample,
so workers never compete for the CPU and set-up is paid once.

    python -m bench.worker CONTENDER   # reads commands on stdin, answers on the original stdout
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any, TextIO

__all__ = ["main"]


def _serve(out: TextIO, contender: str) -> None:
    from bench import harness

    def reply(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        w = harness.Worker(contender)
    except harness.Skip as exc:
        reply({"ready": False, "skip": str(exc)})
        return
    except Exception as exc:  # a contender that fails to instrument is reported, not fatal
        reply({"ready": False, "skip": f"failed to instrument: {type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc()})
        return
    reply({"ready": True, "version": w.version, "pid": os.getpid()})
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "quit":
                break
            if op == "supports":
                reply({"ok": True, "result": [name for name in cmd["workloads"] if w.supports(name)]})
            elif op == "emission":
                reply({"ok": True, "result": w.emission(cmd["workload"], cmd.get("calls", 20)).as_dict()})
            elif op == "run":
                reply({"ok": True, "result": w.run(cmd["workload"], cmd["n"])})
            elif op == "run_pairs":
                reply({"ok": True, "result": w.run_pairs(cmd["sizes"], cmd["on_first"])})
            elif op == "emission_off":
                reply({"ok": True, "result": w.emission_off(cmd["workload"]).as_dict()})
            elif op == "calibrate":
                reply({"ok": True, "result": _calibrate(w, cmd["workload"], cmd["seconds"])})
            elif op == "settle":
                w.settle()
                reply({"ok": True, "result": None})
            elif op == "memory":
                reply({"ok": True, "result": w.memory(cmd["checkpoints"])})
            elif op == "per_chunk":
                from bench import micro

                reply({"ok": True, "result": micro.per_chunk(w, cmd.get("repeats", 15))})
            elif op == "per_chunk_interleaved":
                from bench import micro

                reply({"ok": True, "result": micro.per_chunk_interleaved(w, cmd.get("streams", 80),
                                                                                cmd.get("burn", 0))})
            elif op == "per_chunk_in_process":
                from bench import micro

                reply({"ok": True, "result": micro.per_chunk_in_process(w, cmd.get("samples", 300))})
            elif op == "pricing":
                from bench import pricing

                reply({"ok": True, "result": pricing.measure(cmd["n"], cmd["repeats"])})
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as exc:
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
    w.close()


def _calibrate(w: Any, workload: str, seconds: float) -> dict[str, float]:
    """Calls per `seconds` of CPU: warms the path up at the same time."""
    n = 1
    while True:
        t = w.run(workload, n)["process"]
        if t >= seconds / 4 or n >= 1_000_000:
            return {"per_call": t / n, "n": max(1, round(n * seconds / max(t, 1e-9)))}
        n *= 2


def main() -> None:
    # The protocol owns the real stdout; whatever the contenders print goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    os.dup2(sys.stderr.fileno(), 1)
    started = time.perf_counter()
    try:
        _serve(out, sys.argv[1])
    finally:
        sys.stderr.write(f"[worker {sys.argv[1]}] done after {time.perf_counter() - started:.1f}s\n")


if __name__ == "__main__":
    main()

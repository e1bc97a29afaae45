"""Paired A/B of otel_llm's per-call overhead between two copies of the package (e.g. a commit and the
working tree): each sample is otel_llm on minus off in one worker process, and the two copies' workers
are visited alternately, so drift on a loaded machine hits both alike.

    .venv/bin/python -m bench.ab OLD_DIR NEW_DIR [--rounds R] [--workloads chat,chat_async,embeddings]

OLD_DIR/NEW_DIR: directories holding an `otel_llm` package (e.g. from `git archive COMMIT otel_llm`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _worker(path: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([path, str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "bench.worker", "otel_llm"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd="/")  # not ROOT: its otel_llm would win


def _ask(p: subprocess.Popen[str], cmd: dict[str, object]) -> dict[str, object]:
    assert p.stdin and p.stdout
    p.stdin.write(json.dumps(cmd) + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--workloads", default="chat,chat_async,embeddings")
    ap.add_argument("--n", type=int, default=150)
    a = ap.parse_args()
    workloads = a.workloads.split(",")
    procs = {"old": _worker(a.old), "new": _worker(a.new)}
    for p in procs.values():
        assert p.stdout
        json.loads(p.stdout.readline())
    sizes = {w: a.n for w in workloads}
    diffs: dict[str, dict[str, list[float]]] = {k: {w: [] for w in workloads} for k in procs}
    for r in range(a.rounds):
        for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
            got = _ask(procs[name], {"op": "run_pairs", "sizes": sizes, "on_first": r % 4 < 2})
            result = got["result"]
            assert isinstance(result, dict)
            for w in workloads:
                diffs[name][w].append(result[w]["on"] - result[w]["off"])
    for w in workloads:
        old, new = diffs["old"][w], diffs["new"][w]
        delta = [n - o for n, o in zip(new, old, strict=True)]
        print(f"{w:<12} old {statistics.median(old):6.1f} µs  new {statistics.median(new):6.1f} µs  "
              f"new-old median {statistics.median(delta):+6.1f} (IQR {statistics.quantiles(delta, n=4)[2] - statistics.quantiles(delta, n=4)[0]:.1f})")
    for p in procs.values():
        p.kill()


if __name__ == "__main__":
    main()

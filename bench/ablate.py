"""Where otel_llm's per-call overhead goes in context: each piece knocked out in turn, in one process.

    .bench-venv/bin/python -m bench.ablate [--workloads chat,embeddings] [--rounds R] [--calls N] [--json PATH]

`bench.micro` times each piece in a tight loop, with hot caches. In an app the same code runs between
the SDK's own request building and response parsing, which evict those caches, and there every piece
costs more (the floor's own SDK work: about 70 µs in a loop, about 130 µs around a real call). This
tool measures in that context: the real call through the real SDK and its mock transport, with

- `off`: otel_llm uninstrumented (the reference every figure is taken above),
- `floor`: the floor contender's SDK work (bench.harness.Floor), and the same without its histograms,
- `otel_llm`: instrumented, and the same with one piece replaced by a no-op (a *knockout*),

all in one process (one heap, one SDK pipeline), the variants' order shuffled every round. A piece's
in-context cost is `otel_llm - knockout` paired round by round: median, IQR and a 95% CI of the median.

The knockouts reach into otel_llm's internals on purpose (this is a measuring tool, not a test): a
knockout that no longer matches the code is reported as such, never silently skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import harness
from bench.run import summarize

__all__ = ["KNOCKOUTS", "main", "measure"]

HERE = Path(__file__).resolve().parent


def _noop(*_args: Any, **_kwargs: Any) -> None:
    return None


class _NoRecord:
    @staticmethod
    def record(*_args: Any, **_kwargs: Any) -> None:
        return None


@contextmanager
def _patched(*triples: tuple[Any, str, Any]) -> Iterator[None]:
    saved = []
    try:
        for owner, name, value in triples:
            saved.append((owner, name, getattr(owner, name)))  # AttributeError: the knockout no longer fits
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


@dataclass(frozen=True)
class Knockout:
    name: str
    label: str
    patch: Callable[[], Any]  # -> a context manager that knocks the piece out


def _recorder(name: str, value: Any) -> Callable[[], Any]:
    def patch() -> Any:
        from otel_llm import record

        return _patched((record.Recorder, name, value))

    return patch


def _span_only() -> Any:
    from otel_llm import call

    return _patched((call.Call, "complete", lambda self, _result: self.span.end()))


def _passthrough() -> Any:
    from otel_llm import instrumentor

    return _patched((instrumentor, "_start", lambda *_a: None))


def _not_priced(self: Any, _outcome: Any) -> Any:
    from otel_llm import record

    return record.NOT_PRICED


KNOCKOUTS: tuple[Knockout, ...] = (
    Knockout("histograms", "the standard histograms (3 SDK records on chat, 2 on embeddings)",
             _recorder("_histograms", _noop)),
    Knockout("sums", "the ledger's sums (calls, tokens, cost)", _recorder("_sums", _noop)),
    Knockout("span_attributes", "the response's span attributes (one SDK set_attributes)",
             _recorder("_write_span", _noop)),
    Knockout("pricing", "pricing (knocked out, the call is left unpriced)", _recorder("price", _not_priced)),
    Knockout("recorder", "the whole recorder (knocked out, the span is only ended)",
             _recorder("record", lambda _self, span, _ctx, _outcome: span.end())),
    Knockout("response", "reading the response and recording it (knocked out, the span is only ended)", _span_only),
    Knockout("everything", "the whole call (knocked out, the wrapper passes straight through)", _passthrough),
)


def measure(workload: str, rounds: int, calls: int, seed: int = 1, process_wide: bool = True) -> dict[str, Any]:
    """µs of process CPU per call above `off`, per variant and round; and each piece's paired cost.
    `process_wide=False` (tests): leave the global providers alone."""
    logging.getLogger("otel_llm").setLevel(logging.ERROR)  # a knocked-out price warns "unpriced"
    w = harness.Worker("otel_llm", process_wide=process_wide)
    floor = harness.Floor(w.tel.tracer_provider, w.tel.meter_provider)
    no_histograms = [(floor, name, _NoRecord()) for name in ("duration", "token_usage", "ttfc")]
    variants: dict[str, Callable[[], Any]] = {
        "off": lambda: _patched(),
        "floor": lambda: _patched(),
        "floor_no_histograms": lambda: _patched(*no_histograms),
        "otel_llm": lambda: _patched(),
    }
    variants.update({f"otel_llm_no_{k.name}": k.patch for k in KNOCKOUTS})
    per_call: dict[str, list[float]] = {name: [] for name in variants}
    rng = random.Random(seed)
    try:
        for name, patch in variants.items():  # every variant fits the code, and is warm
            _run(w, floor, name, patch, workload, calls)
        for _ in range(rounds):
            order = list(variants.items())
            rng.shuffle(order)
            for name, patch in order:
                per_call[name].append(_run(w, floor, name, patch, workload, calls))
    finally:
        w.switch(True)
        w.floor = None
        w.close()
    off = per_call["off"]
    above = {name: [v - o for v, o in zip(xs, off, strict=True)] for name, xs in per_call.items() if name != "off"}
    pieces = {
        k.name: {"label": k.label, **summarize([a - b for a, b in zip(above["otel_llm"], above[f"otel_llm_no_{k.name}"],
                                                                     strict=True)])}
        for k in KNOCKOUTS
    }
    floor_hist = [a - b for a, b in zip(above["floor"], above["floor_no_histograms"], strict=True)]
    over_floor = [a - b for a, b in zip(above["otel_llm"], above["floor"], strict=True)]
    return {
        "workload": workload, "rounds": rounds, "calls": calls,
        "off_us_per_call": statistics.median(off),
        "above_off": {name: summarize(xs) for name, xs in above.items()},
        "pieces": pieces,
        "floor_histograms": summarize(floor_hist),
        "otel_llm_over_floor": summarize(over_floor),
    }


def _run(w: harness.Worker, floor: harness.Floor, name: str, patch: Callable[[], Any], workload: str,
         calls: int) -> float:
    instrumented = name.startswith("otel_llm")
    w.switch(instrumented)
    w.floor = floor if name.startswith("floor") else None
    with patch():
        w.run(workload, max(calls // 10, 3))  # the variant's own code warm, as the app's would be
        r = w.run(workload, calls)
    return r["process"] / r["n"] * 1e6


def _print(result: dict[str, Any]) -> None:
    print(f"\n{result['workload']}: {result['rounds']} rounds x {result['calls']} calls; "
          f"uninstrumented call {result['off_us_per_call']:.0f} µs")
    print(f"{'µs above off':>13} {'IQR':>6}  variant")
    for name, s in result["above_off"].items():
        print(f"{s['median']:13.1f} {s['iqr']:6.1f}  {name}")
    print(f"\n{'piece µs':>9} {'IQR':>6} {'95% CI':>16}  piece (otel_llm - knockout, paired)")
    for name, s in result["pieces"].items():
        print(f"{s['median']:9.1f} {s['iqr']:6.1f} [{s['ci_low']:6.1f}, {s['ci_high']:6.1f}]  {name}: {s['label']}")
    for key in ("floor_histograms", "otel_llm_over_floor"):
        s = result[key]
        print(f"{s['median']:9.1f} {s['iqr']:6.1f} [{s['ci_low']:6.1f}, {s['ci_high']:6.1f}]  {key}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--workloads", default="chat,embeddings")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None, help="write the results here (e.g. bench/ablation.json)")
    a = ap.parse_args()
    from bench import scale_report

    started = time.time()
    machine = scale_report.machine()
    results = []
    for workload in a.workloads.split(","):
        if workload not in harness.WORKLOADS:
            raise SystemExit(f"unknown workload {workload!r}; one of {', '.join(harness.WORKLOADS)}")
        try:
            result = measure(workload, a.rounds, a.calls)
        except AttributeError as exc:
            raise SystemExit(f"a knockout no longer fits otel_llm's code ({exc}): update bench/ablate.py") from exc
        _print(result)
        results.append(result)
    if a.json is not None:
        import subprocess

        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE.parent)
        a.json.write_text(json.dumps({
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "git": git.stdout.strip(), "seconds": round(time.time() - started),
            "command": f"python -m bench.ablate --workloads {a.workloads} --rounds {a.rounds} --calls {a.calls}",
            "machine": machine, "results": results,
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()

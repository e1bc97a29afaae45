"""bench.ablate's knockouts still fit otel_llm's code and knock out what their labels say: a refactor
that moves a piece out from under its knockout fails here, not silently in the next measurement.
No test here asserts a timing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import ablate, harness  # noqa: E402

KNOCKOUTS = {k.name: k for k in ablate.KNOCKOUTS}


@pytest.fixture
def worker() -> Iterator[harness.Worker]:
    w = harness.Worker("otel_llm", process_wide=False)  # other tests own the global providers
    yield w
    w.close()


def _calls_counted(w: harness.Worker) -> float:
    """otel_llm.calls added since the last read (the reader is delta)."""
    data = w.tel.reader.get_metrics_data()
    return sum(point.value
               for rm in (data.resource_metrics if data else ()) for sm in rm.scope_metrics for m in sm.metrics
               if m.name == "otel_llm.calls" for point in m.data.data_points)


def test_otel_llm_untouched_is_what_every_knockout_is_compared_with(worker: harness.Worker) -> None:
    emission = worker.emission("chat", calls=2)
    assert emission.ok and emission.spans == 2
    assert emission.histogram_records == 2 * 3
    assert emission.span_attributes >= 26


@pytest.mark.parametrize(
    ("name", "spans", "histogram_records", "all_attributes"),
    [
        ("histograms", 2, 0, True),
        ("sums", 2, 6, True),  # and no call counted: test_the_sums_knockout_counts_no_call
        ("span_attributes", 2, 6, False),
        ("pricing", 2, 6, False),  # no cost on the span
        ("recorder", 2, 0, False),
        ("response", 2, 0, False),
        ("everything", 0, 0, False),
    ],
)
def test_each_knockout_removes_its_piece_and_only_that(worker: harness.Worker, name: str, spans: int,
                                                      histogram_records: int, all_attributes: bool) -> None:
    whole = worker.emission("chat", calls=2).span_attributes
    worker.tel.reader.get_metrics_data()
    with KNOCKOUTS[name].patch():
        emission = worker.tel.emission(2, lambda: worker.run("chat", 2) and None)
    assert emission.spans == spans
    assert emission.histogram_records == histogram_records
    if spans:
        assert (emission.span_attributes == whole) is all_attributes
    worker.run("chat", 2)  # the knockout is gone: the piece is back
    assert _calls_counted(worker) == 2
    again = worker.emission("chat", calls=2)
    assert again.histogram_records == 6 and again.span_attributes == whole


def test_the_sums_knockout_counts_no_call(worker: harness.Worker) -> None:
    worker.run("chat", 1)
    _calls_counted(worker)
    with KNOCKOUTS["sums"].patch():
        worker.run("chat", 3)
    assert _calls_counted(worker) == 0
    worker.run("chat", 3)
    assert _calls_counted(worker) == 3


def test_a_tiny_run_gives_every_variant_and_piece_a_figure() -> None:
    result = ablate.measure("embeddings", rounds=2, calls=2, process_wide=False)
    assert set(result["pieces"]) == set(KNOCKOUTS)
    assert {"floor", "floor_no_histograms", "otel_llm"} <= set(result["above_off"])
    assert all(s["ci_low"] <= s["median"] <= s["ci_high"] and s["n"] == 2 for s in result["pieces"].values())

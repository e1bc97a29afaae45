"""A prices file cannot hang start-up, exhaust memory or crash it: every failure is the one-line error,
and the bundled prices stay in use. Also what its price source says: the file's base name."""

from __future__ import annotations

import logging
import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from otel_llm.pricing import PricesFileError, load_prices_file
from tests.conftest import Api, only_span

MESSAGES = [{"role": "user", "content": "hi"}]


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "otel_llm" and r.levelno >= logging.ERROR]


def _starts_with_defaults(instrument: Any, api: Api, spans: Any, caplog: pytest.LogCaptureFixture, path: str) -> str:
    """instrument(prices=path) within seconds, one error line, and calls priced from the bundled data."""
    done: list[BaseException | None] = []

    def start() -> None:
        try:
            instrument(prices=path)
            done.append(None)
        except BaseException as exc:  # reported below
            done.append(exc)

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        if Path(path).is_fifo():  # let the stuck open() go, so the suite does not hang
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail(f"instrument(prices={path!r}) did not return within 10 s")
    assert done == [None]
    (error,) = _errors(caplog)
    assert "\n" not in error and "Traceback" not in error and "using the default prices" in error
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    assert only_span(spans).attributes["otel_llm.price.source"] == "genai-prices:openai/gpt-4.1"
    return error


def test_a_fifo_is_refused_without_waiting_for_a_writer(instrument: Any, api: Api, spans: Any, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    fifo = tmp_path / "prices.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in _starts_with_defaults(instrument, api, spans, caplog, str(fifo))


def test_a_device_is_refused_without_reading_it(instrument: Any, api: Api, spans: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    assert "not a regular file" in _starts_with_defaults(instrument, api, spans, caplog, "/dev/zero")


def test_a_file_over_the_size_limit_is_refused(instrument: Any, api: Api, spans: Any, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    big = tmp_path / "prices.yaml"
    with big.open("wb") as f:
        f.truncate(1024 * 1024 + 1)  # MAX_FILE_BYTES + 1  # sparse: nothing is written to disk
    assert "larger than" in _starts_with_defaults(instrument, api, spans, caplog, str(big))


def test_a_huge_integer_price_is_the_one_line_error(instrument: Any, api: Api, spans: Any, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  gpt-4.1: {input: 1" + "0" * 400 + ", output: 8}\n")
    with pytest.raises(PricesFileError) as err:
        load_prices_file(path)
    assert err.value.key == "models.gpt-4.1.input"
    error = _starts_with_defaults(instrument, api, spans, caplog, str(path))
    assert "models.gpt-4.1.input" in error and len(error) < 400


LAUGHS = "\n".join(
    ["a0: &a0 {input: 1, output: 1}"]
    + [f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], k{i}: 1}}" for i in range(1, 40)]
    + ["models:", "  gpt-4.1: *a39"]
)
LIST_LAUGHS = "\n".join(
    ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 12)]
    + ["models:", "  gpt-4.1: {input: *l11, output: 1}"]
)


@pytest.mark.parametrize("text", [LAUGHS, LIST_LAUGHS], ids=["merge-keys", "nested-lists"])
def test_exponential_yaml_aliases_cannot_exhaust_memory(tmp_path: Path, text: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(PricesFileError):
            load_prices_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, f"peak {peak / 2**20:.0f} MB"
    assert time.perf_counter() - started < 30  # a bound against a hang, not a speed claim


def test_anchors_for_shared_prices_still_work(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  gpt-4.1: &p {input: 2, output: 8}\n  gpt-4.1-eu: *p\n")
    assert set(load_prices_file(path).models) == {"gpt-4.1", "gpt-4.1-eu"}


def test_the_price_source_names_the_file_by_its_base_name(tmp_path: Path) -> None:
    nested = tmp_path / "conf" / "team"
    nested.mkdir(parents=True)
    path = nested / "gateway-prices.yaml"
    path.write_text("models:\n  gpt-4.1: {input: 2, output: 8}\n")
    entry = load_prices_file(path).models["gpt-4.1"]
    assert entry.rates is not None and entry.rates.source == "file:gateway-prices.yaml"


ADJUSTED = """
models:
  gpt-4.1: {input: 2.00, output: 8.00, adjustment_percent: -20}   # file prices, then a 20% discount
  gpt-4o-mini: {adjustment_percent: -10}                          # list price, 10% off
base_urls:
  "https://reseller.example.com/v1":
    adjustment_percent: 5                                         # every price at this URL, +5%
    models:
      deepseek-v3.2: {input: 0.14, output: 0.42}
      claude-sonnet-4.5: {input: 3.00, output: 15.00, adjustment_percent: 0}   # its own wins
"""


@pytest.fixture
def adjusted(tmp_path: Path) -> Any:
    from otel_llm.pricing import PriceBook

    path = tmp_path / "prices.yaml"
    path.write_text(ADJUSTED)
    return PriceBook(load_prices_file(path))


def test_a_model_discount_applies_to_its_file_prices_and_is_named(adjusted: Any) -> None:
    from otel_llm.pricing import Usage

    rates = adjusted.rates("openai", "https://api.openai.com/v1", "gpt-4.1")
    assert rates.cost(Usage(input=1_000_000, output=1_000_000)).usd == pytest.approx((2.00 + 8.00) * 0.8)
    assert rates.source == "file:prices.yaml (-20%)"


def test_a_model_discount_alone_applies_to_the_list_price(adjusted: Any) -> None:
    from otel_llm.pricing import PriceBook, Usage

    listed = PriceBook().rates("openai", "https://api.openai.com/v1", "gpt-4o-mini")
    rates = adjusted.rates("openai", "https://api.openai.com/v1", "gpt-4o-mini")
    usage = Usage(input=1_000_000, output=1_000_000, cache_read=200_000)
    assert rates.cost(usage).usd == pytest.approx(listed.cost(usage).usd * 0.9)
    assert rates.cost(usage).cache_savings_usd == pytest.approx(listed.cost(usage).cache_savings_usd * 0.9)
    assert rates.source == f"{listed.source} (-10% by file:prices.yaml)"


def test_a_base_url_markup_applies_to_every_price_there(adjusted: Any) -> None:
    from otel_llm.pricing import PriceBook, Usage

    url = "https://reseller.example.com/v1"
    usage = Usage(input=1_000_000, output=1_000_000)
    own = adjusted.rates("openai_compatible", url, "deepseek-v3.2")
    assert own.cost(usage).usd == pytest.approx((0.14 + 0.42) * 1.05) and own.source == "file:prices.yaml (+5%)"
    listed = PriceBook().rates("openai_compatible", url, "gpt-4o")
    marked = adjusted.rates("openai_compatible", url, "gpt-4o")
    assert marked.cost(usage).usd == pytest.approx(listed.cost(usage).usd * 1.05)
    assert marked.source == f"{listed.source} (+5% by file:prices.yaml)"
    exempt = adjusted.rates("openai_compatible", url, "claude-sonnet-4.5")
    assert exempt.cost(usage).usd == pytest.approx(3.00 + 15.00) and exempt.source == "file:prices.yaml"
    elsewhere = adjusted.rates("openai_compatible", "https://other.example.com/v1", "gpt-4o")
    assert elsewhere.cost(usage).usd == pytest.approx(listed.cost(usage).usd)


@pytest.mark.parametrize(("text", "key"), [
    ("models:\n  gpt-4.1: {adjustment_percent: -120}\n", "models.gpt-4.1.adjustment_percent"),
    ("models:\n  gpt-4.1: {adjustment_percent: lots}\n", "models.gpt-4.1.adjustment_percent"),
    ("base_urls:\n  'http://x/v1': {adjustment_percent: 1e400}\n", "base_urls.http://x/v1.adjustment_percent"),
    ("models:\n  gpt-4.1: {input: 1, adjustment_percent: 5}\n", "models.gpt-4.1.output"),
])
def test_a_wrong_adjustment_is_the_one_line_error(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PricesFileError) as err:
        load_prices_file(path)
    assert err.value.key == key


def test_an_adjusted_call_records_the_adjusted_cost(instrument: Any, api: Api, spans: Any, tmp_path: Path) -> None:
    from tests.conftest import fixture_json

    path = tmp_path / "prices.yaml"
    path.write_text(ADJUSTED)
    instrument(prices=str(path))
    body = fixture_json("chat_completion.json")
    assert body["model"] == "gpt-4.1-2025-04-14"  # a dated snapshot: priced as the gpt-4.1 the file names
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    attrs = only_span(spans).attributes
    assert attrs["otel_llm.price.source"] == "file:prices.yaml (-20%)"
    usage = body["usage"]
    plain = usage["prompt_tokens"] * 2.00 + usage["completion_tokens"] * 8.00
    assert attrs["otel_llm.cost.usd"] == pytest.approx(plain * 0.8 / 1e6)

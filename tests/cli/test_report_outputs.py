"""The report's files and digest from a real Prometheus holding a replayed day of the case: the HTML
opened in a real headless Chromium (scripts/install-chromium) shows the Prometheus figures; the CSV
and FOCUS exports equal what was written; the digest reaches a local webhook."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from caseday import UNPRICED_MODEL, caseday_prometheus

from otel_llm.cli import report
from otel_llm.cli.queries import Prometheus
from otel_llm.cli.report_export import FOCUS_COLUMNS, chargeback_csv, focus_csv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stack"))
from stackservers import webhook_receiver

YESTERDAY = datetime.now(timezone.utc).date() - timedelta(days=1)
SCREENSHOT = Path(__file__).resolve().parents[2] / "build" / "report-test.png"
# FOCUS 1.2 column IDs, as published in specification/columns/*.md of
# FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec (57 columns).
FOCUS_1_2 = frozenset("""
AvailabilityZone BilledCost BillingAccountId BillingAccountName BillingAccountType BillingCurrency BillingPeriodEnd
BillingPeriodStart CapacityReservationId CapacityReservationStatus ChargeCategory ChargeClass ChargeDescription
ChargeFrequency ChargePeriodEnd ChargePeriodStart CommitmentDiscountCategory CommitmentDiscountId
CommitmentDiscountName CommitmentDiscountQuantity CommitmentDiscountStatus CommitmentDiscountType
CommitmentDiscountUnit ConsumedQuantity ConsumedUnit ContractedCost ContractedUnitPrice EffectiveCost InvoiceId
InvoiceIssuerName ListCost ListUnitPrice PricingCategory PricingCurrency PricingCurrencyContractedUnitPrice
PricingCurrencyEffectiveCost PricingCurrencyListUnitPrice PricingQuantity PricingUnit ProviderName PublisherName
RegionId RegionName ResourceId ResourceName ResourceType ServiceCategory ServiceName ServiceSubcategory SkuId SkuMeter
SkuPriceDetails SkuPriceId SubAccountId SubAccountName SubAccountType Tags
""".split())  # noqa: SIM905 (the published list, as it reads)


@pytest.fixture(scope="module")
def caseday(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with caseday_prometheus(tmp_path_factory.mktemp("caseday"), YESTERDAY) as running:
        yield running


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium not installed: run scripts/install-chromium (CI does)")
    return found


def run_chromium(page: Path, profile: Path, *action: str) -> str:
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            "--hide-scrollbars", "--window-size=1200,2400", *action, page.as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def figures(dom: str) -> dict[str, tuple[float | None, str]]:
    """data-figure name -> (exact value, shown text) of every figure in the rendered page."""
    found = {}
    for match in re.finditer(r'<span data-figure="([^"]+)"(?: data-value="([^"]+)")?[^>]*>([^<]*)</span>', dom):
        name, value, text = match.groups()
        found[name] = (float(value) if value else None, text)
    return found


@pytest.mark.prometheus
def test_html_in_headless_chromium_shows_the_prometheus_figures(caseday: Any, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    prometheus, truth = caseday
    page = tmp_path / "report.html"
    assert report.main(["--prometheus", prometheus.url, "--html", str(page)]) == 0
    assert f"HTML report: {page}" in capsys.readouterr().err
    text = page.read_text(encoding="utf-8")
    # Self-contained: nothing to fetch, nothing to run.
    assert not re.search(r"<script|<link|<img|\bsrc=|url\((?!#)|@import", text, re.IGNORECASE)  # url(#id): in-page
    assert text.count("<svg") == 3  # spend per day, spend by model, routing

    dom = run_chromium(page, tmp_path / "profile", "--dump-dom")
    shown = figures(dom)
    # Independently of the report's own queries: every series of the day was born in it, so its
    # highest value over the day is its growth.
    day_end = datetime.combine(YESTERDAY + timedelta(days=1), datetime.min.time(), timezone.utc)
    prom = Prometheus(prometheus.url)
    spend = prom.scalar("sum(max_over_time(otel_llm_cost_USD_total[1d]))", day_end)
    by_model = {labels["gen_ai_request_model"]: value for labels, value in prom.query(
        "sum by (gen_ai_request_model) (max_over_time(otel_llm_cost_USD_total[1d]))", day_end)}
    unpriced = prom.scalar("sum(max_over_time(otel_llm_calls_unpriced_total[1d]))", day_end)
    assert spend == pytest.approx(truth.spend, rel=1e-9)
    assert shown["day.spend_usd"][0] == pytest.approx(spend, rel=1e-9)
    assert shown["day.spend_usd"][1] == f"${spend:,.2f}"
    assert shown["day.unpriced_calls"] == (unpriced, f"{truth.unpriced}")
    assert shown["day.budget"][0] == 50.0 and shown["day.budget_ratio"][0] == pytest.approx(spend / 50)
    for model, usd in by_model.items():
        assert shown[f"day.by.model.{model}"][0] == pytest.approx(usd, rel=1e-9), model
    assert shown[f"day.by.model.{UNPRICED_MODEL}"] == (None, "unpriced")  # not $0
    assert shown[f"day.unpriced.{UNPRICED_MODEL}"][0] == truth.unpriced
    assert shown["day.unpriced_tool_runs.gpt-4.1"][0] == truth.unpriced_tool_runs  # code interpreter: fee not in it
    assert shown["day.cache_savings_usd"][0] == pytest.approx(truth.prompt_savings, rel=1e-9)
    assert shown["day.response_cache_savings_usd"][0] == pytest.approx(truth.response_savings, rel=1e-9)
    for model, failed in truth.failed.items():
        assert shown[f"day.errors.{model}"][0] == failed
        assert shown[f"day.http_429.{model}"][0] == truth.http_429[model]
    for size, usd in truth.reference.items():
        assert shown[f"day.routing.{size}.reference"][0] == pytest.approx(usd, rel=1e-9)
    assert "$0.0000" not in dom

    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    run_chromium(page, tmp_path / "profile2", f"--screenshot={SCREENSHOT}")
    assert SCREENSHOT.stat().st_size > 50_000  # a rendered page, kept in build/ to look at


@pytest.mark.prometheus
def test_csv_and_focus_equal_the_replayed_day_per_label_set(caseday: Any, tmp_path: Path) -> None:
    prometheus, truth = caseday
    out = tmp_path / "chargeback.csv"
    focus = tmp_path / "focus.csv"
    assert report.main(["--prometheus", prometheus.url, "--csv", str(out), "--focus", str(focus)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    got = {(r["model"], r["user"], r["team"], r["api_key"], r["feature"]): r for r in rows}
    assert set(got) == set(truth.rows)
    assert {r["date"] for r in rows} == {YESTERDAY.isoformat()}
    for key, (cost, input_tokens, output_tokens, cached) in truth.rows.items():
        row = got[key]
        if key[0] == UNPRICED_MODEL:
            assert (row["cost_usd"], row["cost_status"]) == ("", "unpriced")
        else:
            assert float(row["cost_usd"]) == pytest.approx(cost, rel=1e-9)
        assert (int(row["input_tokens"]), int(row["output_tokens"]), int(row["cache_read_tokens"])) == (
            input_tokens, output_tokens, cached)
    focus_rows = list(csv.DictReader(io.StringIO(focus.read_text(encoding="utf-8"))))
    assert len(focus_rows) == len(rows)
    assert sum(float(r["BilledCost"] or 0) for r in focus_rows) == pytest.approx(truth.spend, rel=1e-9)
    assert {r["ChargePeriodStart"] for r in focus_rows} == {f"{YESTERDAY.isoformat()}T00:00:00Z"}


@pytest.mark.prometheus
def test_group_by_team_sums_the_rows(caseday: Any, tmp_path: Path) -> None:
    prometheus, truth = caseday
    out = tmp_path / "by-team.csv"
    assert report.main(["--prometheus", prometheus.url, "--csv", str(out), "--group-by", "team"]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {r["user"] for r in rows} == {""} and {r["feature"] for r in rows} == {""}
    expected: dict[tuple[str, str], float] = {}
    for (model, _user, team, _key, _feature), values in truth.rows.items():
        if model != UNPRICED_MODEL:
            expected[(model, team)] = expected.get((model, team), 0.0) + values[0]
    got = {(r["model"], r["team"]): float(r["cost_usd"]) for r in rows if r["cost_usd"]}
    assert got == pytest.approx(expected, rel=1e-9)


def _hand_report() -> dict[str, Any]:
    """A day worked out by hand: alice asks gpt-4.1 1,000 input (250 cached) and 100 output tokens
    at $2 / $1 cached / $8 per million: 750 x 2 + 250 x 1 + 100 x 8 = 2,550 micro-dollars; bob's
    local model has no price."""
    from otel_llm.cli.reportdata import Period, chargeback_rows

    day = Period("day:2026-11-29", "2026-11-29", datetime(2026, 11, 29, tzinfo=timezone.utc),
                 datetime(2026, 11, 30, tzinfo=timezone.utc))
    alice = {"gen_ai_request_model": "gpt-4.1", "gen_ai_provider_name": "openai", "user_id": "alice",
             "otel_llm_team": "support", "otel_llm_api_key_fingerprint": "0a1b2c3d4e5f"}
    bob = {"gen_ai_request_model": "local-70b", "gen_ai_provider_name": "openai_compatible", "user_id": "bob",
           "otel_llm_team": "billing", "otel_llm_api_key_fingerprint": "1b2c3d4e5f60"}
    raw = {"cost": [(alice | {"otel_llm_prompt_size": "medium"}, 0.00255)],
           "tokens": [(alice | {"gen_ai_token_type": "input"}, 1000.0), (alice | {"gen_ai_token_type": "output"}, 100.0),
                      (alice | {"gen_ai_token_type": "cache_read"}, 250.0),
                      (bob | {"gen_ai_token_type": "input"}, 40.0), (bob | {"gen_ai_token_type": "output"}, 2.0)],
           "unpriced": [({"gen_ai_request_model": "local-70b"}, 1.0)]}
    return {"chargeback": chargeback_rows(day, raw),
            "periods": [{"key": "day", "start": day.start.isoformat()},
                        {"key": "month_to_date", "start": "2026-11-01T00:00:00+00:00"}]}


def test_chargeback_csv_of_a_hand_computed_day() -> None:
    assert chargeback_csv(_hand_report()) == (
        "date,model,provider,user,team,api_key,feature,cost_usd,cost_status,input_tokens,output_tokens,"
        "cache_read_tokens\n"
        "2026-11-29,gpt-4.1,openai,alice,support,0a1b2c3d4e5f,,0.00255,,1000,100,250\n"
        "2026-11-29,local-70b,openai_compatible,bob,billing,1b2c3d4e5f60,,,unpriced,40,2,0\n"
    )


def test_focus_of_a_hand_computed_day_uses_focus_1_2_columns() -> None:
    assert set(FOCUS_COLUMNS) - FOCUS_1_2 == {c for c in FOCUS_COLUMNS if c.startswith("x_")}
    assert len(FOCUS_1_2) == 57
    rows = list(csv.DictReader(io.StringIO(focus_csv(_hand_report()))))
    assert {k: rows[0][k] for k in (
        "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd", "ProviderName", "SkuId",
        "ConsumedQuantity", "ConsumedUnit", "BilledCost", "BillingCurrency", "ChargeCategory", "Tags", "PricingQuantity",
        "ListCost")} == {
        "BillingPeriodStart": "2026-11-01T00:00:00Z", "BillingPeriodEnd": "2026-12-01T00:00:00Z",
        "ChargePeriodStart": "2026-11-29T00:00:00Z", "ChargePeriodEnd": "2026-11-30T00:00:00Z",
        "ProviderName": "openai", "SkuId": "gpt-4.1", "ConsumedQuantity": "1100", "ConsumedUnit": "Tokens",
        "BilledCost": "0.00255", "BillingCurrency": "USD", "ChargeCategory": "Usage", "PricingQuantity": "1100",
        "ListCost": "0.00255",
        "Tags": json.dumps({"api_key_fingerprint": "0a1b2c3d4e5f", "team": "support", "user": "alice"}),
    }
    assert (rows[1]["SkuId"], rows[1]["BilledCost"], rows[1]["x_CostStatus"]) == (
        "local-70b", "", "unpriced: no price known for this model")


@pytest.mark.prometheus
def test_digest_reaches_a_local_webhook(caseday: Any, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    prometheus, truth = caseday
    with webhook_receiver() as receiver:
        monkeypatch.setenv("OTEL_LLM_DIGEST_WEBHOOK", receiver.url)  # the daily cron job's way
        assert report.main(["--prometheus", prometheus.url]) == 0
        bodies = receiver.snapshot()
    assert len(bodies) == 1
    lines = bodies[0]["text"].splitlines()
    assert 4 <= len(lines) <= 8
    assert lines[0] == (f"*LLM spend {YESTERDAY.isoformat()}* (UTC): ${truth.spend:,.2f} + {truth.unpriced} unpriced "
                        f"calls ({truth.spend / 50:.0%} of budget)")
    assert lines[2].startswith("Top models: claude-sonnet-4.5 $")
    assert f"{truth.unpriced} unpriced calls" in lines[-1] and f"{sum(truth.http_429.values())} HTTP 429" in lines[-1]
    assert f"{truth.unpriced_tool_runs} tool runs without their fee" in lines[-1]
    assert "digest posted to the webhook" in capsys.readouterr().err


@pytest.mark.prometheus
def test_a_webhook_that_refuses_is_one_line_and_the_files_are_written(
        caseday: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prometheus, _ = caseday
    page = tmp_path / "r.html"
    closed = "http://127.0.0.1:9/hooks/secret-token"
    assert report.main(["--prometheus", prometheus.url, "--html", str(page), "--post-webhook", closed]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("otel-llm report: error: cannot post the digest to the webhook")
    assert "secret-token" not in err[0]
    assert page.exists()


EXEMPLARS = """# TYPE gen_ai_client_token_usage histogram
gen_ai_client_token_usage_bucket{gen_ai_request_model="gpt-4.1",gen_ai_token_type="input",le="1024"} 1 # {trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331"} 900
gen_ai_client_token_usage_bucket{gen_ai_request_model="gpt-4.1",gen_ai_token_type="input",le="16384"} 2 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 12000
gen_ai_client_token_usage_bucket{gen_ai_request_model="gpt-4.1",gen_ai_token_type="input",le="+Inf"} 2
gen_ai_client_token_usage_sum{gen_ai_request_model="gpt-4.1",gen_ai_token_type="input"} 12900
gen_ai_client_token_usage_count{gen_ai_request_model="gpt-4.1",gen_ai_token_type="input"} 2
# EOF
"""
# The same from an app in the latest GenAI conventions (issue 21): input tokens have their own histogram.
EXEMPLARS_LATEST = EXEMPLARS.replace("gen_ai_client_token_usage", "gen_ai_client_inference_operation_input_tokens") \
    .replace(',gen_ai_token_type="input"', "")


@pytest.mark.prometheus
@pytest.mark.parametrize("exposition", [EXEMPLARS, EXEMPLARS_LATEST], ids=["v1.41.0", "latest"])
def test_largest_calls_link_to_their_traces(tmp_path: Path, exposition: str) -> None:
    """An app's token histogram with exemplars, scraped as OpenMetrics by a real Prometheus."""
    from stackservers import fixed_answer, running_prometheus, tool, wait_until

    if tool("prometheus") is None:
        pytest.skip("prometheus not installed: run scripts/install-tools (CI does)")

    openmetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    with fixed_answer(exposition.encode(), content_type=openmetrics) as app, \
            running_prometheus(tmp_path, scrape_targets=[app.removeprefix("http://")]) as prometheus:
        prom = Prometheus(prometheus.url)
        now = datetime.now(timezone.utc)
        wait_until(lambda: len(prom.exemplars(exposition.split()[2] + "_bucket", now - timedelta(hours=1),
                                              datetime.now(timezone.utc))) >= 2, 30, "exemplars scraped")
        page = tmp_path / "r.html"
        assert report.main(["--prometheus", prometheus.url, "--period", "24h", "--html", str(page),
                            "--trace-url", "http://tempo.example/trace/{trace_id}"]) == 0
    text = page.read_text(encoding="utf-8")
    links = re.findall(r'<td>gpt-4.1</td><td class=n>([\d,]+)</td><td><a href="([^"]+)">', text)
    assert links == [("12,000", "http://tempo.example/trace/4bf92f3577b34da6a3ce929d0e0e4736"),
                     ("900", "http://tempo.example/trace/0af7651916cd43dd8448eb211c80319c")]


@pytest.mark.parametrize(("status", "body"), [(500, b"oops"), (200, b"<html>not json</html>"),
                                              (200, b'{"status": "error", "error": "bad query"}')])
def test_a_broken_prometheus_is_one_line(status: int, body: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    from stackservers import fixed_answer

    with fixed_answer(body, status) as prometheus:
        assert report.main(["--prometheus", prometheus]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("otel-llm report: error: "), err
    assert "Traceback" not in err[0]


@pytest.mark.prometheus
def test_demo_writes_the_html_report_and_prints_its_path(capsys: pytest.CaptureFixture[str]) -> None:
    from otel_llm.cli import demo
    from otel_llm.cli.procs import find_binary

    if find_binary("prometheus") is None or find_binary("prometheus-alertmanager", "alertmanager") is None:
        pytest.skip("prometheus/alertmanager not installed: run scripts/install-tools (CI does)")
    assert demo.main([]) == 0
    out = capsys.readouterr().out
    printed = re.search(r"^HTML report: (.+)$", out, re.MULTILINE)
    assert printed, out
    page = Path(printed.group(1))
    shown = figures(page.read_text(encoding="utf-8"))
    spend = re.search(r"^Day    \$([\d.,]+)", out, re.MULTILINE)
    assert spend and shown["day.spend_usd"][1] == f"${spend.group(1)}"  # the page says what the terminal said
    assert 'data-figure="day.flag">OVER BUDGET' in page.read_text(encoding="utf-8")  # the demo's budget is spent

"""reconcile's pure parts on known data: the settled period, the cause of a difference, the readers
of each billing source on documented shapes, the exporter's gauges, and errors that never show a key."""

from __future__ import annotations

import json
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_llm.cli import reconcile
from otel_llm.cli.billing import BillingError, Figures, Line, anthropic, csvfile, exporter, normalize_model, openai
from otel_llm.cli.billing.compare import compare, summarise
from otel_llm.simulator import Simulator, SimulatorConfig

sys.path.insert(0, str(Path(__file__).parents[1] / "stack"))
from stackservers import running_prometheus, tool

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc)


def day(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)


# --- the settled period ------------------------------------------------------------------------

def test_period_counts_only_days_settled_for_the_whole_lag() -> None:
    span = reconcile.period(NOW, settle=86400, days=3, include_today=False)
    # 11-29 ended at 11-30 00:00 and settles at 12-01 00:00: the newest settled day is 11-28.
    assert [d.strftime("%Y-%m-%d") for d in span.days] == ["2026-11-26", "2026-11-27", "2026-11-28"]
    assert span.horizon == day("2026-11-29") and not span.partial
    short = reconcile.period(NOW, settle=3600, days=1, include_today=False)
    assert short.days == (day("2026-11-29"),) and short.settled == day("2026-11-29")


def test_period_with_today_reads_up_to_now_minus_the_lag() -> None:
    span = reconcile.period(NOW, settle=600, days=2, include_today=True)
    assert span.days == (day("2026-11-29"), day("2026-11-30"))
    assert span.horizon == datetime(2026, 11, 30, 14, 50, tzinfo=timezone.utc) and span.partial
    capped = reconcile.period(NOW, settle=0, days=7, include_today=True, since=day("2026-11-01"),
                              until=day("2026-11-03"))
    assert [d.day for d in capped.days] == [1, 2, 3] and capped.horizon == day("2026-11-04")


# --- causes ------------------------------------------------------------------------------------

def line(model: str, cost: float | None, tin: float | None = None, tout: float | None = None,
         cache: float | None = None, date: str = "2026-11-28") -> Line:
    return Line(date, model, Figures(cost, tin, tout, cache))


@pytest.mark.parametrize(("billed", "ours", "unmetered", "cause"), [
    (line("m", 10.0, 1000, 500, 100), line("m", 10.01, 1000, 500, 100), 0, "ok"),
    (line("m", 10.0, 1000, 500, 100), None, 0, "not_recorded"),
    (line("m", 10.0, 1000, 500, 100), None, 4, "tokens_missing"),  # the calls were seen, with no usage
    (line("m", 10.0, 1000, 500, 100), line("m", 8.0, 800, 400, 100), 3, "tokens_missing"),
    (line("m", 10.0, 1000, 500, 100), line("m", 12.0, 1200, 600, 100), 0, "tokens_extra"),
    (line("m", 10.0, 1000, 500, 100), line("m", 10.4, 1000, 500, 0), 0, "cache"),
    (line("m", 10.0, 1000, 500, 100), line("m", 8.0, 1000, 500, 100), 0, "prices"),
    (None, line("m", 1.0, 10, 5, 0), 0, "not_billed"),
    (line("m", 10.0), line("m", 9.0, 900, 450, 0), 0, "cost_only"),
])
def test_cause_of_a_difference(billed: Line | None, ours: Line | None, unmetered: float, cause: str) -> None:
    rows = compare([billed] if billed else [], [ours] if ours else [], {("2026-11-28", "m"): unmetered})
    assert [(row.model, row.cause, row.unmetered_calls) for row in rows] == [("m", cause, unmetered)]


def test_billed_cost_and_tokens_from_separate_lines_add_up_per_day_and_model() -> None:
    billed = [line("gpt-4.1", 3.0), line("gpt-4.1", 1.0), line("gpt-4.1", None, 1000, 200, 0),
              line("deepseek-v3.2", 2.0, date="2026-11-29")]
    ours = [line("gpt-4.1", 3.0, 750, 150, 0), line("deepseek-v3.2", 2.0, date="2026-11-29")]
    rows = compare(billed, ours, {})
    assert [(r.date, r.model, r.billed.cost_usd, r.difference_usd, r.cause) for r in rows] == [
        ("2026-11-28", "gpt-4.1", 4.0, 1.0, "tokens_missing"), ("2026-11-29", "deepseek-v3.2", 2.0, 0.0, "ok")]
    summary = summarise(rows)
    assert summary["explained_share"] == pytest.approx(5 / 6)
    assert summary["by_day"]["2026-11-28"] == {"billed_cost_usd": 4.0, "recorded_cost_usd": 3.0,
                                               "explained_share": 0.75}
    assert [(d["model"], d["share_of_difference"]) for d in summary["largest_differences"]] == [("gpt-4.1", 1.0)]
    assert reconcile.explained_line(summary).startswith("recorded spend explains 83.3% of the billed spend")


def test_model_snapshots_fold_to_the_model() -> None:
    assert normalize_model("gpt-4o-mini-2024-07-18") == "gpt-4o-mini"
    assert normalize_model("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5"
    assert normalize_model("gpt-4.1") == "gpt-4.1"


# --- readers on documented shapes ----------------------------------------------------------------

def test_openai_costs_page_as_documented() -> None:
    # The Costs object example of OpenAI's API reference, in a page; amounts may come as strings.
    page = {"object": "page", "has_more": False, "next_page": None, "data": [
        {"object": "bucket", "start_time": 1730419200, "end_time": 1730505600, "results": [
            {"object": "organization.costs.result", "amount": {"value": 0.06, "currency": "usd"},
             "line_item": "Image models", "project_id": "proj_abc"},
            {"object": "organization.costs.result", "amount": {"value": "1.50", "currency": "usd"},
             "line_item": "gpt-4o-2024-08-06, input", "project_id": None}]}]}
    lines = list(openai.parse_costs(page))
    assert [(x.date, x.model, x.figures.cost_usd, x.project) for x in lines] == [
        ("2024-11-01", "Image models", 0.06, "proj_abc"), ("2024-11-01", "gpt-4o", 1.5, None)]
    page["data"][0]["results"][0]["amount"] = {"value": "n/a", "currency": "usd"}  # type: ignore[index]
    with pytest.raises(BillingError, match="not a number"):
        list(openai.parse_costs(page))


def test_openai_usage_page_as_documented() -> None:
    page = {"object": "page", "has_more": False, "next_page": None, "data": [
        {"object": "bucket", "start_time": 1736616660, "end_time": 1736640000, "results": [
            {"object": "organization.usage.completions.result", "input_tokens": 141201, "output_tokens": 9756,
             "input_cached_tokens": 0, "input_audio_tokens": 0, "output_audio_tokens": 0,
             "num_model_requests": 470, "project_id": None, "user_id": None, "api_key_id": None,
             "model": None, "batch": None}]}]}
    [only] = openai.parse_usage(page)
    assert (only.date, only.model, only.figures) == ("2025-01-11", "(all models)", Figures(None, 141201, 9756, 0, 470))


def test_anthropic_cost_report_amount_is_in_cents() -> None:
    page = {"has_more": False, "next_page": None, "data": [
        {"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z", "results": [
            {"currency": "USD", "amount": "123.45", "workspace_id": "wrkspc_01", "description": "Claude Sonnet 4 Usage",
             "cost_type": "tokens", "context_window": "0-200k", "model": "claude-sonnet-4-20250514",
             "service_tier": "standard", "token_type": "uncached_input_tokens"}]}]}
    [only] = anthropic.parse_cost_report(page)
    assert (only.date, only.model, only.figures.cost_usd, only.project) == (
        "2025-08-01", "claude-sonnet-4", pytest.approx(1.2345), "wrkspc_01")
    usage = {"has_more": False, "data": [{"starting_at": "2025-08-01T00:00:00Z", "results": [
        {"uncached_input_tokens": 100, "cache_creation": {"ephemeral_1h_input_tokens": 10,
                                                          "ephemeral_5m_input_tokens": 20},
         "cache_read_input_tokens": 300, "output_tokens": 50, "model": "claude-sonnet-4-20250514",
         "api_key_id": "apikey_01", "workspace_id": None}]}]}
    [tokens] = anthropic.parse_usage_report(usage)
    assert tokens.figures == Figures(None, 430, 50, 300) and tokens.api_key == "apikey_01"


def test_csv_export_with_a_column_map(tmp_path: Path) -> None:
    path = tmp_path / "gateway-nov.csv"
    path.write_text("Day,Model,Amount,Prompt Tokens,Team\n"
                    "2026-11-28,gpt-4.1,\"$1,234.50\",1000,support\n"
                    "2026-11-28T23:59:00Z,deepseek-v3.2,0.25,,\n", encoding="utf-8")
    mapping = csvfile.parse_map("date=Day, model=Model,cost=Amount,input_tokens=Prompt Tokens,project=Team")
    lines = csvfile.read(path, mapping)
    assert [(x.date, x.model, x.figures.cost_usd, x.figures.input_tokens, x.project) for x in lines] == [
        ("2026-11-28", "gpt-4.1", 1234.5, 1000.0, "support"), ("2026-11-28", "deepseek-v3.2", 0.25, None, None)]


@pytest.mark.parametrize(("text", "mapping", "message"), [
    ("Day,Model,Amount\n2026-11-28,gpt-4.1,abc\n", "date=Day,model=Model,cost=Amount", r"gw.csv:2: Amount: 'abc' is not a number"),
    ("Day,Model,Amount\nyesterday,gpt-4.1,1\n", "date=Day,model=Model,cost=Amount", r"gw.csv:2: date 'yesterday'"),
    ("Day,Model\n2026-11-28,gpt-4.1\n", "date=Day,model=Model", "neither cost nor tokens"),
    ("Day,Model,Amount\n", "date=Day,model=Model,cost=Cost", r"no column for cost=Cost"),
    ("date,model,cost\n", "colour=Red", "unknown field 'colour'"),
])
def test_csv_errors_say_where(tmp_path: Path, text: str, mapping: str, message: str) -> None:
    path = tmp_path / "gw.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BillingError, match=message):
        csvfile.read(path, csvfile.parse_map(mapping))


# --- the exporter ----------------------------------------------------------------------------------

def test_exporter_gauges_and_up(tmp_path: Path) -> None:
    billed = [line("gpt-4.1", 4.0, 1000, 200, 50), *[line("deepseek-v3.2", 1.0, date=f"2026-10-{d:02d}") for d in range(1, 32)],
              *[line("deepseek-v3.2", 1.0, date=f"2026-11-{d:02d}") for d in range(1, 28)]]
    rows = compare(billed, [line("gpt-4.1", 3.0, 750, 150, 50)], {})
    calls = []

    def fetch() -> tuple[list, datetime]:
        calls.append(1)
        if len(calls) == 2:
            raise BillingError("the OpenAI Costs API answered 500: boom")
        if len(calls) == 3:
            raise ZeroDivisionError("a bug of ours")
        return rows, day("2026-11-28")

    server = exporter.Exporter("openai", fetch, "127.0.0.1", 0, 3600).start()
    try:
        server.refresh()
        first = _scrape(server.port)
        server.refresh()  # fails: up 0, the figures stay
        second = _scrape(server.port)
        server.refresh()  # our own bug: the same, and no exception escapes the refresh loop
        third = _scrape(server.port)
    finally:
        server.stop()
    assert first["otel_llm_billing_up"] == {(("provider", "openai"),): 1.0}
    assert second["otel_llm_billing_up"] == {(("provider", "openai"),): 0.0}
    assert first["otel_llm_billed_cost_usd"] == second["otel_llm_billed_cost_usd"] == third["otel_llm_billed_cost_usd"]
    assert third["otel_llm_billing_up"] == {(("provider", "openai"),): 0.0}
    billed_cost = first["otel_llm_billed_cost_usd"]
    assert len({dict(k)["date"] for k in billed_cost}) == exporter.MAX_DAYS  # 59 days billed, 35 published
    key = (("date", "2026-11-28"), ("model", "gpt-4.1"), ("provider", "openai"))
    assert billed_cost[key] == 4.0 and first["otel_llm_reconcile_recorded_cost_usd"][key] == 3.0
    assert first["otel_llm_billed_tokens"][(*key, ("token_type", "cache_read"))] == 50.0
    assert first["otel_llm_billing_settled_date_timestamp_seconds"] == {
        (("provider", "openai"),): day("2026-11-28").timestamp()}


def _scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
            for family in text_string_to_metric_families(text)}


# --- keys ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "status"), [("sk-invalid-0123456789abcdef", "401"), ("sk-app-0123456789", "403")])
def test_a_refused_key_is_a_one_line_error_without_the_key(
    key: str, status: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", key)
    with Simulator(config=SimulatorConfig(latency_scale=0.0)) as sim:
        code = reconcile.main(["--base-url", sim.base_url, "--prometheus", "http://127.0.0.1:9", "--days", "1"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and f"answered {status}" in err and key not in err


def test_missing_admin_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    assert reconcile.main(["--days", "1"]) == 1
    assert "set OPENAI_ADMIN_KEY" in capsys.readouterr().err


@pytest.mark.prometheus
@pytest.mark.skipif(tool("prometheus") is None, reason="prometheus not installed: run scripts/install-tools")
def test_csv_json_output_without_prometheus_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CSV bill against a Prometheus that knows nothing: every row billed, and no instrumented process
    reported that day, which points at the telemetry's path before at uninstrumented traffic."""
    path = tmp_path / "gw.csv"
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    path.write_text(f"date,model,cost\n{today},gpt-4.1,2.5\n", encoding="utf-8")
    with running_prometheus(tmp_path) as prometheus:
        code = reconcile.main(["--from-csv", str(path), "--prometheus", prometheus.url, "--include-today",
                               "--settle", "0", "--days", "1", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    assert result["provider"] == "gw"
    assert [(r["model"], r["billed_cost_usd"], r["recorded_cost_usd"], r["cause"]) for r in result["rows"]] == [
        ("gpt-4.1", 2.5, 0.0, "no_telemetry")]
    assert "no instrumented process reported" in result["rows"][0]["cause_text"]


def test_anthropic_fetch_sends_the_documented_request_and_follows_pages() -> None:
    """Against a loopback server answering the documented shapes: admin key header, API version,
    `group_by[]`, RFC 3339 bounds, and `page` = the previous `next_page`."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    seen: list[tuple[str, dict[str, list[str]], str | None, str | None]] = []
    cost_pages = {
        None: {"has_more": True, "next_page": "page_2", "data": [{"starting_at": "2026-11-28T00:00:00Z", "results": [
            {"currency": "USD", "amount": "250", "model": "claude-sonnet-4-5-20250929", "token_type": "output_tokens",
             "workspace_id": None, "description": "Claude Sonnet 4.5 Usage - Output Tokens", "cost_type": "tokens"}]}]},
        "page_2": {"has_more": False, "next_page": None, "data": [{"starting_at": "2026-11-29T00:00:00Z", "results": [
            {"currency": "USD", "amount": "100.5", "model": "claude-sonnet-4-5-20250929",
             "token_type": "uncached_input_tokens", "workspace_id": "wrkspc_1", "cost_type": "tokens"}]}]},
    }
    usage_page = {"has_more": False, "next_page": None, "data": [{"starting_at": "2026-11-28T00:00:00Z", "results": [
        {"uncached_input_tokens": 1000, "cache_read_input_tokens": 0, "output_tokens": 400,
         "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
         "model": "claude-sonnet-4-5-20250929", "api_key_id": "apikey_1", "workspace_id": None}]}]}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            seen.append((url.path, query, self.headers.get("x-api-key"), self.headers.get("anthropic-version")))
            page = query.get("page", [None])[0]
            body = cost_pages[page] if url.path.endswith("cost_report") else usage_page
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        lines = anthropic.fetch(f"http://127.0.0.1:{server.server_address[1]}/v1", "sk-ant-admin-secret",
                                day("2026-11-28"), day("2026-11-30"))
    finally:
        server.shutdown()
        server.server_close()
    assert [path for path, *_ in seen] == ["/v1/organizations/cost_report"] * 2 + [
        "/v1/organizations/usage_report/messages"]
    assert all(key == "sk-ant-admin-secret" and version == "2023-06-01" for _, _, key, version in seen)
    first = seen[0][1]
    assert first["group_by[]"] == ["description", "workspace_id"] and first["bucket_width"] == ["1d"]
    assert first["starting_at"] == ["2026-11-28T00:00:00Z"] and first["ending_at"] == ["2026-11-30T00:00:00Z"]
    assert seen[1][1]["page"] == ["page_2"]
    assert [(x.date, x.model, x.figures.cost_usd, x.figures.input_tokens) for x in lines] == [
        ("2026-11-28", "claude-sonnet-4-5", 2.5, None), ("2026-11-29", "claude-sonnet-4-5", 1.005, None),
        ("2026-11-28", "claude-sonnet-4-5", None, 1000.0)]


def test_a_billed_model_never_recorded_on_a_day_no_process_reported_is_blamed_on_the_telemetry() -> None:
    billed = [Line("2026-11-28", "gpt-4.1", Figures(cost_usd=2.0)), Line("2026-11-29", "gpt-4.1", Figures(cost_usd=3.0))]
    rows = compare(billed, [Line("2026-11-29", "o4-mini", Figures(cost_usd=1.0))], {}, silent={"2026-11-28"})
    assert [(r.date, r.model, r.cause) for r in rows] == [
        ("2026-11-28", "gpt-4.1", "no_telemetry"),  # nothing reported that day: the pipeline first
        ("2026-11-29", "gpt-4.1", "not_recorded"),  # processes reported, this model never: uninstrumented traffic
        ("2026-11-29", "o4-mini", "not_billed"),
    ]

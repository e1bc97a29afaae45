"""Grafana: dashboards are a fresh render of grafana/build.py, validate against the foundation
SDK's types, and every PromQL expression in them parses and runs on a real Prometheus."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard
from stackservers import Prometheus

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "grafana/dashboards").glob("*.json"))
# Grafana's variables, replaced by values a plain Prometheus query accepts.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
                     "$model": "gpt-4.1", "$user": "alice", "$session": "s-1", "$env": ".*"}


def load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_build", REPO / "grafana/build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def prometheus_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("datasource", panel.get("datasource", {})).get("type") == "prometheus" and "expr" in target:
                yield panel["title"], target["expr"]


def all_exprs() -> list[tuple[str, str]]:
    return [(f"{path.stem}: {title}", expr) for path in DASHBOARDS
            for title, expr in prometheus_exprs(json.loads(path.read_text()))]


def test_committed_dashboards_are_a_fresh_render() -> None:
    build = load_build()
    assert sorted(p.name for p in DASHBOARDS) == sorted(build.DASHBOARDS)
    for path in DASHBOARDS:
        assert path.read_text() == build.render(build.DASHBOARDS[path.name]), f"{path.name}: run grafana/build.py"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_json_round_trips_through_the_sdk_types(path: Path) -> None:
    # Decoding into the SDK's typed models and encoding back loses every key the types do not
    # know and normalises every value of the wrong shape, so equality means the JSON is typed.
    register_default_plugins()
    data = json.loads(path.read_text())
    typed = Dashboard.from_json(data)
    assert json.loads(json.dumps(typed, cls=JSONEncoder)) == data


def test_round_trip_check_catches_an_unknown_key() -> None:
    register_default_plugins()
    data = json.loads(DASHBOARDS[0].read_text())
    data["panels"][0]["titel"] = "typo"
    assert json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder)) != data


def test_dashboards_cover_the_required_views() -> None:
    text = {p.stem: p.read_text() for p in DASHBOARDS}
    cost, perf, drill = text["cost-overview"], text["performance"], text["drilldown"]
    for needle in ("scope:otel_llm_cost_usd:mtd_projected", "gen_ai_request_model", "gen_ai_provider_name",
                   "user_id", "otel_llm_team", "otel_llm_api_key_fingerprint", "gen_ai_token_type",
                   "cache_read", "otel_llm_cache_savings_USD_total", "otel_llm_calls_unpriced",
                   "otel_llm_cost_reference_USD_total", "otel_llm_prompt_size"):
        assert needle in cost, needle
    for needle in ("gen_ai_client_operation_duration_seconds_bucket", "time_to_first_chunk",
                   "histogram_quantile(0.99", "otel_llm_http_status_class=\\\"429\\\"", "sum by (server_address)"):
        assert needle in perf, needle
    assert "span.user.id" in drill and "span.session.id" in drill


def test_exemplars_are_asked_for_only_where_the_metric_carries_them() -> None:
    """Exemplars come with the synchronous GenAI histograms (recorded in the span's context); our
    counters are observable and carry none, so a panel over them must not promise any."""
    with_exemplars = {}
    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                if target.get("exemplar"):
                    with_exemplars[panel["title"]] = target["expr"]
    assert "Latency p50 / p95 / p99" in with_exemplars
    for title, expr in with_exemplars.items():
        assert "_bucket" in expr and "otel_llm_cost" not in expr, title


def test_datasources_link_exemplars_to_tempo_and_traces_to_metrics() -> None:
    config = yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yaml").read_text())
    by_uid = {d["uid"]: d for d in config["datasources"]}
    assert by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": "tempo"}]
    t2m = by_uid["tempo"]["jsonData"]["tracesToMetrics"]
    assert t2m["datasourceUid"] == "prometheus"
    # Grafana expands $VAR in provisioning files: the query variable must be escaped as $$.
    assert all("$$__tags" in q["query"] for q in t2m["queries"])
    assert by_uid["alertmanager"]["type"] == "alertmanager"


# Agreed between helpers (briefs' COMMON names) before every one of them is in docs/CONTRACT.md.
AGREED: frozenset[str] = frozenset({
    "otel_llm_calls_unmetered_total", "otel_llm_usage_rejected_total", "otel_llm_process_start_time_seconds",
    "otel_llm_billed_cost_usd", "otel_llm_billed_tokens", "otel_llm_reconcile_recorded_cost_usd",
    "otel_llm_billing_settled_date_timestamp_seconds", "otel_llm_billing_up",
})


def known_metric_names() -> set[str]:
    contract = (REPO / "docs/CONTRACT.md").read_text()
    from otel_llm.cli.queries import LATEST_NAMES  # the latest conventions' names (README)

    names = set(re.findall(r"\b((?:gen_ai|otel_llm)_[a-z0-9_A-Z]+)\b", contract)) | AGREED | set(LATEST_NAMES.values())
    for base in [n.removesuffix("_*") for n in re.findall(r"\b(\w+_\*)", contract)] + list(names):
        names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    for path in (REPO / "prometheus/rules").glob("*.yml"):
        names |= {r["record"] for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "record" in r}
    return names


def test_dashboards_query_only_contract_metrics_and_recorded_series() -> None:
    known = known_metric_names()
    for where, expr in all_exprs():
        for name in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", expr):
            assert name in known, f"{where}: unknown metric {name}"


@pytest.mark.prometheus
def test_every_dashboard_promql_runs_on_a_real_prometheus(start_prometheus: Callable[..., Prometheus]) -> None:
    prometheus = start_prometheus()
    exprs = all_exprs()
    assert len(exprs) > 30
    errors = []
    for where, expr in exprs:
        for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
            expr = expr.replace(variable, value)
        assert "$" not in expr.replace("${", ""), f"{where}: unreplaced variable in {expr}"
        try:
            prometheus.query(expr)
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
    assert not errors, "\n".join(errors)


@pytest.mark.prometheus
def test_the_parse_check_catches_a_broken_query(start_prometheus: Callable[..., Prometheus]) -> None:
    with pytest.raises(ValueError, match="parse error"):
        start_prometheus().query("sum by (model (rate(otel_llm_calls_total[5m]))")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_fit_the_24_column_grid_without_overlap(path: Path) -> None:
    """Issue 17.7: a panel past column 24 is wrapped or squeezed by Grafana, not where it was built."""
    taken: dict[tuple[int, int], str] = {}
    for panel in json.loads(path.read_text())["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, f"{panel['title']}: {grid}"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_prometheus_datasource_steps_cover_remote_written_samples() -> None:
    """Issue 17.7: samples arrive every 60s by remote write; without timeInterval Grafana picks a
    $__rate_interval under two samples on short ranges, and every rate() panel is empty."""
    config = yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yaml").read_text())
    prometheus = next(d for d in config["datasources"] if d["uid"] == "prometheus")
    assert prometheus["jsonData"]["timeInterval"] == "60s"


def test_traces_to_metrics_queries_use_only_labels_their_metric_has() -> None:
    """Issue 17.7: the duration histogram has no user_id, so a $__tags with user.id empties it."""
    config = yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yaml").read_text())
    t2m = next(d for d in config["datasources"] if d["uid"] == "tempo")["jsonData"]["tracesToMetrics"]
    tag_labels = {t.get("value", t["key"]) for t in t2m["tags"]}
    for query in t2m["queries"]:
        if "gen_ai_client_operation_duration_seconds" in query["query"] and "$$__tags" in query["query"]:
            assert "user_id" not in tag_labels, query["name"]


def test_error_ratio_panels_show_zero_for_models_without_errors() -> None:
    """Issue 17.7: errors / calls is empty where no error series exists; `or calls * 0` makes it 0."""
    for where, expr in all_exprs():
        if "error_type!=" in expr and " / " in expr:
            assert " or " in expr, where


# The named range figures the report shows (otel_llm/cli/queries.py, FIGURES and RATIOS).
REPORT_FIGURES = ("spend", "spend_by_model", "spend_by_user", "spend_by_team", "spend_by_api_key",
                  "spend_by_feature", "spend_by_prompt_size", "reference_by_prompt_size", "prompt_cache_hit_ratio",
                  "response_cache_hit_ratio", "cache_savings_by_kind", "unpriced_calls_by_model",
                  "unmetered_calls_by_model", "unpriced_tool_runs_by_model", "failed_calls_by_model",
                  "http_429_by_model")


def figure_panels() -> dict[str, list[str]]:
    """Figure name -> the panels (dashboard: title) whose query is that figure's shared query."""
    from otel_llm.cli.queries import WINDOW, figure

    build = load_build()
    by_expr = {figure(name, WINDOW, where): name for name in REPORT_FIGURES for where in build.FILTERS}
    found: dict[str, list[str]] = {}
    for where, expr in all_exprs():
        if expr in by_expr:
            found.setdefault(by_expr[expr], []).append(where)
    return found


def test_every_report_figure_is_drawn_from_its_shared_query() -> None:
    """Issue 19.2: a panel showing a figure of the report draws on the same query definition
    (cli/queries.figure), so a fix to one fixes both; a panel that rewrites the expression fails here."""
    found = figure_panels()
    assert [name for name in REPORT_FIGURES if name not in found] == []


def test_no_panel_computes_a_range_figure_its_own_way() -> None:
    """Range figures are exact growth (cli/queries.growth), never increase() over the range, which
    extrapolates and misses a new series' first increment, nor a sum of the rules' per-minute deltas,
    which counts a process first seen running differently from the report."""
    for where, expr in all_exprs():
        assert not re.search(r"(increase|sum_over_time)\([^()]*\[\$__range\]", expr), f"{where}: {expr}"


def test_the_cost_dashboard_says_what_its_range_figures_cannot_see() -> None:
    """Range figures are read at the range's two ends: a process restarted under the same id in the range
    is under-counted (the report is exact, tests/cli/test_report_restarts.py), and a range nothing
    reported in reads $0. The dashboard lists the restarts per process and counts the processes that
    reported, from the shared queries, beside the figures, so neither is silent."""
    from otel_llm.cli.queries import WINDOW, reporting, restart_counts

    build = load_build()
    cost = {expr for where, expr in all_exprs() if where.startswith("cost-overview: ")}
    assert restart_counts(WINDOW, build.ENV) in cost
    assert reporting(WINDOW, build.ENV) in cost


def test_panels_read_standard_metrics_under_either_name() -> None:
    """Issue 21: with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental the standard duration
    and time-to-first-chunk histograms are renamed; a panel or a traces-to-metrics query that reads
    the v1.41.0 name must read the latest one too (README "Semantic conventions")."""
    from otel_llm.cli.queries import LATEST_NAMES

    config = yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yaml").read_text())
    t2m = next(d for d in config["datasources"] if d["uid"] == "tempo")["jsonData"]["tracesToMetrics"]
    exprs = all_exprs() + [(f"traces to metrics: {q['name']}", q["query"]) for q in t2m["queries"]]
    missing = [f"{where}: {latest}" for where, expr in exprs for old, latest in LATEST_NAMES.items()
               if re.search(rf"\b{old}_(bucket|count|sum)\b", expr) and latest not in expr]
    assert missing == []
    assert LATEST_NAMES == {"gen_ai_client_operation_duration_seconds": "gen_ai_client_inference_duration_seconds",
                            "gen_ai_client_operation_time_to_first_chunk_seconds":
                                "gen_ai_client_inference_time_to_first_chunk_seconds"}

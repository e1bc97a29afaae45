"""Build the Grafana dashboards as code with grafana-foundation-sdk; write them to grafana/dashboards/.

    python grafana/build.py          # rewrite the JSON files
    python grafana/build.py --check  # exit 1 if a committed file differs from a fresh render

Panels come from a few small factories so every panel of a kind looks and behaves the same. A panel
that shows a figure of the report over the dashboard's range draws on the report's own query
definition (otel_llm/cli/queries.py, `figure`), so a fix to one fixes both; budget panels read the
recording rules of prometheus/rules/cost.rules.yml, rates use rate().
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import quote

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import stat, table, tempo, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from otel_llm.cli.queries import LATEST_NAMES, WINDOW, figure, growth, reporting, restart_counts

OUT_DIR: Final = Path(__file__).parent / "dashboards"
PROMETHEUS: Final = DataSourceRef(type_val="prometheus", uid="prometheus")
TEMPO: Final = DataSourceRef(type_val="tempo", uid="tempo")
USD: Final = "currencyUSD"
GLOBAL: Final = 'scope="global"'


# --- queries ----------------------------------------------------------------------------------
def q(expr: str, legend: str = "", *, instant: bool = False, exemplar: bool = False,
      ref: str = "A", table_format: bool = False) -> prom.Dataquery:
    query = prom.Dataquery().expr(expr).ref_id(ref).legend_format(legend or "__auto")
    query = query.instant() if instant else query.range()
    if table_format:
        query = query.format(PromQueryFormat.TABLE)
    return query.exemplar(exemplar)


def rate_of(metric: str, selector: str, window: str = "$__rate_interval") -> str:
    """rate() of `metric`'s series under its v1.41.0 name or its latest-conventions name (issue 21),
    per series before any sum: in the /dup mode a call is in both with the same labels, counted once."""
    names = [metric, LATEST_NAMES[metric.removesuffix("_bucket")] + "_bucket"] \
        if metric.removesuffix("_bucket") in LATEST_NAMES else [metric]
    return " or ".join(f"rate({name}{{{selector}}}[{window}])" for name in names)


def traceql(query: str) -> tempo.TempoQuery:
    return tempo.TempoQuery().ref_id("A").query_type("traceql").query(query).limit(50)


def explore_traces(traceql_query: str) -> str:
    """A Grafana Explore URL that runs `traceql_query` against Tempo (variables stay literal)."""
    pane = {"a": {"datasource": "tempo", "queries": [
        {"refId": "A", "datasource": {"type": "tempo", "uid": "tempo"}, "queryType": "traceql",
         "query": traceql_query}], "range": {"from": "now-24h", "to": "now"}}}
    return "/explore?schemaVersion=1&panes=" + quote(json.dumps(pane, separators=(",", ":")), safe="${}")


# --- panel factories --------------------------------------------------------------------------
def money_stat(title: str, expr: str, *, description: str = "", time_from: str = "",
               height: int = 5) -> stat.Panel:
    panel = (stat.Panel().title(title).description(description).datasource(PROMETHEUS)
             .with_target(q(expr, instant=True)).unit(USD).decimals(2).height(height).span(4)
             .graph_mode(common.BigValueGraphMode.NONE))
    return panel.time_from(time_from) if time_from else panel


def ratio_stat(title: str, expr: str, *, description: str = "") -> stat.Panel:
    # Budget colours: the alert thresholds (50% info, 80% warning, 100% critical).
    steps = [(None, "green"), (0.5, "yellow"), (0.8, "orange"), (1.0, "red")]
    thresholds = db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])
    return (stat.Panel().title(title).description(description).datasource(PROMETHEUS)
            .with_target(q(expr, instant=True)).unit("percentunit").decimals(1).height(5).span(4)
            .thresholds(thresholds).color_mode(common.BigValueColorMode.BACKGROUND)
            .graph_mode(common.BigValueGraphMode.NONE))


def stat_count(title: str, expr: str, *, description: str = "", span: int = 4) -> stat.Panel:
    """A count where 0 is the warning (nothing reported): red at 0, green from 1."""
    thresholds = db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=None, color="red"), Threshold(value=1, color="green")])
    return (stat.Panel().title(title).description(description).datasource(PROMETHEUS)
            .with_target(q(expr, instant=True)).unit("short").decimals(0).height(8).span(span)
            .thresholds(thresholds).color_mode(common.BigValueColorMode.BACKGROUND)
            .graph_mode(common.BigValueGraphMode.NONE))


def graph(title: str, queries: Sequence[prom.Dataquery], unit: str, *, description: str = "",
          span: int = 12, stacked: bool = False, min_interval: str = "") -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).datasource(PROMETHEUS)
             .targets(list(queries)).unit(unit).height(8).span(span).fill_opacity(10)
             .legend(cb.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True)))
    if stacked:
        panel = panel.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel.interval(min_interval) if min_interval else panel


def top_table(title: str, expr: str, unit: str, *, links: Sequence[db.DashboardLink] = (),
              description: str = "", span: int = 8) -> table.Panel:
    panel = (table.Panel().title(title).description(description).datasource(PROMETHEUS)
             .with_target(q(expr, instant=True, table_format=True)).unit(unit).height(8).span(span)
             .show_header(True).align(common.FieldTextAlignment.AUTO).inspect(False)
             .sort_by([cb.TableSortByFieldState().display_name("Value").desc(True)])
             # Hide Prometheus' Time column: these tables rank holders over the whole range.
             .with_transformation(DataTransformerConfig(id_val="organize",
                                                        options={"excludeByName": {"Time": True}})))
    return panel.data_links(list(links)) if links else panel


def trace_table(title: str, query: str, *, span: int) -> table.Panel:
    """Traces matching a TraceQL query; Grafana links each trace id to the Tempo trace view."""
    return (table.Panel().title(title).datasource(TEMPO).with_target(traceql(query))
            .height(10).span(span).show_header(True))


def link(title: str, url: str) -> db.DashboardLink:
    return db.DashboardLink(title).type(DashboardLinkType.LINK).url(url).target_blank(False)


def label_var(name: str, label: str, metric: str, label_name: str, *, multi: bool = True) -> db.QueryVariable:
    return (db.QueryVariable(name).label(label).datasource(PROMETHEUS)
            .query(f"label_values({metric}, {label_name})").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC).multi(multi).include_all(multi).all_value(".*"))


def base(uid: str, title: str, description: str) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(description).tags(["otel-llm", "llm"])
            .time("now-24h", "now").refresh("1m").timezone("utc").tooltip(DashboardCursorSync.CROSSHAIR)
            .editable())


# --- dashboards ---------------------------------------------------------------------------------
ENV: Final = 'deployment_environment_name=~"$env"'
DURATION: Final = "gen_ai_client_operation_duration_seconds_bucket"
PERF: Final = f'gen_ai_request_model=~"$model",{ENV}'
# The variables' matchers a shared figure is narrowed by (cli/queries.figure's `where`).
FILTERS: Final = (ENV, PERF)


def shared(name: str, where: str = ENV) -> str:
    """The report's figure `name` over the dashboard's range, narrowed by the dashboard's variables."""
    return figure(name, WINDOW, where)


def env_var() -> db.QueryVariable:
    """deployment.environment.name, promoted to a metric label by the Collector (collector/otelcol.yaml)."""
    return label_var("env", "Environment", "otel_llm_calls_total", "deployment_environment_name")


def cost_overview() -> db.Dashboard:
    # Exact per-minute spend by model or endpoint: the rules' per-model deltas (rollup path and raw path, issue 20).
    by = f"sum by ({{label}}) (sum_over_time(model:otel_llm_cost_usd:delta1m{{{{{ENV}}}}}[$__interval]))"
    drill = link("Drill down into this user", "/d/otel-llm-drilldown?var-user=${__data.fields.user_id}")
    traces = link("Traces of this user in Tempo",
                  explore_traces('{ span.user.id = "${__data.fields.user_id}" }'))

    return (
        base("otel-llm-cost", "LLM cost overview",
             "Spend, budgets, month-end projection, attribution, tokens, caching and routing savings.")
        .with_variable(env_var())
        .with_row(db.Row("Budgets"))
        .with_panel(money_stat("Spend today (budget day)", f"scope:otel_llm_cost_usd:dtd{{{GLOBAL}}}",
                               description="Exact, since the start of the budget day (the calendar day in the "
                               "UTC offset of prometheus/rules/budget_day.yml): the figure LLMDailyBudgetSpent "
                               "pages on."))
        .with_panel(money_stat("Spend, last 24 hours", f"scope:otel_llm_cost_usd:sum24h{{{GLOBAL}}}",
                               description="Rolling 24 hours: a burn signal across midnight "
                               "(LLMDailyBudgetRollingSpent)."))
        .with_panel(ratio_stat("Daily budget used today", f"scope:otel_llm_cost_usd:dtd_budget_ratio{{{GLOBAL}}}"))
        .with_panel(money_stat("Month to date (UTC)", f"scope:otel_llm_cost_usd:mtd{{{GLOBAL}}}"))
        .with_panel(money_stat("Projected month end", f"scope:otel_llm_cost_usd:mtd_projected{{{GLOBAL}}}",
                               description="Month to date divided by the elapsed fraction of the month."))
        .with_panel(ratio_stat("Projection vs monthly budget",
                               f"scope:otel_llm_cost_usd:mtd_projected_budget_ratio{{{GLOBAL}}}"))
        .with_panel(graph("Budget use by scope", [
            q("scope:otel_llm_cost_usd:dtd_budget_ratio", "today {{scope}} {{holder}}", ref="A"),
            q("scope:otel_llm_cost_usd:mtd_budget_ratio", "monthly {{scope}} {{holder}}", ref="B"),
        ], "percentunit", description="Every budget in prometheus/budgets.yaml; alerts at 50/80/100%."))
        .with_panel(top_table(
            "Remaining monthly budget per API key",
            '(otel_llm:budget_usd:monthly{scope="api_key"} - scope:otel_llm_cost_usd:mtd{scope="api_key"})'
            ' or otel_llm:budget_usd:monthly{scope="api_key"}', USD, span=12,
            description="Monthly budget minus month to date, per key fingerprint with a budget; negative is over."))
        .with_row(db.Row("Where the money goes"))
        .with_panel(money_stat("Spend over the range", shared("spend"), height=8,
                               description="Exact spend in the dashboard's time range: the report's figure. A "
                               "process restarted under the same id in the range is under-counted here, and "
                               "listed under 'Can the number be trusted?'; `otel-llm report` reads it exactly."))
        .with_panel(top_table("Spend by model over the range (ranked)", shared("spend_by_model"),
                              USD, description="Exact spend in the dashboard's time range, most expensive first."))
        .with_panel(graph("Spend by model", [q(by.format(label="gen_ai_request_model"))], USD,
                          span=12, stacked=True, min_interval="1m"))
        .with_panel(top_table("Top users over the range", shared("spend_by_user"), USD, links=[drill, traces]))
        .with_panel(top_table("Top teams over the range", shared("spend_by_team"), USD))
        .with_panel(top_table("Top API keys (fingerprint) over the range", shared("spend_by_api_key"), USD))
        .with_panel(top_table("Spend by feature over the range", shared("spend_by_feature"), USD))
        .with_panel(top_table("Spend by provider over the range", shared("spend_by_provider"), USD))
        .with_panel(graph("Spend by endpoint (server_address)", [q(by.format(label="server_address"))], USD,
                          span=8, stacked=True, min_interval="1m"))
        .with_panel(trace_table("Most expensive calls (over $0.05, newest first)",
                                "{ span.otel_llm.cost.usd > 0.05 } | select(span.otel_llm.cost.usd, "
                                "span.gen_ai.request.model, span.user.id)", span=12))
        .with_panel(trace_table("Slowest calls (over 10 s, newest first)",
                                "{ span.gen_ai.operation.name != nil && duration > 10s } | "
                                "select(span.gen_ai.request.model, span.user.id)", span=12))
        .with_row(db.Row("Tokens and caching"))
        .with_panel(ratio_stat("Prompt cache hit ratio over the range", shared("prompt_cache_hit_ratio"),
                               description="Input tokens served from the provider's prompt cache, of all "
                               "input tokens, in the dashboard's time range."))
        .with_panel(ratio_stat("Response cache hit ratio over the range", shared("response_cache_hit_ratio"),
                               description="Lookups in otel_llm's response cache that hit, in the range."))
        .with_panel(graph("Tokens per minute by type",
                          [q(f"sum by (gen_ai_token_type) (rate(otel_llm_tokens_total{{{ENV}}}[$__rate_interval])) * 60")],
                          "short", span=16))
        .with_panel(graph("Cache hit ratios", [
            q(f'sum(rate(otel_llm_tokens_total{{{ENV},gen_ai_token_type="cache_read"}}[$__rate_interval]))'
              f' / sum(rate(otel_llm_tokens_total{{{ENV},gen_ai_token_type="input"}}[$__rate_interval]))',
              "prompt cache (input tokens served from cache)", ref="A"),
            q(f'sum(rate(otel_llm_response_cache_requests_total{{{ENV},otel_llm_response_cache_result="hit"}}[$__rate_interval]))'
              f" / sum(rate(otel_llm_response_cache_requests_total{{{ENV}}}[$__rate_interval]))",
              "response cache (requests)", ref="B"),
        ], "percentunit", span=8))
        .with_panel(graph("Cache savings per hour", [
            q(f"sum by (otel_llm_cache_kind) (rate(otel_llm_cache_savings_USD_total{{{ENV}}}[$__rate_interval])) * 3600")],
            USD, span=8))
        .with_panel(top_table("Cache savings over the range", shared("cache_savings_by_kind"), USD,
                              description="Prompt cache (provider) and response cache (otel_llm), in the range."))
        .with_row(db.Row("Routing and pricing"))
        .with_panel(graph("Routing: actual vs reference-model cost by prompt size", [
            q(f"sum by (otel_llm_prompt_size) (rate(otel_llm_cost_USD_total{{{ENV}}}[$__rate_interval])) * 3600",
              "actual {{otel_llm_prompt_size}}", ref="A"),
            q(f"sum by (otel_llm_prompt_size) (rate(otel_llm_cost_reference_USD_total{{{ENV}}}[$__rate_interval])) * 3600",
              "if all on reference model {{otel_llm_prompt_size}}", ref="B"),
        ], USD, span=12, description="Per hour. Reference cost needs OTEL_LLM_REFERENCE_MODEL."))
        .with_panel(routing_table())
        .with_row(db.Row("Can the number be trusted?"))
        .with_panel(top_table("Unpriced calls in range (spend under-reported)", shared("unpriced_calls_by_model"),
                              "short", span=6, description="Calls with no price: their cost is not in the spend "
                              "(LLMUnpricedCalls)."))
        .with_panel(top_table("Unmetered calls in range (no usage at all: spend not measured)",
                              shared("unmetered_calls_by_model"), "short", span=6,
                              description="Calls that ended with no usage (LLMSpendNotMeasured)."))
        .with_panel(top_table("Rejected usage in range (outside what a call can reach)",
                              growth("otel_llm_usage_rejected_total", WINDOW,
                                     ["gen_ai_request_model", "otel_llm_rejected_reason"], ENV) + " > 0", "short",
                              span=6, description="Usage or cost values not added to the sums (LLMUsageRejected)."))
        .with_panel(top_table("Spend possibly missed (upper bound, last 24h)",
                              "instance:otel_llm_cost_usd_unmeasured:sum24h", USD, span=6,
                              description="Processes first seen already running: their earlier spend is "
                              "not in the figures (LLMSpendPossiblyMissed)."))
        .with_panel(top_table("Hosted tool runs in range without their fee in the spend",
                              shared("unpriced_tool_runs_by_model"), "short", span=12,
                              description="Runs of tools the provider hosts for Responses API calls whose fee the "
                              "spend does not include: code interpreter (billed per container session), image "
                              "generation, or a web or file search on a call not priced at OpenAI's list."))
        .with_panel(stat_count("Processes reporting in range", reporting(WINDOW, ENV), span=12,
                               description="Instrumented processes that exported telemetry in the range (each "
                               "reports its start time at every collection, calls or not). 0: nothing arrived, "
                               "so a $0 above is not a measured zero."))
        .with_panel(top_table("Restarts under the same id in range, per process (range figures under-count "
                              "a restarted one)", restart_counts(WINDOW, ENV), "short", span=24,
                              description="Restarts (changes of the start time every instrumented process "
                              "reports) of each job and instance, most first; 0 for a process that ran "
                              "through. A restart under the same id is e.g. a container restarted in its pod: its series "
                              "start again from zero, and the range figures on this dashboard, read at the "
                              "range's two ends, miss what it counted before each restart. `otel-llm report` "
                              "adds each run and gives the exact figure; the budget rules count them too."))
        .with_panel(billed_vs_recorded())
    )


def routing_table() -> table.Panel:
    """Per prompt size over the range: what was spent, and what the reference model would have cost."""
    targets = [q(shared("spend_by_prompt_size"), ref="A", instant=True, table_format=True),
               q(shared("reference_by_prompt_size"), ref="B", instant=True, table_format=True)]
    return (table.Panel().title("Routing over the range: spend vs reference model by prompt size")
            .datasource(PROMETHEUS).description("The report's routing table: a prompt size where the reference "
                                                "costs less is where routing would save.")
            .targets(targets).unit(USD).height(8).span(12).show_header(True)
            .align(common.FieldTextAlignment.AUTO).inspect(False)
            .with_transformation(DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(DataTransformerConfig(id_val="organize", options={
                "excludeByName": {"Time": True},
                "renameByName": {"Value #A": "spend", "Value #B": "on the reference model"}})))


def billed_vs_recorded() -> table.Panel:
    """Per settled billing day and model: what the provider billed, what we recorded, their ratio."""
    targets = [
        q("otel_llm_billed_cost_usd", ref="A", instant=True, table_format=True),
        q("otel_llm_reconcile_recorded_cost_usd", ref="B", instant=True, table_format=True),
        q("otel_llm_reconcile_recorded_cost_usd / otel_llm_billed_cost_usd", ref="C", instant=True,
          table_format=True),
    ]
    return (table.Panel().title("Billed vs recorded, per day and model").datasource(PROMETHEUS)
            .description("From `otel-llm reconcile` (the provider's usage/costs data, UTC billing days): "
                         "billed (A), recorded by our telemetry (B), recorded/billed (C). LLMSpendNotReconciled "
                         "fires under 95% on the newest settled day.")
            .targets(targets).unit(USD).height(10).span(24).show_header(True)
            .align(common.FieldTextAlignment.AUTO).inspect(False)
            .with_transformation(DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(DataTransformerConfig(id_val="organize", options={
                "excludeByName": {"Time": True},
                "renameByName": {"Value #A": "billed", "Value #B": "recorded", "Value #C": "recorded / billed"}})))


def performance() -> db.Dashboard:
    sel = PERF
    fast, every = rate_of(DURATION, f'{sel},le="10.24"'), rate_of(DURATION, f'{sel},le="+Inf"')

    def quantiles(metric: str, by: str) -> list[prom.Dataquery]:
        return [q(f"histogram_quantile({p}, sum by (le, {by}) ({rate_of(f'{metric}_bucket', sel)}))",
                  f"p{int(p * 100)} {{{{{by}}}}}", ref=chr(65 + i), exemplar=True)
                for i, p in enumerate((0.5, 0.95, 0.99))]

    def error_ratio(by: str) -> str:
        # `or calls * 0`: a model with calls and no error series shows 0, not a blank panel.
        calls = f"sum by ({by}) (rate(otel_llm_calls_total{{{sel}}}[$__rate_interval]))"
        return (f'(sum by ({by}) (rate(otel_llm_calls_total{{{sel},error_type!=""}}[$__rate_interval]))'
                f" / {calls}) or {calls} * 0")

    return (
        base("otel-llm-performance", "LLM performance",
             "Request rate, latency, time to first chunk, errors and rate limits, by model and endpoint.")
        .with_variable(label_var("model", "Model", "otel_llm_calls_total", "gen_ai_request_model"))
        .with_variable(env_var())
        .with_row(db.Row("By model"))
        .with_panel(graph("Requests per second",
                          [q(f"sum by (gen_ai_request_model) (rate(otel_llm_calls_total{{{sel}}}[$__rate_interval]))")],
                          "reqps", span=12))
        .with_panel(graph("Latency p50 / p95 / p99", quantiles("gen_ai_client_operation_duration_seconds",
                                                              "gen_ai_request_model"), "s",
                          description="Exemplars link to the traces behind the points.", span=12))
        .with_panel(graph("Time to first chunk p50 / p95 / p99 (streams)",
                          quantiles("gen_ai_client_operation_time_to_first_chunk_seconds", "gen_ai_request_model"),
                          "s", span=12))
        .with_panel(graph("Share of calls over 10 s (the latency alert's figure)", [q(
            f"1 - sum by (gen_ai_request_model) ({fast}) / sum by (gen_ai_request_model) ({every})")],
            "percentunit", span=12))
        .with_panel(graph("Error ratio", [q(error_ratio("gen_ai_request_model"))], "percentunit", span=8))
        .with_panel(graph("Errors by type", [q(
            f'sum by (error_type) (rate(otel_llm_calls_total{{{sel},error_type!=""}}[$__rate_interval]))')],
            "reqps", span=8))
        .with_panel(graph("HTTP 429 per second by model and key", [q(
            f'sum by (gen_ai_request_model, otel_llm_api_key_fingerprint) (rate(otel_llm_http_attempts_total'
            f'{{{sel},otel_llm_http_status_class="429"}}[$__rate_interval]))')], "reqps", span=8))
        .with_panel(top_table("Failed calls by model over the range", shared("failed_calls_by_model", sel),
                              "short", span=12, description="Calls that ended in an error: the report's figure."))
        .with_panel(top_table("HTTP 429 answers by model over the range", shared("http_429_by_model", sel),
                              "short", span=12, description="Rate-limited attempts (retries included)."))
        .with_panel(graph("HTTP attempts by status class", [q(
            f"sum by (otel_llm_http_status_class) (rate(otel_llm_http_attempts_total{{{sel}}}[$__rate_interval]))")],
            "reqps", span=12, stacked=True))
        .with_panel(graph("Retry backoff p95", [q(
            f"histogram_quantile(0.95, sum by (le, gen_ai_request_model) "
            f"(rate(otel_llm_http_backoff_duration_seconds_bucket{{{sel}}}[$__rate_interval])))")], "s", span=12))
        .with_row(db.Row("By endpoint (compare a canary base_url)"))
        .with_panel(graph("Traffic share by server_address", [q(
            f"sum by (server_address) (rate(otel_llm_calls_total{{{sel}}}[$__rate_interval]))"
            f" / scalar(sum(rate(otel_llm_calls_total{{{sel}}}[$__rate_interval])))")], "percentunit", span=8))
        .with_panel(graph("Latency p95 by server_address", [q(
            f"histogram_quantile(0.95, sum by (le, server_address) ({rate_of(DURATION, sel)}))",
            exemplar=True)], "s", span=8))
        .with_panel(graph("Error ratio by server_address", [q(error_ratio("server_address"))],
                          "percentunit", span=8))
    )


def drilldown() -> db.Dashboard:
    user = 'user_id="$user"'
    return (
        base("otel-llm-drilldown", "LLM drill-down by user and session",
             "One user's spend, budget and traces; one session's traces (session.id is on spans only).")
        .with_variable(label_var("user", "User", "otel_llm_cost_USD_total", "user_id", multi=False))
        .with_variable(db.TextBoxVariable("session").label("Session id"))
        .link(link("Traces of $user in Tempo", explore_traces('{ span.user.id = "${user}" }')))
        .link(link("Traces of session $session in Tempo", explore_traces('{ span.session.id = "${session}" }')))
        .with_row(db.Row("User"))
        .with_panel(money_stat("Spend today (budget day)", f'scope:otel_llm_cost_usd:dtd{{scope="user",{user}}}',
                               description="Since the start of the budget day (prometheus/rules/budget_day.yml)."))
        .with_panel(money_stat("Month to date", f'scope:otel_llm_cost_usd:mtd{{scope="user",{user}}}'))
        .with_panel(ratio_stat("Daily budget used today",
                               f'scope:otel_llm_cost_usd:dtd_budget_ratio{{scope="user",{user}}}',
                               description="Empty when the user has no budget in prometheus/budgets.yaml."))
        .with_panel(graph("Spend rate by model", [q(
            f"sum by (gen_ai_request_model) (rate(otel_llm_cost_USD_total{{{user}}}[$__rate_interval])) * 3600")],
            USD, span=12, description="USD per hour. The cost counter is read once per collection, so it carries "
            "no exemplars: the traces of this user are in the table below, each span with its otel_llm.cost.usd."))
        .with_panel(graph("Latency p95 by model (exemplars open the traces)", [q(
            f"histogram_quantile(0.95, sum by (le, gen_ai_request_model) ({rate_of(DURATION, '')}))", exemplar=True)],
            "s", span=12, description="Latency has no user label (bounded cardinality): all users."))
        .with_panel(trace_table("Recent traces of $user", '{ span.user.id = "$user" }', span=12))
        .with_row(db.Row("Session"))
        .with_panel(trace_table("Traces of session $session", '{ span.session.id = "$session" }', span=24))
    )


DASHBOARDS: Final[dict[str, Callable[[], db.Dashboard]]] = {
    "cost-overview.json": cost_overview,
    "performance.json": performance,
    "drilldown.json": drilldown,
}


def render(build: Callable[[], db.Dashboard]) -> str:
    return json.dumps(build().build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path, text = OUT_DIR / name, render(build)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale dashboards (run python grafana/build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`otel-llm report --html`: the report as one self-contained HTML file (inline CSS and SVG charts, no
script, nothing fetched at view time), so it opens from an e-mail attachment or a file share.

Charts are drawn by matplotlib to inline SVG: a well-kept plotting library whose SVG needs no
JavaScript and no network, weighs tens of kilobytes (plotly embeds its several-megabyte bundle in
every file), and survives mail clients that strip scripts. Text in the SVG stays text
(`svg.fonttype: none`).
Every figure in the page carries its exact value in a `data-value` attribute, next to its rounded
text, so a test (or a script) can compare the page with Prometheus.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from .queries import LABELS, Prometheus, PrometheusError, input_tokens_exemplars
from .reportdata import NONE, Period, warnings

__all__ = ["largest_calls", "render"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d2330;margin:0;background:#f4f6f9}
main{max-width:1080px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
.sub{color:#5b6475;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:12px}
.card{background:#fff;border:1px solid #d8dde6;border-radius:8px;padding:12px 14px}
.card .k{color:#5b6475;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:24px;font-weight:600;margin:2px 0}
.over{color:#b42318;font-weight:600}.ok{color:#067647;font-weight:600}.warn{color:#b54708;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:16px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d8dde6;border-radius:8px}
th,td{padding:4px 8px;text-align:left;border-bottom:1px solid #eef1f5;font-variant-numeric:tabular-nums}
td.n,th.n{text-align:right}caption{text-align:left;font-weight:600;padding:4px 0}
figure{margin:0;background:#fff;border:1px solid #d8dde6;border-radius:8px;padding:8px}
figure svg{width:100%;height:auto}
.note{color:#5b6475;font-size:12px}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def usd(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.4f}" if abs(value) < 10 else f"${value:,.2f}"


def _fig(name: str, value: float | None, text: str | None = None, cls: str = "") -> str:
    """A figure with its exact value for machines and its rounded text for people."""
    shown = text if text is not None else usd(value)
    exact = "" if value is None else f' data-value="{value!r}"'
    klass = f' class="{cls}"' if cls else ""
    return f'<span data-figure="{_e(name)}"{exact}{klass}>{_e(shown)}</span>'


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


# --- charts (matplotlib, to inline SVG) ----------------------------------------------------------

def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: inline SVG in HTML


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("the HTML report draws its charts with matplotlib: pip install 'otel-llm[report]'") from exc

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                                "axes.spines.right": False, "svg.hashsalt": "otel-llm"})
    import matplotlib.pyplot as plt

    return plt


def chart_days(days: Sequence[Mapping[str, Any]], budget: float | None) -> str:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 2.8))
    labels = [d["date"][5:] for d in days]
    axes.bar(labels, [d["spend_usd"] for d in days], color="#3e6fd8")
    if budget is not None:
        axes.axhline(budget, color="#b42318", linestyle="--", linewidth=1, label=f"daily budget {usd(budget)}")
        axes.legend(loc="upper left", frameon=False)
    axes.set_ylabel("USD per day")
    axes.tick_params(axis="x", labelrotation=90 if len(days) > 12 else 0)
    return _svg(figure)


def chart_ranked(rows: Sequence[Mapping[str, Any]], title: str, top: int) -> str:
    plt = _pyplot()
    shown = list(rows[:top])[::-1]
    figure, axes = plt.subplots(figsize=(4.6, 0.45 * len(shown) + 1.0))
    axes.barh([str(r["name"]) for r in shown], [r["spend_usd"] for r in shown], color="#3e6fd8")
    for index, row in enumerate(shown):
        if row.get("unpriced_calls") and not row["spend_usd"]:  # no bar is not $0: say so
            axes.annotate("unpriced", (0, index), xytext=(4, 0), textcoords="offset points", va="center",
                          color="#b54708")
    axes.set_xlabel("USD")
    axes.set_title(title, loc="left", fontsize=10)
    return _svg(figure)


def chart_routing(routing: Sequence[Mapping[str, Any]]) -> str:
    plt = _pyplot()
    rows = [r for r in routing if r["reference_usd"] is not None]
    figure, axes = plt.subplots(figsize=(4.6, 2.6))
    x = list(range(len(rows)))
    axes.bar([i - 0.2 for i in x], [r["spend_usd"] for r in rows], width=0.4, label="spent", color="#3e6fd8")
    axes.bar([i + 0.2 for i in x], [r["reference_usd"] for r in rows], width=0.4,
             label=f"on {rows[0]['reference_model']}" if rows else "reference", color="#12b76a")
    axes.set_xticks(x, [r["prompt_size"] for r in rows])
    axes.set_ylabel("USD")
    axes.legend(frameon=False)
    return _svg(figure)


# --- sections -------------------------------------------------------------------------------------

def _budget_card(title: str, key: str, spent: float, unpriced: float, budget: float | None, ratio: float | None,
                 over: bool | None, extra: str = "", what: str = "") -> str:
    flag = ("" if budget is None else
            f'<div class="{"over" if over else "ok"}" data-figure="{key}.flag">{what}{"OVER BUDGET" if over else "within budget"}'
            f' ({_fig(key + ".budget_ratio", ratio, _pct(ratio))} of {_fig(key + ".budget", budget)})</div>')
    missing = (f'<div class="warn">+ {_fig(key + ".unpriced_calls", unpriced, f"{unpriced:,.0f}")} unpriced calls '
               "not in this figure</div>" if unpriced else "")
    return (f'<div class="card"><div class="k">{_e(title)}</div><div class="v">{_fig(key + ".spend_usd", spent)}</div>'
            f"{extra}{flag or '<div class=note>no budget set</div>'}{missing}</div>")


def _cards(report: Mapping[str, Any]) -> str:
    periods = report["periods"]
    day, month, fc = report[periods[0]["key"]], report[periods[1]["key"]], report["forecast"]
    projected = (f'<div>month-end forecast {_fig("month.projected_usd", fc["projected_month_end_usd"])}'
                 f' ({_fig("month.elapsed", fc["month_elapsed_ratio"], _pct(fc["month_elapsed_ratio"]))} of the month elapsed)</div>')
    return '<div class="cards">' + "".join([
        _budget_card(f"Spend {periods[0]['label']}", "day", day["spend_usd"], day["unpriced_calls"],
                     fc.get("budget_daily_usd"), fc.get("daily_budget_ratio"), fc.get("over_daily_budget")),
        _budget_card(f"Spend {periods[1]['label']}", "month", month["spend_usd"], month["unpriced_calls"],
                     fc.get("budget_monthly_usd"), fc.get("projected_budget_ratio"), fc.get("over_monthly_budget"),
                     projected, "forecast "),
        _cache_card(day),
    ]) + "</div>"


def _cache_card(day: Mapping[str, Any]) -> str:
    lookups = sum(day["response_cache_requests"].values())
    return ('<div class="card"><div class="k">Caches</div>'
            f'<div>prompt cache: {_fig("day.cache_hit_ratio", day["cache_hit_ratio"], _pct(day["cache_hit_ratio"]))}'
            f' of input tokens, saved {_fig("day.cache_savings_usd", day["cache_savings_usd"])}</div>'
            f'<div>response cache: {_fig("day.response_cache_hit_ratio", day["response_cache_hit_ratio"], _pct(day["response_cache_hit_ratio"]))}'
            f' of {lookups:,.0f} lookups, saved {_fig("day.response_cache_savings_usd", day["response_cache_savings_usd"])}</div>'
            "</div>")


def _money_cell(name: str, row: Mapping[str, Any]) -> str:
    if row.get("unpriced_calls") and not row["spend_usd"]:
        return f'<td class="n warn">{_fig(name, None, "unpriced")}</td>'
    return f'<td class="n">{_fig(name, row["spend_usd"])}</td>'


def _ranked_row(dim: str, row: Mapping[str, Any]) -> str:
    name = f"day.by.{dim}.{row['name']}"
    return (f"<tr><td>{_e(row['name'])}</td>{_money_cell(name, row)}"
            f"<td class=n>{row['input_tokens']:,.0f}</td><td class=n>{row['output_tokens']:,.0f}</td></tr>")


def _ranked_table(dim: str, title: str, rows: Sequence[Mapping[str, Any]], top: int) -> str:
    body = "".join(_ranked_row(dim, r) for r in rows[:top])
    more = f'<tr><td colspan=4 class="note">+ {len(rows) - top} more</td></tr>' if len(rows) > top else ""
    return (f"<table><caption>{_e(title)}</caption><tr><th>name</th><th class=n>spend</th><th class=n>input tok.</th>"
            f"<th class=n>output tok.</th></tr>{body}{more}</table>")


def _rankings(day: Mapping[str, Any], top: int) -> str:
    parts = [f"<figure>{chart_ranked(day['by']['model'], 'Spend by model', top)}</figure>"]
    for dim, title in (("model", "By model"), ("user", "By user"), ("team", "By team"), ("api_key", "By API key"),
                       ("feature", "By feature")):
        rows = day["by"][dim]
        if dim == "feature" and all(r["name"] == NONE for r in rows):
            parts.append('<p class="note">By feature: not recorded (add <code>feature</code> to '
                         "OTEL_LLM_METRIC_ATTRIBUTES).</p>")
            continue
        parts.append(_ranked_table(dim, title, rows, top))
    return '<h2>Who and what spent it</h2><div class="grid">' + "".join(parts) + "</div>"


def _routing(day: Mapping[str, Any]) -> str:
    rows = day["routing"]
    if not any(r["reference_usd"] is not None for r in rows):
        return ('<h2>Routing</h2><p class="note">No reference cost recorded: set OTEL_LLM_REFERENCE_MODEL to see what '
                "a cheaper model would have cost.</p>")
    body = "".join(_routing_row(r) for r in rows if r["reference_usd"] is not None)
    table = (f"<table><caption>Routing every call to {_e(rows[0]['reference_model'] or '?')}, by prompt size</caption>"
             "<tr><th>prompt size</th><th class=n>spent</th><th class=n>on the reference</th>"
             f"<th class=n>would save</th></tr>{body}</table>")
    return f'<h2>Routing</h2><div class="grid"><figure>{chart_routing(rows)}</figure>{table}</div>'


def _routing_row(row: Mapping[str, Any]) -> str:
    name = f"day.routing.{row['prompt_size']}"
    return (f"<tr><td>{_e(row['prompt_size'])}</td><td class=n>{_fig(name + '.spend', row['spend_usd'])}</td>"
            f"<td class=n>{_fig(name + '.reference', row['reference_usd'])}</td>"
            f"<td class=n>{_fig(name + '.would_save', row['would_save_usd'])}</td></tr>")


def _not_counted(day: Mapping[str, Any]) -> str:
    kinds = (("unpriced", "unpriced"), ("unmetered", "unmetered"), ("tool fee", "unpriced_tool_runs"))  # shown, figure
    rows = [(kind, f"day.{name}.{model}", model, n) for kind, name in kinds
            for model, n in day[f"{name}_by_model"].items() if n]
    if not rows:
        return "<h2>Not in the spend</h2><p>Every call was priced and metered.</p>"
    body = "".join(f"<tr><td>{kind}</td><td>{_e(model)}</td><td class=n>{_fig(figure, n, f'{n:,.0f}')}</td></tr>"
                   for kind, figure, model, n in rows)
    return ("<h2>Not in the spend</h2><p class=warn>These calls cost money that the figures above do not include: "
            "unpriced = no price known for the model (add it to the prices file); unmetered = the provider reported "
            "no usage (a stream without its usage chunk, or an image, speech or whisper-1 call, billed per image, "
            "character or minute, which otel_llm does not price); tool fee = runs of a tool the provider hosts "
            "(code interpreter, image generation, or a search on a call not priced at OpenAI's list) whose fee is "
            f"not in the spend.</p><table><tr><th>kind</th><th>model</th><th class=n>calls or runs</th></tr>{body}</table>")


def _errors_row(row: Mapping[str, Any]) -> str:
    model, errors, limited = row["model"], row["errors"], row["http_429"]
    kinds = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(row["error_types"].items()))
    return (f"<tr><td>{_e(model)}</td><td class=n>{row['calls']:,.0f}</td>"
            f"<td class=n>{_fig('day.errors.' + model, errors, f'{errors:,.0f}')}</td><td>{_e(kinds)}</td>"
            f"<td class=n>{_fig('day.http_429.' + model, limited, f'{limited:,.0f}')}</td></tr>")


def _errors(day: Mapping[str, Any]) -> str:
    body = "".join(_errors_row(r) for r in day["reliability"])
    return ("<h2>Errors and rate limits</h2><table><tr><th>model</th><th class=n>calls</th><th class=n>failed</th>"
            f"<th>by error</th><th class=n>HTTP 429 answers</th></tr>{body}</table>")


def _largest(calls: Sequence[Mapping[str, Any]] | None) -> str:
    if not calls:
        return ('<h2>Largest calls</h2><p class="note">No exemplars in Prometheus for this period (they need '
                "--enable-feature=exemplar-storage and traces sampled).</p>")
    body = "".join(
        f"<tr><td>{_e(c['time'])}</td><td>{_e(c['model'])}</td><td class=n>{c['input_tokens']:,.0f}</td><td>"
        + (f'<a href="{_e(c["url"])}">{_e(c["trace_id"])}</a>' if c.get("url") else _e(c["trace_id"]))
        + "</td></tr>" for c in calls)
    return ("<h2>Largest calls</h2><p class=note>By input tokens, from the exemplars of gen_ai.client.token.usage.</p>"
            f"<table><tr><th>time (UTC)</th><th>model</th><th class=n>input tokens</th><th>trace</th></tr>{body}</table>")


def _warnings(report: Mapping[str, Any]) -> str:
    """What the figures below do not say themselves (reportdata.warnings): at the top, not in a footnote."""
    return "".join(f'<p class="warn" id="warning-{n}">{_e(warning)}</p>' for n, warning in enumerate(warnings(report)))


def render(report: Mapping[str, Any], top: int = 10) -> str:
    """Pure (given the report dict): the whole HTML document."""
    periods = report["periods"]
    day = report[periods[0]["key"]]
    budget = report["forecast"].get("budget_daily_usd")
    chart = chart_days(report["days"], budget) if report["days"] else "<p class=note>no days</p>"
    source = report.get("prometheus", "")
    where = f", only series where {_e(report['match'])}" if report.get("match") else ""
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>LLM spend {_e(periods[0]['label'])}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>LLM spend, {_e(periods[0]['label'])}</h1>",
        f'<p class="sub">Days and month in {_e(report["timezone"])}; read from Prometheus{" " + _e(source) if source else ""}{where} at '
        f'{_e(report["generated_at"])}; budgets from {_e(report["forecast"].get("budget_source") or "-")}.</p>',
        _warnings(report),
        _cards(report),
        f"<h2>Spend per day, {_e(periods[1]['label'])}</h2><figure>{chart}</figure>",
        _rankings(day, top), _routing(day), _not_counted(day), _errors(day), _largest(report.get("largest_calls")),
        "</main></body></html>\n",
    ])


def largest_calls(prometheus: Prometheus, period: Period, trace_url: str | None, top: int = 10,
                  where: str = "") -> list[dict[str, Any]]:
    """The period's largest calls by input tokens, from histogram exemplars, with a trace link when a
    trace UI URL template (with {trace_id}) is given; `where`: label matchers (`--match`). Empty when
    Prometheus keeps no exemplars."""
    try:
        found = prometheus.exemplars(input_tokens_exemplars(where), period.start, period.end)
    except PrometheusError:
        return []
    best: dict[str, dict[str, Any]] = {}
    for item in found:
        trace = item["labels"].get("trace_id") or item["labels"].get("traceID")
        if not trace or (trace in best and best[trace]["input_tokens"] >= item["value"]):
            continue
        best[trace] = {"trace_id": trace, "input_tokens": item["value"],
                       "model": item["series"].get(LABELS["model"], "?"),
                       "time": datetime.fromtimestamp(item["timestamp"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                       "url": trace_url.replace("{trace_id}", trace) if trace_url else None}
    return sorted(best.values(), key=lambda c: -c["input_tokens"])[:top]

"""Chargeback exports of the report: a plain CSV for a spreadsheet and a FinOps FOCUS 1.2 CSV for a
FinOps tool, one row per day (in the report's time zone) and per label set of the chosen grouping.

FOCUS (FinOps Open Cost and Usage Specification, version 1.2, column IDs as published in
specification/columns/ of FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec) describes usage-based cost
with these columns: billing period (the calendar month), charge period (the day), ProviderName
(gen_ai.provider.name), ServiceName, SkuId (the model), ConsumedQuantity in ConsumedUnit "Tokens"
(input + output tokens, input including cache reads), BilledCost and EffectiveCost in USD (what
otel_llm priced: the provider's bill may differ, see the reconcile exporter), and Tags for user,
team, key and feature. ContractedCost and ListCost repeat BilledCost: otel_llm knows one price per
model, the one its prices file or genai-prices gave (a gateway's negotiated table is that price). Columns of our own carry the `x_` prefix the spec reserves for them.

A model with unpriced calls that day has no known cost: its BilledCost is left empty and
x_CostStatus says why, instead of a $0 that a FinOps tool would add up as real.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Final

__all__ = ["FOCUS_COLUMNS", "GROUPINGS", "chargeback_csv", "focus_csv", "group"]

GROUPINGS: Final = ("model", "provider", "user", "team", "api_key", "feature")
CSV_COLUMNS: Final = ("date", *GROUPINGS, "cost_usd", "cost_status", "input_tokens", "output_tokens",
                      "cache_read_tokens")
FOCUS_VERSION: Final = "1.2"
FOCUS_COLUMNS: Final = (
    "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
    "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ProviderName", "PublisherName", "InvoiceIssuerName", "ServiceCategory", "ServiceName", "SkuId",
    "ConsumedQuantity", "ConsumedUnit", "PricingCategory", "PricingQuantity", "PricingUnit", "BilledCost",
    "EffectiveCost", "ContractedCost", "ListCost", "Tags",
    "x_CostStatus", "x_InputTokens", "x_OutputTokens", "x_CacheReadTokens",
)
_TAGS: Final = {"user": "user", "team": "team", "api_key": "api_key_fingerprint", "feature": "feature"}
_SUMS: Final = ("cost_usd", "input_tokens", "output_tokens", "cache_read_tokens")


def group(rows: Iterable[Mapping[str, Any]], by: Sequence[str] = GROUPINGS) -> list[dict[str, Any]]:
    """Sum chargeback rows per day and per the labels in `by` (model and provider always kept:
    a row must name what was bought); labels left out are emptied."""
    keep = [g for g in GROUPINGS if g in by or g in ("model", "provider")]
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["date"], *(row[g] for g in keep))
        if key not in out:
            out[key] = {**{k: row[k] for k in ("date", "start", "end")}, **{g: (row[g] if g in keep else "")
                                                                            for g in GROUPINGS},
                        **dict.fromkeys(_SUMS, 0.0), "priced": True}
        for name in _SUMS:
            out[key][name] += row[name]
        out[key]["priced"] = out[key]["priced"] and row["priced"]
    return sorted(out.values(), key=lambda r: (r["date"], -r["cost_usd"], *(r[g] for g in GROUPINGS)))


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else repr(round(value, 10))


def chargeback_csv(report: Mapping[str, Any], by: Sequence[str] = GROUPINGS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in group(report["chargeback"], by):
        writer.writerow([row["date"], *(row[g] for g in GROUPINGS),
                         _number(row["cost_usd"]) if row["priced"] else "", "" if row["priced"] else "unpriced",
                         *(_number(row[k]) for k in ("input_tokens", "output_tokens", "cache_read_tokens"))])
    return buffer.getvalue()


def _utc(iso: str) -> str:
    """FOCUS date-times: ISO 8601 in UTC with a Z."""
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _billing_period(report: Mapping[str, Any]) -> tuple[str, str]:
    month = report["periods"][1]
    start = datetime.fromisoformat(month["start"])
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    # The month's start is a local midnight in UTC terms; its end, the next local midnight: the same offset
    # unless a DST change falls inside the month, which the report's daily periods already handle.
    return _utc(month["start"]), _utc(end.isoformat())


def focus_csv(report: Mapping[str, Any], by: Sequence[str] = GROUPINGS, account: str = "otel-llm") -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FOCUS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    billing_start, billing_end = _billing_period(report)
    for row in group(report["chargeback"], by):
        cost = _number(row["cost_usd"]) if row["priced"] else ""
        tags = {tag: row[g] for g, tag in _TAGS.items() if row[g]}
        writer.writerow({
            "BillingAccountId": account, "BillingAccountName": account, "BillingCurrency": "USD",
            "BillingPeriodStart": billing_start, "BillingPeriodEnd": billing_end,
            "ChargePeriodStart": _utc(row["start"]), "ChargePeriodEnd": _utc(row["end"]),
            "ChargeCategory": "Usage", "ChargeClass": "", "ChargeFrequency": "Usage-Based",
            "ChargeDescription": f"{row['model']} tokens via {row['provider'] or 'unknown provider'}",
            "ProviderName": row["provider"], "PublisherName": row["provider"], "InvoiceIssuerName": row["provider"],
            "ServiceCategory": "AI and Machine Learning", "ServiceName": "LLM API", "SkuId": row["model"],
            "ConsumedQuantity": _number(row["input_tokens"] + row["output_tokens"]), "ConsumedUnit": "Tokens",
            "PricingCategory": "Standard", "PricingQuantity": _number(row["input_tokens"] + row["output_tokens"]),
            "PricingUnit": "Tokens", "BilledCost": cost, "EffectiveCost": cost, "ContractedCost": cost, "ListCost": cost,
            "Tags": json.dumps(tags, sort_keys=True) if tags else "",
            "x_CostStatus": "priced by otel_llm" if row["priced"] else "unpriced: no price known for this model",
            "x_InputTokens": _number(row["input_tokens"]), "x_OutputTokens": _number(row["output_tokens"]),
            "x_CacheReadTokens": _number(row["cache_read_tokens"]),
        })
    return buffer.getvalue()

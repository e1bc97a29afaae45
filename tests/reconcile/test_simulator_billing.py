"""The simulator's organization Costs and Usage endpoints: OpenAI's JSON shape, pagination, admin key,
billing lag, and figures that are exactly what it served, priced with its own table."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import openai
import pytest

from otel_llm.simulator import Simulator, SimulatorConfig
from otel_llm.simulator.billing import PRICES, BillingLedger, api_key_id
from otel_llm.simulator.usage import Usage

FAST = SimulatorConfig(latency_scale=0.0)
ADMIN = "sk-admin-test"
DAY = 86400
T0 = 1_790_000_000 // DAY * DAY  # a UTC midnight


def get(sim: Simulator, path: str, key: str = ADMIN, **params: Any) -> tuple[int, Any]:
    url = f"{sim.url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_costs_and_usage_are_what_was_served() -> None:
    today = int(time.time()) // DAY * DAY
    with Simulator(config=FAST) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="sk-app", project="proj_a", max_retries=0)
        served = [client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": f"hi {i}"}])
                  for i in range(3)]
        emb = client.embeddings.create(model="text-embedding-3-small", input="some text")
        status, costs = get(sim, "/v1/organization/costs", start_time=today, group_by=["project_id", "line_item"])
        assert status == 200
        status, usage = get(sim, "/v1/organization/usage/completions", start_time=today, bucket_width="1d",
                            group_by="model,project_id,api_key_id", limit=31)
        assert status == 200
        _, embeddings = get(sim, "/v1/organization/usage/embeddings", start_time=today, group_by=["model"], limit=31)
    prompt = sum(r.usage.prompt_tokens for r in served)
    cached = sum(r.usage.prompt_tokens_details.cached_tokens for r in served)
    output = sum(r.usage.completion_tokens for r in served)
    # Usage: one non-empty bucket (today), one result, the exact tokens and request count.
    results = [r for bucket in usage["data"] for r in bucket["results"]]
    assert results == [{
        "object": "organization.usage.completions.result", "input_tokens": prompt, "output_tokens": output,
        "input_cached_tokens": cached, "input_audio_tokens": 0, "output_audio_tokens": 0,
        "num_model_requests": 3, "project_id": "proj_a", "user_id": None, "api_key_id": api_key_id("sk-app"),
        "model": "gpt-4.1", "batch": None,
    }]
    assert usage["object"] == "page" and usage["has_more"] is False and usage["next_page"] is None
    assert all(b["object"] == "bucket" and b["end_time"] > b["start_time"] for b in usage["data"])
    emb_results = [r for bucket in embeddings["data"] for r in bucket["results"]]
    assert [(r["model"], r["input_tokens"], r["num_model_requests"]) for r in emb_results] == [
        ("text-embedding-3-small", emb.usage.prompt_tokens, 1)]
    # Costs: line items priced with the simulator's table.
    items = {r["line_item"]: r["amount"] for b in costs["data"] for r in b["results"]}
    price_in, price_cached, price_out = PRICES["gpt-4.1"]
    assert items["gpt-4.1, input"]["value"] == pytest.approx((prompt - cached) * price_in / 1e6)
    assert items["gpt-4.1, output"] == {"value": pytest.approx(output * price_out / 1e6), "currency": "usd"}
    assert items["text-embedding-3-small, input"]["value"] == pytest.approx(emb.usage.prompt_tokens * 0.02 / 1e6)
    assert {r["project_id"] for b in costs["data"] for r in b["results"]} == {"proj_a"}
    if cached:
        assert items["gpt-4.1, cached input"]["value"] == pytest.approx(cached * price_cached / 1e6)


def test_admin_key_required() -> None:
    with Simulator(config=FAST) as sim:
        assert get(sim, "/v1/organization/costs", key="sk-app", start_time=T0)[0] == 403
        assert get(sim, "/v1/organization/costs", key="sk-invalid-x", start_time=T0)[0] == 401
        assert get(sim, "/v1/organization/costs")[0] == 400  # start_time is required


def test_pagination_and_daily_buckets() -> None:
    clock = [T0 + 10 * DAY + 3600.0]
    ledger = BillingLedger(clock=lambda: clock[0])
    for day in range(10):
        ledger.record("completions", "p", "sk-x", "gpt-4.1", Usage(1000 * (day + 1), 10), at=T0 + day * DAY + 5)
    pages, page = [], None
    while True:
        params = {"start_time": [str(T0)], "limit": ["4"], "group_by": ["line_item"]}
        if page:
            params["page"] = [page]
        body = ledger._costs(params)
        pages.append(body)
        if not body["has_more"]:
            break
        page = body["next_page"]
    buckets = [b for p in pages for b in p["data"]]
    assert [len(p["data"]) for p in pages] == [4, 4, 3]  # 10 full days + today so far
    assert [b["start_time"] for b in buckets] == [T0 + d * DAY for d in range(11)]
    inputs = [sum(r["amount"]["value"] for r in b["results"] if r["line_item"].endswith(", input")) for b in buckets]
    assert inputs == pytest.approx([1000 * (d + 1) * 2.0 / 1e6 for d in range(10)] + [0.0])


def test_billing_lag_leaves_out_recent_usage() -> None:
    clock = [T0 + 7200.0]
    ledger = BillingLedger(lag=3600, clock=lambda: clock[0])
    ledger.record("completions", "p", "sk-x", "gpt-4.1", Usage(100, 10), at=T0 + 60)  # 2h ago: settled
    ledger.record("completions", "p", "sk-x", "gpt-4.1", Usage(100, 10), at=T0 + 7000)  # 3 min ago: not yet
    body = ledger._usage("completions", {"start_time": [str(T0)]})
    assert [r["num_model_requests"] for b in body["data"] for r in b["results"]] == [1]
    clock[0] += 3600
    body = ledger._usage("completions", {"start_time": [str(T0)]})
    assert [r["num_model_requests"] for b in body["data"] for r in b["results"]] == [2]


def test_the_openai_sdk_reads_the_simulators_bill_with_its_own_admin_types() -> None:
    """The SDK's own admin resources (query encoding, admin key auth, response models) against the
    simulator: the JSON is OpenAI's shape, as the SDK's generated models define it."""
    usage_api = pytest.importorskip("openai.resources.admin.organization.usage")
    assert usage_api is not None
    today = int(time.time()) // DAY * DAY
    with Simulator(config=FAST) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="sk-app", admin_api_key=ADMIN, max_retries=0)
        done = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        client.embeddings.create(model="text-embedding-3-large", input="hello")
        usage = client.admin.organization.usage
        costs = usage.costs(start_time=today - 3 * DAY, group_by=["line_item", "project_id", "api_key_id"], limit=2)
        assert costs.has_more and costs.next_page
        rest = usage.costs(start_time=today - 3 * DAY, group_by=["line_item", "project_id", "api_key_id"], limit=2,
                           page=costs.next_page)
        completions = usage.completions(start_time=today, group_by=["model", "api_key_id"], models=["gpt-4o-mini"])
        embeddings = usage.embeddings(start_time=today, group_by=["model"])
    assert [len(costs.data), len(rest.data)] == [2, 2] and not rest.has_more
    results = [r for bucket in rest.data for r in bucket.results]
    assert {r.line_item for r in results} == {"gpt-4o-mini, input", "gpt-4o-mini, output", "text-embedding-3-large, input"}
    assert {r.api_key_id for r in results} == {api_key_id("sk-app")}
    [result] = [r for bucket in completions.data for r in bucket.results]
    assert (result.model, result.input_tokens, result.output_tokens, result.num_model_requests) == (
        "gpt-4o-mini", done.usage.prompt_tokens, done.usage.completion_tokens, 1)
    assert [r.model for bucket in embeddings.data for r in bucket.results] == ["text-embedding-3-large"]

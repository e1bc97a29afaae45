"""Shared fixtures: the real OpenTelemetry SDK with in-memory exporters, the real openai SDK behind its
own mock transport, and one `api` fixture that runs every case sync and async."""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llm import OpenAIInstrumentor
from tests import semconv_view

FIXTURES = Path(__file__).parent / "fixtures"
# openai 3.x moved its transport to httpx2; 1.x and 2.x use httpx.
httpx = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])
API_KEY = "sk-test-0123456789abcdef-SENTINEL"
# The openai release under test. `make test-openai-releases` runs the core suite on the lowest release
# pyproject allows, the last 1.x and the last 2.x. A case that needs a part of the SDK such a release
# lacks (the Responses API before 1.66, `chat.completions.parse`, `decisions` before 3.26, a newer keyword)
# is skipped there, naming what is missing; never on 3.x, what `make test` runs, where a missing part is
# a failure.
SDK_VERSION = tuple(int(part) for part in openai.__version__.split(".")[:2])
_SKIPS_MISSING_SDK_PARTS = SDK_VERSION < (3, 0)


def chat_module() -> Any:
    """The SDK module that defines `chat.completions`' Completions (a package of its own by openai 1.66)."""
    try:
        return importlib.import_module("openai.resources.chat.completions.completions")
    except ImportError:
        return importlib.import_module("openai.resources.chat.completions")


def needs_sdk(target: Any, path: str, *keywords: str) -> Any:
    """`target`'s attribute at `path` (e.g. `client`, "responses.stream"); skip the test if this (old)
    openai release lacks it or any of `keywords` among its parameters."""
    import inspect

    for part in path.split("."):
        found = getattr(target, part, None)
        if found is None and _SKIPS_MISSING_SDK_PARTS:
            pytest.skip(f"openai {openai.__version__} has no {path}")
        target = getattr(target, part) if found is None else found
    if keywords and _SKIPS_MISSING_SDK_PARTS:
        params = inspect.signature(target).parameters
        anything = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        missing = [] if anything else [k for k in keywords if k not in params]
        if missing:
            pytest.skip(f"openai {openai.__version__}'s {path} takes no {', '.join(missing)}")
    return target


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fixture_json(name: str) -> dict[str, Any]:
    return json.loads(fixture_text(name))


class Reply:
    def __init__(self, status: int = 200, body: Any = None, sse: str | None = None, headers: dict[str, str] | None = None,
                 raise_exc: BaseException | None = None, sse_stream: Any = None) -> None:
        self.status, self.body, self.sse, self.headers, self.raise_exc = status, body, sse, headers or {}, raise_exc
        self.sse_stream = sse_stream  # an (async) iterator of bytes: a body that arrives, or breaks, as it goes


def _default(path: str, body: dict[str, Any]) -> Reply:
    stream = body.get("stream") is True
    usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if path.endswith("/chat/completions"):
        if stream:
            return Reply(sse=fixture_text("chat_stream_usage.sse" if usage else "chat_stream.sse"))
        fmt = body.get("response_format") or {}
        return Reply(body=fixture_json("chat_parsed.json" if fmt.get("type") == "json_schema" else "chat_completion.json"))
    if path.endswith("/completions"):
        if stream:
            text = fixture_text("completion_stream_usage.sse")
            if not usage:
                parts = text.split("\n\n")
                text = "\n\n".join(parts[:-3] + parts[-2:])  # drop the usage chunk, as the API does
            return Reply(sse=text)
        return Reply(body=fixture_json("completion.json"))
    if path.endswith("/embeddings"):
        return Reply(body=fixture_json("embeddings.json"))
    if path.endswith("/responses"):
        return Reply(sse=fixture_text("response_stream.sse")) if stream else Reply(body=fixture_json("response.json"))
    if path.endswith("/images/generations"):
        return Reply(body={"created": 1, "data": [{"url": "https://example.invalid/a.png"}]})
    if path.endswith("/audio/speech"):
        return Reply(body=b"RIFF....WAVE")
    if path.endswith("/responses/compact"):
        return Reply(body=fixture_json("response_compacted.json"))
    if path.endswith("/decisions"):
        return Reply(body=fixture_json("decision.json"))
    if path.endswith("/batches"):
        return Reply(body={"id": "batch_1", "object": "batch", "endpoint": "/v1/chat/completions", "input_file_id": "f",
                           "completion_window": "24h", "status": "validating", "created_at": 1})
    return Reply(404, {"error": {"message": "not found", "type": "invalid_request_error"}})


class FakeAPI:
    """An OpenAI API answering through the SDK's own mock transport: queued replies first, then fixtures."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.bodies: list[dict[str, Any]] = []
        self.queue: list[Reply] = []

    def reply(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    def _answer(self, request: Any) -> Any:
        self.requests.append(request)
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            body = {}
        self.bodies.append(body)
        reply = self.queue.pop(0) if self.queue else _default(request.url.path, body)
        if reply.raise_exc is not None:
            raise reply.raise_exc
        headers = {"x-request-id": f"req_{len(self.requests)}", **reply.headers}
        if reply.sse_stream is not None:
            return httpx.Response(reply.status, headers={"content-type": "text/event-stream", **headers},
                                  content=reply.sse_stream)
        if reply.sse is not None:
            return httpx.Response(reply.status, headers={"content-type": "text/event-stream", **headers},
                                  content=reply.sse.encode())
        if isinstance(reply.body, bytes):
            return httpx.Response(reply.status, headers=headers, content=reply.body)
        return httpx.Response(reply.status, headers=headers, json=reply.body)

    def handler(self, request: Any) -> Any:
        return self._answer(request)

    async def async_handler(self, request: Any) -> Any:
        return self._answer(request)


class Api:
    """Runs a call on the sync or the async client with the same test code."""

    def __init__(self, mode: str, fake: FakeAPI, base_url: str) -> None:
        self.mode = mode
        self.is_async = mode == "async"
        self.fake = fake
        self.loop = asyncio.new_event_loop() if self.is_async else None
        if self.is_async:
            http = openai.DefaultAsyncHttpxClient(transport=httpx.MockTransport(fake.async_handler))
            self.client: Any = openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url, http_client=http, max_retries=0)
        else:
            http = openai.DefaultHttpxClient(transport=httpx.MockTransport(fake.handler))
            self.client = openai.OpenAI(api_key=API_KEY, base_url=base_url, http_client=http, max_retries=0)

    def run(self, value: Any) -> Any:
        """Await `value` on the async client's loop; return it as is on the sync one."""
        if self.loop is not None and asyncio.iscoroutine(value):
            return self.loop.run_until_complete(value)
        return value

    def call(self, path: str, **kwargs: Any) -> Any:
        return self.run(needs_sdk(self.client, path, *kwargs)(**kwargs))

    def needs(self, path: str, *keywords: str) -> Any:
        """The client's method at `path`; the test is skipped on an old openai release without it."""
        return needs_sdk(self.client, path, *keywords)

    def consume(self, stream: Any, limit: int | None = None) -> list[Any]:
        """Iterate a stream the way an app would; stop early after `limit` chunks."""
        async def drain() -> list[Any]:
            out = []
            async for chunk in stream:
                out.append(chunk)
                if limit is not None and len(out) >= limit:
                    break
            return out

        if self.is_async:
            return self.run(drain())
        out = []
        for chunk in stream:
            out.append(chunk)
            if limit is not None and len(out) >= limit:
                break
        return out

    def close(self) -> None:
        self.run(self.client.close())
        if self.loop is not None:
            # The SDK leaves async generators suspended (its SSE decoder's, httpx's aiter_bytes): collect
            # them while this loop can still run their aclose(), then finalize the rest, as asyncio.run
            # does. Python 3.13 reports them as never awaited otherwise (with or without otel_llm).
            gc.collect()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--semconv-mode", choices=semconv_view.MODES, default="v1_41",
        help="the GenAI conventions the `instrument` fixture emits (make test-modes runs latest and both); "
        "the `spans` and `reader` fixtures read the output back in v1.41.0 after checking the latest shape",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "v1_41_only(reason): asserts what only the v1.41.0 shape has; skipped in "
                            "the other --semconv-mode runs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mode = config.getoption("--semconv-mode")
    if mode == "v1_41":
        return
    for item in items:
        marker = item.get_closest_marker("v1_41_only")
        if marker is not None:
            item.add_marker(pytest.mark.skip(reason=f"v1.41.0 only: {marker.args[0] if marker.args else ''}"))


@pytest.fixture
def semconv_mode(request: pytest.FixtureRequest) -> str:
    """The conventions mode of this run (--semconv-mode): v1_41, latest or both."""
    return str(request.config.getoption("--semconv-mode"))


@pytest.fixture
def spans(semconv_mode: str) -> InMemorySpanExporter:
    return semconv_view.SpanExporter(semconv_mode)


@pytest.fixture
def reader(semconv_mode: str) -> InMemoryMetricReader:
    return semconv_view.MetricReader(semconv_mode)


@pytest.fixture
def tracer_provider(spans: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


@pytest.fixture
def meter_provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def instrument(tracer_provider: TracerProvider, meter_provider: MeterProvider,
               semconv_mode: str) -> Iterator[Callable[..., OpenAIInstrumentor]]:
    """`instrument(**settings)` instruments with the in-memory providers, in this run's conventions mode
    unless the test chose one (a keyword or OTEL_SEMCONV_STABILITY_OPT_IN); uninstruments after the test."""
    instrumentor = OpenAIInstrumentor()

    def start(**settings: Any) -> OpenAIInstrumentor:
        if semconv_mode != "v1_41" and "OTEL_SEMCONV_STABILITY_OPT_IN" not in os.environ:
            settings.setdefault("semconv_mode", semconv_mode)
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **settings)
        return instrumentor

    yield start
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture
def instrumented(instrument: Callable[..., OpenAIInstrumentor]) -> OpenAIInstrumentor:
    return instrument()


@pytest.fixture
def fake() -> FakeAPI:
    return FakeAPI()


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, fake: FakeAPI) -> Iterator[Api]:
    """The real openai client, sync and async, talking to OpenAI's own host through the mock transport."""
    client = Api(request.param, fake, "https://api.openai.com/v1")
    yield client
    client.close()


@pytest.fixture(params=["sync", "async"])
def gateway_api(request: pytest.FixtureRequest, fake: FakeAPI) -> Iterator[Api]:
    """The same, pointed at an OpenAI-compatible gateway."""
    client = Api(request.param, fake, "https://gateway.example.com/v1")
    yield client
    client.close()


def finished(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(spans.get_finished_spans())


def only_span(spans: InMemorySpanExporter) -> ReadableSpan:
    found = finished(spans)
    assert len(found) == 1, [s.name for s in found]
    return found[0]


def collect(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """One collection: metric name -> its data points. (Exemplars are reset by each collection.)"""
    data: MetricsData | None = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    """Every data point of metric `name` in a fresh collection."""
    return collect(reader).get(name, [])


def total(reader: InMemoryMetricReader, name: str, **match: Any) -> float:
    """Sum of a counter's values (or a histogram's sums) over points whose attributes match."""
    result = 0.0
    for point in points(reader, name):
        attrs = dict(point.attributes)
        if all(attrs.get(k.replace("__", ".")) == v for k, v in match.items()):
            result += getattr(point, "value", None) if hasattr(point, "value") else point.sum
    return result


@pytest.fixture(autouse=True)
def _quiet_otel_llm_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_llm")

"""The tracer, instruments, price book, recorder and settings, created once per `instrument()`.

`Telemetry.start()` opens a `Call` for one SDK request; everything the hot path needs is an
attribute lookup away. What a finished call records is the `Recorder`'s job (record.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.metrics import MeterProvider, get_meter
from opentelemetry.trace import SpanKind, TracerProvider, get_tracer

from . import conventions, faults
from . import semconv as sc
from .attribution import configure, current, fingerprint
from .call import Call
from .extract import client_endpoint, request_attributes
from .ledger import OVERFLOW_VALUE, Ledger, run_deferred
from .messages import input_messages, system_instructions, to_json
from .pricing import PriceBook, PricesFileError, Rates, load_prices_file
from .process import register_start_time
from .record import Recorder
from .settings import Settings
from .version import __version__

if TYPE_CHECKING:
    from .cache import ResponseCache

__all__ = ["Telemetry"]

_log = logging.getLogger("otel_llm")
_CLIENT: Final = SpanKind.CLIENT
OVERFLOW_USER: Final = OVERFLOW_VALUE


class Telemetry:
    """Everything a call records into. Built by the instrumentor, read-only afterwards."""

    def __init__(
        self,
        settings: Settings,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.settings = settings
        faults.reset()  # each instrumentation reports each of our faults and warnings once
        # Which GenAI conventions the standard names follow (v1.41.0 unless OTEL_SEMCONV_STABILITY_OPT_IN
        # opts in to the latest): conventions.py maps names; our own otel_llm.* names never change.
        self.conventions = settings.semconv_mode
        schema = conventions.schema_url(self.conventions)
        self.tracer = get_tracer(sc.SCOPE_NAME, __version__, tracer_provider, schema_url=schema)
        meter = get_meter(sc.SCOPE_NAME, __version__, meter_provider, schema_url=schema)
        self.standard = conventions.StandardMetrics(meter, self.conventions)
        register_start_time(meter)  # lets the exact-spend rules tell a restart from a gap
        self.ledger = Ledger.for_meter(meter)
        L = self.ledger
        L.set_limits(settings.metric_user_limit, settings.metric_series_limit)
        configure(trust_baggage=settings.trust_baggage, fingerprint_key=settings.fingerprint_key)
        self.calls = L.sum(meter, sc.CALLS, "{call}", "LLM calls, by who made them and how they ended")
        self.cost = L.sum(meter, sc.COST, "USD", "Cost of LLM calls in US dollars")
        # The cost summed per budget scope and per model at collection: what the exact-spend rules delta (issue 20).
        L.rollup(meter, sc.COST_BY_SCOPE, self.cost, (sc.USER_ID, sc.TEAM, sc.API_KEY_FINGERPRINT),
                 "Cost of LLM calls in US dollars, by user, team and API key only")
        L.rollup(meter, sc.COST_BY_MODEL, self.cost, (sc.GEN_AI_REQUEST_MODEL, sc.SERVER_ADDRESS),
                 "Cost of LLM calls in US dollars, by requested model and server address only")
        self.cost_reference = L.sum(
            meter, sc.COST_REFERENCE, "USD", "What the same calls would have cost on the reference model"
        )
        self.tokens = L.sum(meter, sc.TOKENS, "{token}", "Tokens by type and by who used them")
        self.unpriced = L.sum(meter, sc.CALLS_UNPRICED, "{call}", "Calls whose model has no known price")
        self.unmetered = L.sum(meter, sc.CALLS_UNMETERED, "{call}", "Calls that ended with no usage: tokens and cost unknown")
        self.hosted_tool_calls = L.sum(
            meter, sc.HOSTED_TOOL_CALLS, "{call}", "Runs of tools the provider hosts (web search, ...), and whether their fee is in the cost"
        )
        self.usage_rejected = L.sum(
            meter, sc.USAGE_REJECTED_CALLS, "{call}", "Calls whose usage or cost was beyond any real call, not added"
        )
        self.cache_savings = L.sum(meter, sc.CACHE_SAVINGS, "USD", "Dollars saved by prompt and response caches")
        # HTTP attempts, the SDK's retries included (retries.py): counted in the ledger, waits histogrammed.
        self.http_attempts = L.sum(meter, sc.HTTP_ATTEMPTS, "{attempt}", "HTTP requests sent to the API, by outcome")
        self.http_backoff = meter.create_histogram(
            sc.HTTP_BACKOFF, unit="s", description="Time the SDK waited before retrying a request",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )
        self.response_cache_requests = L.sum(
            meter, sc.RESPONSE_CACHE_REQUESTS, "{request}", "Response cache lookups by result: hit, miss or error"
        )
        self.response_cache: ResponseCache | None = None  # opened by the instrumentor: `use_cache`
        self.prices = _price_book(settings)
        self.reference: Rates | None = None
        if settings.reference_model:
            self.reference = self.prices.rates("", "", settings.reference_model)
            if self.reference is None:
                _log.warning(
                    "otel_llm: the reference model %r has no known price; routing savings are off",
                    settings.reference_model,
                )
        attrs = settings.metric_attributes
        self.metric_user = "user" in attrs
        self.metric_team = "team" in attrs
        self.metric_key = "api_key" in attrs
        self.metric_feature = "feature" in attrs
        self.recorder = Recorder(self)

    def use_cache(self, cache: ResponseCache | None) -> None:
        """The response cache the instrumentor opened for these settings (None: off)."""
        self.response_cache = cache

    def metric_user_id(self, user_id: str) -> str:
        """The user id for metric labels, capped at `metric_user_limit` distinct ids per process."""
        # The cap lives with the sums whose series it bounds: re-instrumenting keeps it.
        return self.ledger.user_cap.admit(user_id)

    def start(self, operation: str, client: Any, kwargs: Mapping[str, Any], streaming: bool) -> Call:
        """Open the span of one request. May raise: the wrapper guards it."""
        run_deferred()  # streams dropped since the last call end here, outside any lock (ledger.defer)
        state = getattr(client, "__dict__", None)
        if type(state) is not dict:
            state = {}
        where = client_endpoint(client, state)
        model = kwargs.get("model")
        model = model if isinstance(model, str) else ""
        who = current(kwargs.get("user") or kwargs.get("safety_identifier"))
        api_key = state.get("api_key")
        if api_key is None:
            api_key = getattr(client, "api_key", None)
        key_id = fingerprint(api_key if isinstance(api_key, str) else None)
        attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.GEN_AI_PROVIDER_NAME: where.provider,
            sc.GEN_AI_REQUEST_MODEL: model,
            sc.SERVER_ADDRESS: where.address,
            sc.SERVER_PORT: where.port,
            sc.API_KEY_FINGERPRINT: key_id,
        }
        if streaming:
            attrs[sc.GEN_AI_REQUEST_STREAM] = True
        if who.user_id is not None:
            attrs[sc.USER_ID] = who.user_id
        if who.session_id is not None:
            attrs[sc.SESSION_ID] = who.session_id
        if who.team is not None:
            attrs[sc.TEAM] = who.team
        if who.feature is not None:
            attrs[sc.FEATURE] = who.feature
        # Request attributes go in at start (one SDK call, and samplers see them); content only when
        # the span records and the user opted in.
        request_attributes(operation, kwargs, attrs)
        span = self.tracer.start_span(f"{operation} {model}" if model else operation, kind=_CLIENT, attributes=attrs)
        if self.settings.capture_content and span.is_recording():
            extra: dict[str, Any] = {}
            _capture_input(kwargs, extra)
            if extra:
                span.set_attributes(extra)
        return Call(self, span, operation, model, where, who, key_id, streaming)


def _capture_input(kwargs: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    """The request's content in the conventions' message shape (messages.py)."""
    found = input_messages(kwargs)
    if found is not None:
        attrs[sc.GEN_AI_INPUT_MESSAGES] = to_json(found)
    instructions = system_instructions(kwargs)
    if instructions is not None:
        attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(instructions)


def _price_book(settings: Settings) -> PriceBook:
    if not settings.prices:
        return PriceBook()
    try:
        return PriceBook(load_prices_file(settings.prices))
    except PricesFileError as exc:
        _log.error("otel_llm: %s; using the default prices (genai-prices) until it is fixed", exc)
        return PriceBook()

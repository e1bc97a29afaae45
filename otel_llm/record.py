"""What a finished call records: its frozen `Outcome` -> span attributes, histograms and our sums.

`Call` keeps the state of one request and hands an `Outcome` here exactly once. The `Recorder`
(one per `Telemetry`) prices it, writes the span and ends it in a `finally`, then records the
histograms and adds to the sums. Each of those steps is guarded on its own: a fault in pricing
leaves an unpriced call, a fault in the sums leaves the span, and no fault leaves a span open.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from . import conventions, hosted_tools
from . import semconv as sc
from .attribution import Attribution
from .extract import Endpoint, ResponseInfo
from .faults import report_fault, warn_once
from .pricing import Cost, Rates, Usage
from .provider_cost import ProviderCost
from .retries import ATTEMPT_FAILED, attempt_key, event_attributes, final_failure
from .scrub import scrub

if TYPE_CHECKING:
    from .telemetry import Telemetry

__all__ = ["BILLED", "BILLED_BY_OTHER_MEASURE", "METERED", "Outcome", "Priced", "Recorder", "error_type", "prompt_size", "span_attributes", "usage_rejected"]

_SMALL_PROMPT: Final = 1_000
_MEDIUM_PROMPT: Final = 10_000
# Operations whose responses carry token usage: ending one without any is an unmetered call.
METERED: Final = frozenset({sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_EMBEDDINGS})
# Billed operations whose responses may carry no token usage: DALL-E images (per image), TTS speech (per
# character), whisper-1 (per minute; its usage, when sent, is in seconds). The bill has them and our figures
# cannot, so one without token usage is an unmetered call too, never a silent $0. (gpt-image-1 and the
# gpt-4o transcribe models send token usage, and are priced from it.) Creating a batch is not billed itself.
BILLED: Final = METERED | frozenset({sc.OP_IMAGE, sc.OP_AUDIO_SPEECH, sc.OP_AUDIO_TRANSCRIPTION,
                                     sc.OP_AUDIO_TRANSLATION})
# Those of them billed per image, per character or per minute: usage in tokens is not their bill.
BILLED_BY_OTHER_MEASURE: Final = BILLED - METERED

# The bounds of what one real call can report (see the README's "Numbers we refuse" section). The
# largest context windows are about 10 million tokens; ten times that is no real call's usage, but a
# gateway's bug or an attacker's response. $10,000 is more than 100 million tokens at the dearest
# list price of any model ($75 per million output tokens) would cost.
MAX_TOKENS: Final = 100_000_000
MAX_COST_USD: Final = 10_000.0
REJECT_TOKENS: Final = "tokens_out_of_range"
REJECT_COST: Final = "cost_out_of_range"
REJECT_SAVINGS: Final = "savings_out_of_range"
REJECT_TOOLS: Final = "tool_calls_out_of_range"  # more hosted tool runs than hosted_tools.MAX_CALLS
_NO_FEES: Final = hosted_tools.Fees(0.0, ())
# A Responses call made with background=True returns at once, in one of these states, with no usage yet.
_PENDING: Final = frozenset({("queued",), ("in_progress",)})


def error_type(exc: BaseException) -> str:
    """A low-cardinality error.type: the exception's class name (the SDK's names tell 401 from 429)."""
    return type(exc).__name__


def prompt_size(input_tokens: int) -> str:
    if input_tokens < _SMALL_PROMPT:
        return "small"
    return "medium" if input_tokens < _MEDIUM_PROMPT else "large"


class Outcome(NamedTuple):
    """Everything one call ended with; built once by `Call`, read by the recorder."""

    operation: str
    model: str  # as requested
    where: Endpoint
    who: Attribution
    key_id: str
    duration: float
    info: ResponseInfo
    exc: BaseException | None
    first_chunk: float | None  # seconds from start to the first chunk, for streams
    chunks: int  # the chunks the app saw
    response_cache_hit: bool | None  # None: no lookup
    retries: int
    backoff: float
    http_status: int | None  # of the attempt that succeeded
    output: str | None  # captured output messages (opt-in)
    streaming: bool
    asked_usage: bool  # we asked the server for the stream's usage chunk
    provider_cost: ProviderCost | None = None  # the cost the provider reported itself
    searched_preview: bool = False  # the request named the preview web search tool (hosted_tools)

    @property
    def response_model(self) -> str:
        return self.info.model or self.model

    @property
    def unmetered(self) -> bool:
        """A billed call that ended with no token usage (a response did arrive)."""
        return (self.info.usage is None and self.operation in BILLED and not self.response_cache_hit
                and (self.exc is None or self.chunks > 0))


class Priced(NamedTuple):
    rates: Rates | None
    cost: Cost | None  # what the call cost (None on a response cache hit: it cost nothing)
    saved: Cost | None  # a response cache hit: what it would have cost
    reference_usd: float | None
    rejected: str | None  # why the usage or cost was not believed (then not added to any sum)
    source: str | None = None  # otel_llm.price.source: the rates' source, or "provider"
    computed_usd: float | None = None  # our prices' figure when the provider reported the cost
    tool_fees_usd: float = 0.0  # the hosted tools' per-call fees, included in `cost`
    tools_unpriced: tuple[str, ...] = ()  # hosted tools that ran and whose fee is not in `cost`


NOT_PRICED: Final = Priced(None, None, None, None, None)


def usage_rejected(usage: Usage) -> str | None:
    """Why a usage is beyond any real call, or None."""
    for count in usage:
        if not 0 <= count <= MAX_TOKENS:
            return REJECT_TOKENS
    return None


def _cost_ok(usd: float) -> bool:
    return math.isfinite(usd) and 0.0 <= usd <= MAX_COST_USD


def _tools_unpriced(calls: tuple[tuple[str, int], ...], priced: Priced) -> tuple[str, ...]:
    """The hosted tools whose fee is not in the call's cost: all of them when the call is not priced."""
    if priced.source is None:
        return tuple(tool for tool, _ in calls)
    return priced.tools_unpriced


def _openai_list(where: Endpoint, rates: Rates | None) -> bool:
    """The call is billed at OpenAI's list prices: OpenAI's API, or a gateway priced at OpenAI's list."""
    return where.provider == "openai" or (rates is not None and rates.source.startswith("genai-prices:openai/"))


def span_attributes(outcome: Outcome, priced: Priced, attrs: dict[str, Any]) -> None:
    """The response's attributes for the call's span, added to `attrs`. Pure."""
    info = outcome.info
    if info.response_id:
        attrs[sc.GEN_AI_RESPONSE_ID] = info.response_id
    if info.model:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = info.model
    if info.finish_reasons:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = info.finish_reasons
    if info.service_tier:
        attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = info.service_tier
    if info.system_fingerprint:
        attrs[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = info.system_fingerprint
    usage = info.usage
    if priced.rejected is not None:
        attrs[sc.USAGE_REJECTED] = priced.rejected
    if usage is not None and priced.rejected != REJECT_TOKENS:
        attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input
        attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output
        if usage.cache_read:
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read
        if usage.cache_write:
            attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write
        if usage.reasoning:
            attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning
        attrs[sc.CACHE_HIT] = usage.cache_read > 0
    elif outcome.unmetered:
        attrs[sc.UNMETERED] = True
    if info.tool_calls and priced.rejected != REJECT_TOOLS:
        for tool, runs in info.tool_calls:
            attrs[f"{sc.HOSTED_TOOL_CALLS}.{tool}"] = runs
        if priced.tool_fees_usd:
            attrs[sc.TOOL_FEES_USD] = priced.tool_fees_usd
        unpriced = _tools_unpriced(info.tool_calls, priced)
        if unpriced:
            attrs[sc.HOSTED_TOOL_UNPRICED] = unpriced
    if outcome.first_chunk is not None:
        attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = outcome.first_chunk
        attrs[sc.STREAM_CHUNKS] = outcome.chunks
    cost = priced.cost
    if cost is not None and priced.source is not None:
        attrs[sc.COST_USD] = cost.usd
        attrs[sc.PRICE_SOURCE] = priced.source
        if priced.computed_usd is not None:
            attrs[sc.COST_COMPUTED_USD] = priced.computed_usd
        if cost.cache_savings_usd:
            attrs[sc.CACHE_SAVINGS_USD] = cost.cache_savings_usd
        if priced.reference_usd is not None:
            attrs[sc.COST_REFERENCE_USD] = priced.reference_usd
    elif usage is not None and not outcome.response_cache_hit and priced.rejected is None:
        attrs[sc.UNPRICED] = True
    if outcome.response_cache_hit is not None:
        attrs[sc.RESPONSE_CACHE_HIT] = outcome.response_cache_hit
    if outcome.response_cache_hit:
        attrs[sc.COST_USD] = 0.0
        if priced.saved is not None and priced.source is not None:
            attrs[sc.CACHE_SAVINGS_USD] = priced.saved.usd
            attrs[sc.PRICE_SOURCE] = priced.source
    if outcome.output:
        attrs[sc.GEN_AI_OUTPUT_MESSAGES] = outcome.output
    exc = outcome.exc
    if exc is not None:
        attrs[sc.ERROR_TYPE] = error_type(exc)
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status
    if outcome.retries:
        attrs[sc.HTTP_REQUEST_RESEND_COUNT] = outcome.retries
        attrs[sc.BACKOFF_SECONDS] = outcome.backoff


# The attributes that extend a call's attribute set per sum (see ledger.Row).
_INPUT: Final = ((sc.GEN_AI_TOKEN_TYPE, sc.TOKEN_INPUT),)
_OUTPUT: Final = ((sc.GEN_AI_TOKEN_TYPE, sc.TOKEN_OUTPUT),)
_CACHE_READ: Final = ((sc.GEN_AI_TOKEN_TYPE, sc.TOKEN_CACHE_READ),)
_CACHE_CREATION: Final = ((sc.GEN_AI_TOKEN_TYPE, sc.TOKEN_CACHE_CREATION),)
_REASONING: Final = ((sc.GEN_AI_TOKEN_TYPE, sc.TOKEN_REASONING),)
_RESPONSE_CACHE: Final = ((sc.CACHE_KIND, "response"),)
_PROMPT_CACHE: Final = ((sc.CACHE_KIND, "prompt"),)
_PROMPT_SIZES: Final = {size: ((sc.PROMPT_SIZE, size),) for size in ("small", "medium", "large")}

_Attrs = dict[str, Any]
Key = tuple[tuple[str, Any], ...]
_standard: dict[tuple[str, Endpoint, str, str], _Attrs] = {}


def _zero_not_taken(outcome: Outcome) -> bool:
    """The gateway reported 0 for a call with tokens, and sends 0 for calls it could not price too
    (provider_cost.ZERO_IS_UNKNOWN): not the cost of a free call."""
    reported, usage = outcome.provider_cost, outcome.info.usage
    return (reported is not None and reported.zero_is_unknown and usage is not None
            and bool(usage.input or usage.output))


def _standard_attributes(operation: str, where: Endpoint, model: str, response_model: str) -> _Attrs:
    """The GenAI metrics' standard attribute set, built once per model and endpoint. The SDK copies
    what it keeps, so sharing the dict is safe (conventions.StandardMetrics extends it per record)."""
    key = (operation, where, model, response_model)
    found = _standard.get(key)
    if found is None:
        found = {
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.GEN_AI_PROVIDER_NAME: where.provider,
            sc.GEN_AI_REQUEST_MODEL: model,
            sc.SERVER_ADDRESS: where.address,
            sc.SERVER_PORT: where.port,
        }
        if response_model:
            found[sc.GEN_AI_RESPONSE_MODEL] = response_model
        if len(_standard) < 4096:  # bounded like the metric series themselves
            _standard[key] = found
    return found


class Recorder:
    """Records outcomes into one `Telemetry`'s tracer, histograms and sums."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._t = telemetry

    def record(self, span: Span, context: Context, outcome: Outcome) -> None:
        """Price, write and end the span, then the metrics. Never raises; the span always ends."""
        attempt: Key | None = None
        try:
            priced = self.price(outcome)
        except Exception as exc:
            report_fault("pricing", exc)
            priced = NOT_PRICED
        try:
            attempt = self._attempt(outcome)
        except Exception as exc:
            report_fault("last attempt", exc)
        try:
            if span.is_recording():
                self._write_span(span, outcome, priced)
        except Exception as exc:
            report_fault("span attributes", exc)
        finally:
            span.end()
        try:
            self._histograms(context, outcome, priced)
        except Exception as exc:
            report_fault("histograms", exc)
        try:
            self._sums(outcome, priced, attempt)
        except Exception as exc:
            report_fault("sums", exc)
        try:
            self._warn(outcome, priced)
        except Exception as exc:
            report_fault("warnings", exc)

    def price(self, outcome: Outcome) -> Priced:
        """The call's cost, from its usage and the price book; rejected when beyond any real call."""
        usage = outcome.info.usage
        if usage is None:
            return NOT_PRICED
        tools = outcome.info.tool_calls
        rejected = usage_rejected(usage)
        if rejected is None and tools and sum(runs for _, runs in tools) > hosted_tools.MAX_CALLS:
            rejected = REJECT_TOOLS
        if rejected is not None:
            return Priced(None, None, None, None, rejected)
        t = self._t
        where, model, response_model = outcome.where, outcome.model, outcome.response_model
        tier = outcome.info.service_tier
        rates = t.prices.rates(where.provider, where.base_url, response_model, tier)
        if rates is None and response_model != model and model:
            rates = t.prices.rates(where.provider, where.base_url, model, tier)
        # Already bounded to a finite [0, MAX_COST_USD] by provider_cost; a 0 that may mean "could not price
        # it" is not taken for a free call (_warn says so once).
        reported = None if _zero_not_taken(outcome) else outcome.provider_cost
        computed = rates.cost(usage) if rates is not None else None
        fees = _NO_FEES
        if tools:
            fees = hosted_tools.fees(tools, response_model, outcome.searched_preview, _openai_list(where, rates),
                                     functools.partial(t.prices.tool_fee, where.base_url))
            if computed is not None:
                computed = computed._replace(usd=computed.usd + fees.usd)
        if computed is not None and not _cost_ok(computed.usd):
            return Priced(None, None, None, None, REJECT_COST)
        cost: Cost
        if reported is not None:  # the provider's own figure wins (its tools' fees in it); ours stays on the span
            cost = Cost(reported.usd, computed.cache_savings_usd if computed is not None else 0.0)
            source, computed_usd = sc.PRICE_SOURCE_PROVIDER, computed.usd if computed is not None else None
            fees = _NO_FEES
        elif computed is not None and rates is not None:
            cost, source, computed_usd = computed, rates.source, None
        else:  # no price known, none reported
            return NOT_PRICED
        if not _cost_ok(cost.cache_savings_usd):  # swapped prices: a cache that "costs" money
            return Priced(rates, cost._replace(cache_savings_usd=0.0), None, None, REJECT_SAVINGS, source, computed_usd,
                          fees.usd, fees.unpriced)
        charged: Cost | None = cost
        saved = None
        if outcome.response_cache_hit:
            saved, charged = cost, None
        reference_usd = None
        if charged is not None and t.reference is not None:
            reference_usd = t.reference.cost(usage).usd
            if not _cost_ok(reference_usd):
                reference_usd = None
        return Priced(rates, charged, saved, reference_usd, None, source, computed_usd, fees.usd, fees.unpriced)

    def _write_span(self, span: Span, outcome: Outcome, priced: Priced) -> None:
        attrs: dict[str, Any] = {}
        span_attributes(outcome, priced, attrs)
        span.set_attributes(conventions.span_attributes(self._t.conventions, attrs, outcome.info.usage))
        exc = outcome.exc
        if exc is not None:  # the status and the last attempt's event after the attributes: a fault here keeps them
            err = error_type(exc)
            span.set_status(Status(StatusCode.ERROR, scrub(str(exc))[:200] or err))
            if outcome.http_status is None:
                failure = final_failure(exc)
                if failure is not None:
                    span.add_event(ATTEMPT_FAILED, event_attributes(failure, outcome.retries, None))

    def _attempt(self, outcome: Outcome) -> Key | None:
        """The last attempt's key for otel_llm.http.attempts; None when no request was sent (a
        response cache hit, an argument error) or none failed (a cancellation)."""
        status = outcome.http_status
        if status is None:
            failure = final_failure(outcome.exc) if outcome.exc is not None else None
            if failure is None:
                return None
            status = failure.status
        t = self._t
        return attempt_key(outcome.where, outcome.model, outcome.key_id if t.metric_key else None, status)

    def _histograms(self, ctx: Context, outcome: Outcome, priced: Priced) -> None:
        """The standard GenAI metrics, in the conventions the telemetry follows (conventions.py)."""
        models = self._t.ledger.models  # model names on metric labels are capped like users
        std = _standard_attributes(outcome.operation, outcome.where, models.admit(outcome.model),
                                   models.admit(outcome.response_model))
        exc = outcome.exc
        metered = not outcome.response_cache_hit and priced.rejected != REJECT_TOKENS
        self._t.standard.record(
            conventions.Outcome(outcome.operation, outcome.duration, outcome.first_chunk, outcome.info.usage,
                                error_type(exc) if exc is not None else None, metered),
            std, ctx,
        )

    def _key(self, outcome: Outcome) -> Key:
        """Our sums' attribute set for one call, extended per metric."""
        t = self._t
        who, where = outcome.who, outcome.where
        key: Key = (
            (sc.GEN_AI_OPERATION_NAME, outcome.operation),
            (sc.GEN_AI_PROVIDER_NAME, where.provider),
            (sc.GEN_AI_REQUEST_MODEL, outcome.model),
            (sc.GEN_AI_RESPONSE_MODEL, outcome.response_model),
            (sc.SERVER_ADDRESS, where.address),
        )
        if t.metric_user:
            key += ((sc.USER_ID, t.metric_user_id(who.user_id) if who.user_id else ""),)
        if t.metric_team:
            key += ((sc.TEAM, who.team or ""),)
        if t.metric_key:
            key += ((sc.API_KEY_FINGERPRINT, outcome.key_id),)
        if t.metric_feature:
            key += ((sc.FEATURE, who.feature or ""),)
        return key

    def _sums(self, outcome: Outcome, priced: Priced, attempt: Key | None) -> None:
        t = self._t
        key = self._key(outcome)
        endpoint_key = key[:3] + key[4:5]  # operation, provider, request model, server address
        exc = outcome.exc
        usage = outcome.info.usage
        cost, saved = priced.cost, priced.saved
        with t.ledger.lock:
            row = t.ledger.row(key)
            row.add(t.calls, ((sc.ERROR_TYPE, error_type(exc)),) if exc is not None else (), 1)
            if attempt is not None:
                t.http_attempts.add(attempt, 1)
            if outcome.unmetered:
                t.unmetered.add(endpoint_key, 1)
            if priced.rejected is not None:
                t.usage_rejected.add(endpoint_key + ((sc.REJECTED_REASON, priced.rejected),), 1)
                if priced.rejected != REJECT_SAVINGS:
                    return
            tools = outcome.info.tool_calls
            if tools and not outcome.response_cache_hit:
                unpriced = _tools_unpriced(tools, priced)
                for tool, runs in tools:
                    t.hosted_tool_calls.add(
                        endpoint_key + ((sc.HOSTED_TOOL, tool), (sc.HOSTED_TOOL_PRICED, str(tool not in unpriced).lower())),
                        runs)
            if saved is not None:
                row.add(t.cache_savings, _RESPONSE_CACHE, saved.usd)
            if usage is None or outcome.response_cache_hit:
                return  # on a hit the provider processed no tokens: the span keeps them, the sums do not
            if cost is not None:
                size = _PROMPT_SIZES[prompt_size(usage.input)]
                row.add(t.cost, size, cost.usd)
                if cost.cache_savings_usd:
                    row.add(t.cache_savings, _PROMPT_CACHE, cost.cache_savings_usd)
                if priced.reference_usd is not None:
                    row.add(t.cost_reference, size + ((sc.REFERENCE_MODEL, t.settings.reference_model),),
                            priced.reference_usd)
            else:
                t.unpriced.add(key[:5], 1)
            tokens = t.tokens
            row.add(tokens, _INPUT, usage.input)
            row.add(tokens, _OUTPUT, usage.output)
            if usage.cache_read:
                row.add(tokens, _CACHE_READ, usage.cache_read)
            if usage.cache_write:
                row.add(tokens, _CACHE_CREATION, usage.cache_write)
            if usage.reasoning:
                row.add(tokens, _REASONING, usage.reasoning)

    def _warn(self, outcome: Outcome, priced: Priced) -> None:
        t = self._t
        address = outcome.where.address
        tools = outcome.info.tool_calls
        if tools and priced.rejected is None and not outcome.response_cache_hit:
            for tool in _tools_unpriced(tools, priced):
                warn_once("hosted tool", f"{tool} {address}",
                          "otel_llm: a call to %s (model %r) ran the hosted %s tool, whose fee is not in its cost "
                          "(counted in %s with %s=false): otel_llm prices web and file search at OpenAI's list "
                          "fee per run, on calls priced at OpenAI's list; code interpreter and image generation "
                          "are billed by measures a call does not carry. A fee per run under `hosted_tools:` in %s "
                          "prices it.", address, outcome.model, tool, sc.HOSTED_TOOL_CALLS, sc.HOSTED_TOOL_PRICED,
                          t.prices.file_path or "a prices file named by OTEL_LLM_PRICES")
        reported = outcome.provider_cost
        if reported is not None and _zero_not_taken(outcome):
            warn_once("gateway zero", address,
                      "otel_llm: the gateway at %s (%s) reported a cost of 0 in %s for a %s call to %r with tokens; it "
                      "sends 0 for calls it could not price too, so otel_llm prices such calls itself, or counts "
                      "them in %s.", address, reported.gateway, reported.field, outcome.operation, outcome.model,
                      sc.CALLS_UNPRICED)
        if priced.rejected is not None:
            warn_once("rejected", address,
                      "otel_llm: %s reported a usage or cost beyond any real call (%s); it is not added to the "
                      "sums, and counted in %s", address, priced.rejected, sc.USAGE_REJECTED_CALLS)
        elif outcome.unmetered and outcome.operation in BILLED_BY_OTHER_MEASURE:
            warn_once("unmetered", f"{outcome.operation} {address}",
                      "otel_llm: a %s call to %s (model %r) returned no token usage, so its cost is not measured "
                      "(counted in %s): images, speech and whisper transcriptions are billed per image, per "
                      "character or per minute, which otel_llm does not price. `otel-llm reconcile` compares "
                      "with the provider's bill.", outcome.operation, address, outcome.model, sc.CALLS_UNMETERED)
        elif outcome.unmetered and not outcome.streaming and outcome.info.finish_reasons in _PENDING:
            warn_once("unmetered", f"background {address}",
                      "otel_llm: a background Responses call to %s (model %r) returned while %s, before its usage "
                      "existed, so its tokens and cost are not measured (counted in %s); otel_llm does not follow "
                      "responses.retrieve(). `otel-llm reconcile` compares with the provider's bill.",
                      address, outcome.model, outcome.info.finish_reasons[0], sc.CALLS_UNMETERED)
        elif outcome.unmetered:
            warn_once("unmetered", address,
                      "otel_llm: a %s call to %s ended with no usage we could read, so its tokens and cost are not measured "
                      "(counted in %s). For streams, OTEL_LLM_INCLUDE_STREAM_USAGE=always (or a list naming "
                      "%s) asks the server for the usage chunk; a gateway that strips usage must pass it on.",
                      outcome.operation, address, sc.CALLS_UNMETERED, address)
        elif (priced.source is None and outcome.info.usage is not None and not outcome.response_cache_hit
              and t.prices.first_unpriced(outcome.response_model)):
            where_fix = t.prices.file_path or "a prices file named by OTEL_LLM_PRICES"
            warn_once("unpriced", outcome.response_model,
                      "otel_llm: no price known for model %r at %s; its calls are counted in %s but carry no cost. "
                      "Add it to %s.", outcome.response_model, address, sc.CALLS_UNPRICED, where_fix)

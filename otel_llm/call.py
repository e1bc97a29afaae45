"""The lifecycle of one request: start -> chunk* -> finish | fail, ending exactly once.

A `Call` owns one span. `finish()` receives whatever the SDK returned and hands back that very
object, or a stream proxy that feeds chunks back here. The single `_end()` computes cost and
records the span attributes and every metric, so plain calls, streams, raw responses and failures
all share one path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from . import semconv as sc
from .attribution import Attribution
from .extract import Endpoint, ResponseInfo, content_json, response_info, usage_of
from .pricing import Usage
from .retries import ATTEMPT_FAILED, Failure, event_attributes, final_failure, status_class

if TYPE_CHECKING:
    from .telemetry import Telemetry

__all__ = ["Call", "error_type", "report_fault"]

_log = logging.getLogger("otel_llm")
_reported: set[str] = set()
_EMPTY_INFO: Final = ResponseInfo(None, None, (), None, None, None)
_SMALL_PROMPT: Final = 1_000
_MEDIUM_PROMPT: Final = 10_000


def report_fault(where: str, exc: BaseException) -> None:
    """A bug of ours: logged once per place at debug level, never raised into the app."""
    if where not in _reported:
        _reported.add(where)
        _log.debug("otel_llm: internal error in %s (telemetry for this call is incomplete)", where, exc_info=exc)


def error_type(exc: BaseException) -> str:
    """A low-cardinality error.type: the exception's class name (the SDK's names tell 401 from 429)."""
    return type(exc).__name__


def prompt_size(input_tokens: int) -> str:
    if input_tokens < _SMALL_PROMPT:
        return "small"
    return "medium" if input_tokens < _MEDIUM_PROMPT else "large"


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
_standard: dict[tuple[str, Endpoint, str, str], tuple[_Attrs, _Attrs, _Attrs]] = {}


def _standard_attributes(operation: str, where: Endpoint, model: str, response_model: str) -> tuple[_Attrs, _Attrs, _Attrs]:
    """The GenAI histograms' attribute sets (plain, input tokens, output tokens), built once per
    model and endpoint. The SDK copies what it keeps, so sharing these dicts is safe."""
    key = (operation, where, model, response_model)
    found = _standard.get(key)
    if found is None:
        std: _Attrs = {
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.GEN_AI_PROVIDER_NAME: where.provider,
            sc.GEN_AI_REQUEST_MODEL: model,
            sc.SERVER_ADDRESS: where.address,
            sc.SERVER_PORT: where.port,
        }
        if response_model:
            std[sc.GEN_AI_RESPONSE_MODEL] = response_model
        found = (std, {**std, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_INPUT}, {**std, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_OUTPUT})
        if len(_standard) < 4096:  # bounded like the metric series themselves
            _standard[key] = found
    return found


class Call:
    __slots__ = (
        "_chunks",
        "_ended",
        "_fingerprint",
        "_first_chunk",
        "_reasons",
        "_response_id",
        "_response_model",
        "_start",
        "_t",
        "_text",
        "_tier",
        "_usage",
        "backoff",
        "cache_chunks",
        "cache_store",
        "context",
        "http_status",
        "key_id",
        "model",
        "operation",
        "response_cache_hit",
        "retries",
        "span",
        "streaming",
        "strip_usage",
        "where",
        "who",
    )

    def __init__(
        self, telemetry: Telemetry, span: Span, operation: str, model: str, where: Endpoint,
        who: Attribution, key_id: str, streaming: bool,
    ) -> None:
        self._t = telemetry
        self.span = span
        self.operation = operation
        self.model = model
        self.where = where
        self.who = who
        self.key_id = key_id
        self.streaming = streaming
        self.strip_usage = False
        self._start = time.perf_counter()
        self._ended = False
        self._first_chunk: float | None = None
        self._chunks = 0
        self._response_id: str | None = None
        self._response_model: str | None = None
        self._reasons: list[str] = []
        self._usage: object = None
        self._tier: str | None = None
        self._fingerprint: str | None = None
        self._text: list[str] | None = [] if telemetry.settings.capture_content else None
        self.response_cache_hit = False
        # HTTP attempts (hooks in retries.py): retries the SDK made, seconds it waited between them,
        # and the status of the attempt that succeeded.
        self.retries = 0
        self.backoff = 0.0
        self.http_status: int | None = None
        # Set by the response cache on a streamed miss: the chunks to store, and how, at the end.
        self.cache_chunks: list[Any] | None = None
        self.cache_store: Callable[[Call], None] | None = None
        # The span's context: made current while the SDK runs (HTTP spans nest under ours) and
        # passed to every metric record, so exemplars link metrics to this trace.
        self.context = trace.set_span_in_context(span)

    # --- outcomes ------------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        """The SDK raised: record the error. Never raises."""
        try:
            self._end(_EMPTY_INFO, exc)
        except BaseException as inner:
            report_fault("Call.fail", inner)

    def complete(self, result: object) -> None:
        """A whole response object arrived (plain call, or a parsed raw response)."""
        info = response_info(result)
        if self._text is not None:
            self._text.append(content_json(getattr(result, "choices", None) or getattr(result, "output", None)))
        self._end(info, None)

    def end_quietly(self) -> None:
        """End with whatever we have (a fault of ours, or a response nobody parsed)."""
        try:
            self._end(self._stream_info(), None)
        except BaseException as inner:
            report_fault("Call.end_quietly", inner)

    # --- streams -------------------------------------------------------------------------------
    def on_chunk(self, chunk: Any) -> None:
        """One chat / legacy completion chunk."""
        if self._first_chunk is None:
            self._first_chunk = time.perf_counter()
            self._response_id = getattr(chunk, "id", None)
            self._response_model = getattr(chunk, "model", None)
            self._tier = getattr(chunk, "service_tier", None)
            self._fingerprint = getattr(chunk, "system_fingerprint", None)
        self._chunks += 1
        if self.cache_chunks is not None:
            self.cache_chunks.append(chunk)
        choices = chunk.choices
        if choices:
            for choice in choices:
                reason = choice.finish_reason
                if reason:
                    self._reasons.append(reason)
            if self._text is not None:
                delta = getattr(choices[0], "delta", None)
                piece = getattr(delta, "content", None) if delta is not None else getattr(choices[0], "text", None)
                if isinstance(piece, str):
                    self._text.append(piece)
        usage = chunk.usage
        if usage is not None:
            self._usage = usage

    def on_event(self, event: Any) -> None:
        """One Responses API stream event."""
        self._chunks += 1
        # The first content, not `response.created` (sent before the model produced anything).
        if self._first_chunk is None and getattr(event, "type", "").endswith(".delta"):
            self._first_chunk = time.perf_counter()
        response = getattr(event, "response", None)
        if response is not None:
            self._response_id = getattr(response, "id", None) or self._response_id
            self._response_model = getattr(response, "model", None) or self._response_model
            usage = getattr(response, "usage", None)
            if usage is not None:
                self._usage = usage
                info = response_info(response)
                self._reasons = list(info.finish_reasons)
                self._tier = info.service_tier
        elif self._text is not None and getattr(event, "type", None) == "response.output_text.delta":
            delta = getattr(event, "delta", None)
            if isinstance(delta, str):
                self._text.append(delta)

    def end_stream(self, exc: BaseException | None = None) -> None:
        """The stream ended: exhausted, closed, failed or dropped. Never raises."""
        if self._ended:
            return
        try:
            self._end(self._stream_info(), exc)
        except BaseException as inner:
            report_fault("Call.end_stream", inner)
        if exc is None and self.cache_store is not None:
            self.cache_store(self)  # never raises

    def _stream_info(self) -> ResponseInfo:
        return ResponseInfo(
            self._response_id if isinstance(self._response_id, str) else None,
            self._response_model if isinstance(self._response_model, str) else None,
            tuple(self._reasons),
            usage_of(self._usage),
            self._tier if isinstance(self._tier, str) else None,
            self._fingerprint if isinstance(self._fingerprint, str) else None,
        )

    # --- HTTP attempts (the hooks that call these are in retries.py) ----------------------------
    def record_retry(self, failure: Failure, failed_at: int, waited: float) -> None:
        """One failed attempt that the SDK retried after waiting `waited` seconds (the hook guards it)."""
        if self._ended:
            return
        resend = self.retries
        self.retries = resend + 1
        self.backoff += waited
        span = self.span
        if span.is_recording():
            span.add_event(ATTEMPT_FAILED, event_attributes(failure, resend, waited), timestamp=failed_at)
        t = self._t
        where = self.where
        t.http_backoff.record(
            waited,
            {sc.GEN_AI_PROVIDER_NAME: where.provider, sc.GEN_AI_REQUEST_MODEL: t.ledger.models.admit(self.model),
             sc.SERVER_ADDRESS: where.address},
            context=self.context,
        )
        key = self._attempt_key(failure.status)
        with t.ledger.lock:
            t.http_attempts.add(key, 1)

    def _last_attempt(self, exc: BaseException | None, recording: bool) -> tuple[tuple[str, Any], ...] | None:
        """The last attempt's key for otel_llm.http.attempts, and its event when it failed. None when no
        request was sent (a response cache hit, an argument error) or none failed (a cancellation)."""
        try:
            status = self.http_status
            if status is None:
                failure = final_failure(exc) if exc is not None else None
                if failure is None:
                    return None
                if recording:
                    self.span.add_event(ATTEMPT_FAILED, event_attributes(failure, self.retries, None))
                status = failure.status
            return self._attempt_key(status)
        except Exception as inner:
            report_fault("Call.last_attempt", inner)
            return None

    def _attempt_key(self, status: int | None) -> tuple[tuple[str, Any], ...]:
        where = self.where
        key: tuple[tuple[str, Any], ...] = (
            (sc.GEN_AI_PROVIDER_NAME, where.provider),
            (sc.GEN_AI_REQUEST_MODEL, self.model),
            (sc.SERVER_ADDRESS, where.address),
        )
        if self._t.metric_key:
            key += ((sc.API_KEY_FINGERPRINT, self.key_id),)
        if status is None:
            return key + ((sc.STATUS_CLASS, "none"),)
        return key + ((sc.STATUS_CLASS, status_class(status)), (sc.HTTP_RESPONSE_STATUS_CODE, status))

    # --- the one place that records ------------------------------------------------------------
    def _end(self, info: ResponseInfo, exc: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        t = self._t
        duration = time.perf_counter() - self._start
        span = self.span
        usage = info.usage
        response_model = info.model or self.model
        where = self.where
        err = error_type(exc) if exc is not None else None

        rates = None
        cost = None
        saved = None  # a response cache hit: what the call would have cost, and cost 0 instead
        if usage is not None:
            rates = t.prices.rates(where.provider, where.base_url, response_model, info.service_tier)
            if rates is None and response_model != self.model and self.model:
                rates = t.prices.rates(where.provider, where.base_url, self.model, info.service_tier)
            if rates is not None:
                cost = rates.cost(usage)
                if self.response_cache_hit:
                    saved, cost = cost, None

        reference_usd = None
        if cost is not None and usage is not None and t.reference is not None:
            reference_usd = t.reference.cost(usage).usd  # once, for the span and the counter

        recording = span.is_recording()
        if recording:
            attrs: dict[str, Any] = {}
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
            if usage is not None:
                attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input
                attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output
                if usage.cache_read:
                    attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read
                if usage.cache_write:
                    attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write
                if usage.reasoning:
                    attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning
                attrs[sc.CACHE_HIT] = usage.cache_read > 0
            if self._first_chunk is not None:
                attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self._first_chunk - self._start
                attrs[sc.STREAM_CHUNKS] = self._chunks
            if cost is not None and rates is not None:
                attrs[sc.COST_USD] = cost.usd
                attrs[sc.PRICE_SOURCE] = rates.source
                if cost.cache_savings_usd:
                    attrs[sc.CACHE_SAVINGS_USD] = cost.cache_savings_usd
                if reference_usd is not None:
                    attrs[sc.COST_REFERENCE_USD] = reference_usd
            elif usage is not None and not self.response_cache_hit:
                attrs[sc.UNPRICED] = True
            if self.response_cache_hit:
                attrs[sc.RESPONSE_CACHE_HIT] = True
                attrs[sc.COST_USD] = 0.0
                if saved is not None and rates is not None:
                    attrs[sc.CACHE_SAVINGS_USD] = saved.usd
                    attrs[sc.PRICE_SOURCE] = rates.source
            if self._text is not None and self._text:
                attrs[sc.GEN_AI_OUTPUT_MESSAGES] = "".join(self._text)
            if exc is not None and err is not None:
                attrs[sc.ERROR_TYPE] = err
                status = getattr(exc, "status_code", None)
                if isinstance(status, int):
                    attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200] or err))
            if self.retries:
                attrs[sc.HTTP_REQUEST_RESEND_COUNT] = self.retries
                attrs[sc.BACKOFF_SECONDS] = self.backoff
            span.set_attributes(attrs)
        attempt = self._last_attempt(exc, recording)
        span.end()
        self._record_metrics(duration, usage, response_model, err, cost, rates is not None, saved, attempt,
                             reference_usd)

    def _record_metrics(
        self, duration: float, usage: Usage | None, response_model: str, err: str | None,
        cost: Any, priced: bool, saved: Any = None, attempt: tuple[tuple[str, Any], ...] | None = None,
        reference_usd: float | None = None,
    ) -> None:
        t = self._t
        where = self.where
        ctx = self.context
        models = t.ledger.models  # model names on metric labels are capped (`_other`), as in the sums
        std, std_in, std_out = _standard_attributes(self.operation, where, models.admit(self.model),
                                                    models.admit(response_model))
        if err is not None:
            t.duration.record(duration, {**std, sc.ERROR_TYPE: err}, context=ctx)
        else:
            t.duration.record(duration, std, context=ctx)
        if self._first_chunk is not None:
            t.time_to_first_chunk.record(self._first_chunk - self._start, std, context=ctx)
        if usage is not None and not self.response_cache_hit:
            t.token_usage.record(usage.input, std_in, context=ctx)
            if self.operation != sc.OP_EMBEDDINGS:
                t.token_usage.record(usage.output, std_out, context=ctx)

        # Our sums: one key per call, extended per metric.
        who = self.who
        key: tuple[tuple[str, Any], ...] = (
            (sc.GEN_AI_OPERATION_NAME, self.operation),
            (sc.GEN_AI_PROVIDER_NAME, where.provider),
            (sc.GEN_AI_REQUEST_MODEL, self.model),
            (sc.GEN_AI_RESPONSE_MODEL, response_model),
            (sc.SERVER_ADDRESS, where.address),
        )
        if t.metric_user:
            key += ((sc.USER_ID, t.metric_user_id(who.user_id) if who.user_id else ""),)
        if t.metric_team:
            key += ((sc.TEAM, who.team or ""),)
        if t.metric_key:
            key += ((sc.API_KEY_FINGERPRINT, self.key_id),)
        if t.metric_feature:
            key += ((sc.FEATURE, who.feature or ""),)
        with t.ledger.lock:
            row = t.ledger.row(key)
            row.add(t.calls, ((sc.ERROR_TYPE, err),) if err else (), 1)
            if attempt is not None:
                t.http_attempts.add(attempt, 1)
            if saved is not None:
                row.add(t.cache_savings, _RESPONSE_CACHE, saved.usd)
            if usage is None or self.response_cache_hit:
                return  # on a hit the provider processed no tokens: the span keeps them, the sums do not
            if cost is not None:
                size = _PROMPT_SIZES[prompt_size(usage.input)]
                row.add(t.cost, size, cost.usd)
                if cost.cache_savings_usd:
                    row.add(t.cache_savings, _PROMPT_CACHE, cost.cache_savings_usd)
                if reference_usd is not None:
                    row.add(t.cost_reference, size + ((sc.REFERENCE_MODEL, t.settings.reference_model),), reference_usd)
            elif not priced and not self.response_cache_hit:
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
        if not priced and not self.response_cache_hit and t.prices.first_unpriced(response_model or self.model):
            where_fix = t.prices.file_path or "a prices file named by OTEL_LLM_PRICES"
            logging.getLogger("otel_llm").warning(
                "otel_llm: no price known for model %r at %s; its calls are counted in %s but carry no cost. "
                "Add it to %s.", response_model or self.model, where.address, sc.CALLS_UNPRICED, where_fix,
            )

"""The lifecycle of one request: start -> chunk* -> finish | fail, ending exactly once.

A `Call` keeps what arrives (chunks, events, a whole response, an exception) and, when it ends,
hands one frozen `Outcome` to the telemetry's recorder (record.py), which writes the span, ends it
and records the metrics. Other modules talk to a call through its named methods (`ask_usage`,
`mark_response_cache_hit`, `keep_chunks`, `set_http_status`, `note_retry`), never its fields.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.trace import Span

from .attribution import Attribution
from .extract import Endpoint, ResponseInfo, fields, response_info, usage_of
from .faults import report_fault
from .messages import output_messages, stream_output, to_json
from .provider_cost import ProviderCost, cost_from_response
from .record import Outcome, error_type

if TYPE_CHECKING:
    from .telemetry import Telemetry

__all__ = ["Call", "error_type", "report_fault"]

_EMPTY_INFO: Final = ResponseInfo(None, None, (), None, None, None)


class Call:
    __slots__ = (
        "_backoff",
        "_cache_hit",
        "_chunks",
        "_ended",
        "_fingerprint",
        "_first_chunk",
        "_http_status",
        "_kept",
        "_output",
        "_provider_cost",
        "_reasons",
        "_response_id",
        "_response_model",
        "_retries",
        "_start",
        "_store",
        "_strip",
        "_text",
        "_tier",
        "_usage",
        "context",
        "key_id",
        "model",
        "operation",
        "span",
        "streaming",
        "telemetry",
        "where",
        "who",
    )

    def __init__(
        self, telemetry: Telemetry, span: Span, operation: str, model: str, where: Endpoint,
        who: Attribution, key_id: str, streaming: bool,
    ) -> None:
        self.telemetry = telemetry
        self.span = span
        self.operation = operation
        self.model = model
        self.where = where
        self.who = who
        self.key_id = key_id
        self.streaming = streaming
        self._strip = False
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
        self._output: str | None = None  # a whole response's captured output messages
        self._cache_hit: bool | None = None
        # HTTP attempts (hooks in retries.py): retries the SDK made, seconds it waited between them,
        # and the status of the attempt that succeeded.
        self._retries = 0
        self._backoff = 0.0
        self._http_status: int | None = None
        # The cost a gateway reported itself (provider_cost.py): a header at the last attempt, or the body.
        self._provider_cost: ProviderCost | None = None
        # Armed by the response cache on a streamed miss: the chunks to store, and how, at the end.
        self._kept: list[Any] | None = None
        self._store: Callable[[Call], None] | None = None
        # The span's context: made current while the SDK runs (HTTP spans nest under ours) and
        # passed to every metric record, so exemplars link metrics to this trace.
        self.context = trace.set_span_in_context(span)

    # --- what other modules tell a call ---------------------------------------------------------
    def ask_usage(self) -> None:
        """We asked the server for the stream's usage chunk: the stream proxy hides it from the app."""
        self._strip = True

    @property
    def strips_usage(self) -> bool:
        return self._strip

    def mark_response_cache_hit(self) -> None:
        """The response cache answered: the call cost nothing and saved what it would have cost."""
        self._cache_hit = True

    def mark_response_cache_miss(self) -> None:
        self._cache_hit = False

    @property
    def ended(self) -> bool:
        """The call has handed its outcome to the recorder (it ends once)."""
        return self._ended

    @property
    def response_cache_hit(self) -> bool:
        return self._cache_hit is True

    def keep_chunks(self, store: Callable[[Call], None]) -> None:
        """Keep the stream's chunks; at a clean end, `store(call)` takes them (see `take_chunks`)."""
        self._kept = []
        self._store = store

    def take_chunks(self) -> list[Any]:
        kept, self._kept = self._kept, None
        return kept or []

    def set_http_status(self, status: int) -> None:
        """The status of the HTTP attempt that succeeded."""
        self._http_status = status

    def report_cost(self, cost: ProviderCost | None) -> None:
        """The provider reported the call's cost itself (a header or the body); the body wins over a header."""
        if cost is not None:
            self._provider_cost = cost

    def note_retry(self, waited: float) -> int | None:
        """One failed attempt retried after `waited` seconds: its resend count, or None once ended."""
        if self._ended:
            return None
        resend = self._retries
        self._retries = resend + 1
        self._backoff += waited
        return resend

    # --- outcomes ------------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        """The SDK raised: record the error. Never raises."""
        self._end(_EMPTY_INFO, exc)

    def complete(self, result: object) -> None:
        """A whole response object arrived (plain call, or a parsed raw response)."""
        try:
            info = response_info(result)
            self.report_cost(cost_from_response(result))
        except Exception as exc:
            report_fault("response info", exc)
            info = _EMPTY_INFO
        if self._text is not None:
            try:
                self._output = to_json(output_messages(result))
            except Exception as exc:
                report_fault("output messages", exc)
        self._end(info, None)

    def end_quietly(self) -> None:
        """End with whatever we have (a fault of ours, or a response nobody parsed)."""
        self._end(self._stream_info(), None)

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
        if self._kept is not None:
            self._kept.append(chunk)
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
            self.report_cost(cost_from_response(chunk))
            if self._strip and not choices:
                self._chunks -= 1  # the usage chunk we asked for: the app never sees it

    def on_event(self, event: Any) -> None:
        """One Responses API stream event."""
        self._chunks += 1
        # The first content, not `response.created` (sent before the model produced anything).
        if self._first_chunk is None and getattr(event, "type", "").endswith(".delta"):
            self._first_chunk = time.perf_counter()
        # Most events have no `response`: getattr would raise and catch inside pydantic (2 µs an event).
        response = fields(event).get("response")
        if response is not None:
            self._response_id = getattr(response, "id", None) or self._response_id
            self._response_model = getattr(response, "model", None) or self._response_model
            usage = getattr(response, "usage", None)
            if usage is not None:
                self._usage = usage
                self.report_cost(cost_from_response(response))
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
        self._end(self._stream_info(), exc)
        store = self._store
        if exc is None and store is not None:
            self._store = None
            store(self)  # never raises

    def _stream_info(self) -> ResponseInfo:
        try:
            usage = usage_of(self._usage)
        except Exception as exc:
            report_fault("stream usage", exc)
            usage = None
        return ResponseInfo(
            self._response_id if isinstance(self._response_id, str) else None,
            self._response_model if isinstance(self._response_model, str) else None,
            tuple(self._reasons),
            usage,
            self._tier if isinstance(self._tier, str) else None,
            self._fingerprint if isinstance(self._fingerprint, str) else None,
        )

    # --- the one end ---------------------------------------------------------------------------
    def _end(self, info: ResponseInfo, exc: BaseException | None) -> None:
        """Hand the outcome to the recorder, once. Never raises; the recorder ends the span."""
        if self._ended:
            return
        self._ended = True
        try:
            try:
                outcome = self._outcome(info, exc)
            except Exception as inner:  # the span must still end and the call still count
                report_fault("outcome", inner)
                outcome = self._outcome(_EMPTY_INFO, exc, bare=True)
            self.telemetry.recorder.record(self.span, self.context, outcome)
        except Exception as inner:  # the recorder ends the span itself; this is the last resort
            report_fault("record", inner)
            with contextlib.suppress(Exception):
                self.span.end()

    def _outcome(self, info: ResponseInfo, exc: BaseException | None, bare: bool = False) -> Outcome:
        first = self._first_chunk
        output = self._output
        if output is None and self._text is not None and first is not None and not bare:
            output = to_json(stream_output("".join(self._text), tuple(self._reasons)))
        return Outcome(
            self.operation, self.model, self.where, self.who, self.key_id,
            time.perf_counter() - self._start, info, exc,
            first - self._start if first is not None else None, self._chunks,
            self._cache_hit, self._retries, self._backoff, self._http_status,
            output, self.streaming, self._strip, self._provider_cost,
        )

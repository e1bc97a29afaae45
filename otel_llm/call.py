"""The lifecycle of one request: start -> chunk* -> finish | fail, ending exactly once.

A `Call` keeps what arrives (chunks, events, a whole response, an exception) and, when it ends,
hands one frozen `Outcome` to the telemetry's recorder (record.py), which writes the span, ends it
and records the metrics. Other modules talk to a call through its named methods (`ask_usage`,
`mark_response_cache_hit`, `keep_chunks`, `set_http_status`, `note_retry`), never its fields.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
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

__all__ = ["Call", "error_type", "is_usage_chunk", "report_fault"]

_EMPTY_INFO: Final = ResponseInfo(None, None, (), None, None, None)


def is_usage_chunk(chunk: Any) -> bool:
    """A chunk with no choices and a usage: the one the proxy hides when we asked for it. Never raises."""
    try:
        return not chunk.choices and chunk.usage is not None
    except Exception:
        return False


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
        "_last",
        "_output",
        "_plain",
        "_preview",
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
        "_tools",
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
        self._last: Any = None  # the last chunk, when it was a plain content delta whose usage is unread
        self._plain = False  # set at the first chunk: plain deltas need nothing but a count (see `relay`)
        self._response_id: str | None = None
        self._response_model: str | None = None
        self._reasons: list[str] = []
        self._usage: object = None
        self._tier: str | None = None
        self._tools: tuple[tuple[str, int], ...] = ()  # hosted tools the provider ran (a Responses stream's end)
        self._preview = False  # the request named the preview web search tool (hosted_tools)
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

    def searches_preview(self) -> None:
        """The request's tools name the preview web search, billed by its own rate (hosted_tools)."""
        self._preview = True

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
        self._plain = False
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
    def relay(self, source: Iterable[Any], events: bool, strip: bool, fault: Callable[[Exception], None],
              reading: bool = True) -> Iterator[Any]:
        """`for chunk in stream` through the stream proxy (streams.py): the SDK's chunks relayed to the app
        and recorded on the way, the per-chunk hot path.

        A generator over the SDK's own iterator (sdk.chunk_source) costs less per chunk than a `__next__`
        method, and it takes the place of the SDK stream's pass-through generator rather than adding a
        layer. A plain content delta of one choice (nearly every chunk of a chat stream) is counted and
        kept as the last chunk here, without a call: between the SDK's parsing of two chunks each step
        costs several times its tight-loop figure. Every other chunk goes to `on_chunk`, every event to
        `on_event`. A fault of ours calls `fault` (the proxy's: it also keeps the proxy alive while the
        loop runs) and stops the reading; the chunks still pass untouched and the usage chunk we asked
        for stays hidden (`strip`). The call ends when the stream is exhausted or raises; left early
        (GeneratorExit), the proxy's close, exit or collection ends it."""
        on: Callable[[Any], bool] | None = (self.on_event if events else self.on_chunk) if reading else None
        try:
            for chunk in source:
                if on is not None:
                    try:
                        choices = chunk.choices if self._plain else None
                        if choices and len(choices) == 1 and not choices[0].finish_reason:
                            self._chunks += 1
                            self._last = chunk
                            usage_only = False
                        else:
                            usage_only = on(chunk)
                    except Exception as exc:
                        fault(exc)
                        on = None
                        usage_only = strip and is_usage_chunk(chunk)
                else:
                    usage_only = strip and is_usage_chunk(chunk)
                if usage_only and strip:
                    continue
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.end_stream(exc)
            raise
        self.end_stream()

    async def arelay(self, source: AsyncIterable[Any], events: bool, strip: bool,
                     fault: Callable[[Exception], None], reading: bool = True) -> AsyncIterator[Any]:
        """`async for chunk in stream`: as `relay`."""
        on: Callable[[Any], bool] | None = (self.on_event if events else self.on_chunk) if reading else None
        try:
            async for chunk in source:
                if on is not None:
                    try:
                        choices = chunk.choices if self._plain else None
                        if choices and len(choices) == 1 and not choices[0].finish_reason:
                            self._chunks += 1
                            self._last = chunk
                            usage_only = False
                        else:
                            usage_only = on(chunk)
                    except Exception as exc:
                        fault(exc)
                        on = None
                        usage_only = strip and is_usage_chunk(chunk)
                else:
                    usage_only = strip and is_usage_chunk(chunk)
                if usage_only and strip:
                    continue
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.end_stream(exc)
            raise
        self.end_stream()

    def on_chunk(self, chunk: Any) -> bool:
        """One chat / legacy completion chunk. True for a usage-only chunk (no choices), which the stream
        proxy hides when we asked for it.

        A plain content delta of one choice (nearly every chunk) is counted and kept as the last one
        seen, nothing more (`relay` does the same without calling this). Finish reasons and usage come
        on the other chunks (a finish chunk, the usage chunk, a second choice), which are read whole; a
        running total of usage on the content chunks (vLLM's continuous usage stats) is read from the last
        of them, before a later chunk or the end (`_settle_last`)."""
        if self._first_chunk is None:
            self._first(chunk)
            self._plain = self._kept is None and self._text is None
        self._chunks += 1
        if self._kept is not None:
            self._kept.append(chunk)
        choices = chunk.choices
        if choices:
            if self._text is not None:
                self._capture(choices)
            if len(choices) == 1 and not choices[0].finish_reason:
                self._last = chunk
                return False
            for choice in choices:
                reason = choice.finish_reason
                if reason:
                    self._reasons.append(reason)
        self._settle_last()
        usage = chunk.usage
        if usage is None:
            return False
        self._take_usage(chunk, usage)
        if choices:
            return False
        if self._strip:
            self._chunks -= 1  # the usage chunk we asked for: the app never sees it
        return True

    def _first(self, chunk: Any) -> None:
        self._first_chunk = time.perf_counter()
        self._response_id = getattr(chunk, "id", None)
        self._response_model = getattr(chunk, "model", None)
        self._tier = getattr(chunk, "service_tier", None)
        self._fingerprint = getattr(chunk, "system_fingerprint", None)

    def _capture(self, choices: Any) -> None:
        """Opt-in content capture: the first choice's text."""
        delta = getattr(choices[0], "delta", None)
        piece = getattr(delta, "content", None) if delta is not None else getattr(choices[0], "text", None)
        if isinstance(piece, str) and self._text is not None:
            self._text.append(piece)

    def _settle_last(self) -> None:
        """The usage of the last plain delta, if it carried one (a running total), read before a later
        chunk's or the end: the latest usage a stream sent is the one it ends with."""
        last, self._last = self._last, None
        if last is not None:
            late = last.usage
            if late is not None:
                self._take_usage(last, late)

    def _take_usage(self, carrier: Any, usage: Any) -> None:
        self._usage = usage
        self.report_cost(cost_from_response(carrier))

    def on_event(self, event: Any) -> bool:
        """One Responses API stream event. False: an event is never hidden from the app."""
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
                self._take_usage(response, usage)
                info = response_info(response)
                self._reasons = list(info.finish_reasons)
                self._tier = info.service_tier
                self._tools = info.tool_calls
        elif self._text is not None and getattr(event, "type", None) == "response.output_text.delta":
            delta = getattr(event, "delta", None)
            if isinstance(delta, str):
                self._text.append(delta)
        return False

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
            self._settle_last()
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
            self._tools,
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
            output, self.streaming, self._strip, self._provider_cost, self._preview,
        )

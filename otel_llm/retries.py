"""The HTTP attempts under one logical call: the SDK's own retries, made visible on the call's span.

The openai SDK retries by itself (`max_retries`, honouring `retry-after`), so one `create()` may send
several requests and sleep between them. We hook the SDK's retry loop rather than the HTTP client:

- `_sleep_for_retry` runs once per failed attempt that the SDK will retry (seen in openai 1.109, 2.x and
  3.x; 1.55 and older have `_retry_request`, which sleeps and then calls `_request` for the next one). It runs inside
  the SDK's `except` block, so the response it is given, or the transport error in `sys.exc_info()`,
  says what failed; timing the wrapped call gives the real wait, whatever the SDK decided.
- `_process_response` runs once when the last attempt succeeded: it carries the status code.
- The last attempt, when it failed, is the exception the call ends with (`record.Recorder`).

Why not wrap the HTTP client's `send`? The app may pass its own `http_client` (httpx or httpx2, any
subclass), so we would have to patch httpx's classes for the whole process and run a wrapper on every
request anyone makes. These methods (under one of the two sets of names) exist in every SDK version we
support, take keywords, and cost nothing until a retry happens; on success we pay one plain function call.

Events, not child spans: an attempt that failed in a few milliseconds has no duration worth a span;
what matters is what the server said and how long we then waited, which fit in attributes. An event
costs a fraction of a span, is only built when a retry happens, and one span per call keeps traces,
span metrics and sampling counting calls, not attempts. (An HTTP instrumentation, if the app runs
one, still shows each request as its own span under ours.) Each failed attempt leaves one
`otel_llm.http.attempt_failed` event, timestamped when it failed, with `http.request.resend_count`
(0 for the first attempt), `http.response.status_code`, `error.type` (the SDK exception it would have
raised), `otel_llm.http.status_class`, `otel_llm.http.retry_after_seconds` (what the server asked for)
and, when the SDK retried, `otel_llm.http.backoff_seconds` (the measured wait).
"""

from __future__ import annotations

import email.utils
import functools
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from . import semconv as sc
from .faults import report_fault
from .provider_cost import cost_from_headers

if TYPE_CHECKING:
    from .call import Call
    from .extract import Endpoint

__all__ = [
    "ATTEMPT_FAILED", "Failure", "attempt_key", "event_attributes", "final_failure", "hooks", "record_retry",
    "replacements", "retry_after", "status_class",
]

ATTEMPT_FAILED: Final = sc.HTTP_ATTEMPT_FAILED
RETRY_AFTER_SECONDS: Final = sc.RETRY_AFTER_SECONDS
EXCEPTION_TYPE: Final = sc.EXCEPTION_TYPE

_SDK: Final = "openai._base_client"
# The SDK's exception for a status (`OpenAI._make_status_error`): an attempt's error.type is what the
# app would have caught had that attempt been the last.
_STATUS_ERRORS: Final = {
    400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
    409: "ConflictError", 422: "UnprocessableEntityError", 429: "RateLimitError",
}
_OWN_CLASS: Final = frozenset((401, 403, 429))


class Failure(NamedTuple):
    """What one failed attempt looked like to the SDK."""

    status: int | None  # None: no response (connection error or timeout)
    error: str  # the SDK's exception class name
    exception: str | None  # the transport's exception class, when there was no response
    retry_after: float | None  # seconds the server asked for


def status_class(status: int | None) -> str:
    """2xx, 401, 403, 429, 4xx, 5xx, or none (no response). Auth failures stay apart from rate limits."""
    if status is None:
        return "none"
    if 200 <= status < 300:  # the success path: first
        return "2xx"
    if status in _OWN_CLASS:
        return str(status)
    return f"{status // 100}xx"


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The wait the server asked for, read as the SDK reads it: retry-after-ms, retry-after in
    seconds, or retry-after as an HTTP date. None when absent or unreadable."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) / divisor
        except ValueError:
            continue
    value = headers.get("retry-after")
    try:
        parsed = email.utils.parsedate_tz(value) if value else None
        return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else None
    except (TypeError, ValueError, OverflowError):
        return None


def _named(exc: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _failure(status: int | None, headers: Mapping[str, str] | None, transport: BaseException | None) -> Failure:
    if status is not None:
        error = _STATUS_ERRORS.get(status) or ("InternalServerError" if status >= 500 else "APIStatusError")
        return Failure(status, error, None, retry_after(headers))
    timeout = transport is not None and _named(transport, "TimeoutException")
    exception = type(transport).__name__ if transport is not None else None
    return Failure(None, "APITimeoutError" if timeout else "APIConnectionError", exception, None)


def retried_failure(response: Any) -> Failure:
    """The attempt the SDK is about to retry. Called inside its `except` block: a connection error, or
    (in old SDKs, which pass no response) the HTTPStatusError, is in `sys.exc_info()`."""
    handled = sys.exc_info()[1]
    if response is None:
        response = getattr(handled, "response", None)
    if response is not None:
        return _failure(response.status_code, response.headers, None)
    return _failure(None, None, handled)


def final_failure(exc: BaseException) -> Failure | None:
    """The last attempt, from the exception the SDK raised; None when no HTTP attempt failed (an
    argument error before any request, a cancellation, a fault while parsing)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        response = getattr(exc, "response", None)
        return Failure(status, type(exc).__name__, None, retry_after(getattr(response, "headers", None)))
    if _named(exc, "APIConnectionError"):
        cause = exc.__cause__
        return Failure(None, type(exc).__name__, type(cause).__name__ if cause is not None else None, None)
    return None


def event_attributes(failure: Failure, resend_count: int, waited: float | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        sc.HTTP_REQUEST_RESEND_COUNT: resend_count,
        sc.ERROR_TYPE: failure.error,
        sc.STATUS_CLASS: status_class(failure.status),
    }
    if failure.status is not None:
        attrs[sc.HTTP_RESPONSE_STATUS_CODE] = failure.status
    if failure.exception is not None:
        attrs[EXCEPTION_TYPE] = failure.exception
    if failure.retry_after is not None:
        attrs[RETRY_AFTER_SECONDS] = failure.retry_after
    if waited is not None:
        attrs[sc.BACKOFF_SECONDS] = waited
    return attrs


def attempt_key(where: Endpoint, model: str, key_id: str | None, status: int | None) -> tuple[tuple[str, Any], ...]:
    """The attribute set of otel_llm.http.attempts for one attempt (`key_id` when keys are a label)."""
    key: tuple[tuple[str, Any], ...] = (
        (sc.GEN_AI_PROVIDER_NAME, where.provider),
        (sc.GEN_AI_REQUEST_MODEL, model),
        (sc.SERVER_ADDRESS, where.address),
    )
    if key_id is not None:
        key += ((sc.API_KEY_FINGERPRINT, key_id),)
    if status is None:
        return key + ((sc.STATUS_CLASS, "none"),)
    return key + ((sc.STATUS_CLASS, status_class(status)), (sc.HTTP_RESPONSE_STATUS_CODE, status))


def record_retry(call: Call, failure: Failure, failed_at: int, waited: float) -> None:
    """One failed attempt that the SDK retried after waiting `waited` seconds: an event on the call's
    span, the wait in the backoff histogram, the attempt in the sums. Ignored once the call ended."""
    resend = call.note_retry(waited)
    if resend is None:
        return
    span = call.span
    if span.is_recording():
        span.add_event(ATTEMPT_FAILED, event_attributes(failure, resend, waited), timestamp=failed_at)
    t = call.telemetry
    where = call.where
    t.http_backoff.record(
        waited,
        {sc.GEN_AI_PROVIDER_NAME: where.provider, sc.GEN_AI_REQUEST_MODEL: t.ledger.models.admit(call.model),
         sc.SERVER_ADDRESS: where.address},
        context=call.context,
    )
    key = attempt_key(where, call.model, call.key_id if t.metric_key else None, failure.status)
    with t.ledger.lock:
        t.http_attempts.add(key, 1)


# --- the hooks ---------------------------------------------------------------------------------
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
_fault = report_fault


def _record(call: Call, failure: Failure | None, failed_at: int, started: float) -> None:
    try:
        if failure is not None:
            record_retry(call, failure, failed_at, time.perf_counter() - started)
    except Exception as exc:
        _fault("retry record", exc)


def _failure_now(response: Any) -> Failure | None:
    try:
        return retried_failure(response)
    except Exception as exc:
        _fault("retry hook", exc)
        return None


def _sleep_hook(current: ContextVar[Call | None]) -> Wrapper:
    def sleep_for_retry(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = current.get()
        if call is None:
            return wrapped(*args, **kwargs)
        failure = _failure_now(kwargs.get("response"))
        failed_at, started = time.time_ns(), time.perf_counter()
        try:
            return wrapped(*args, **kwargs)
        finally:  # interrupted or not, the attempt failed and we waited this long
            _record(call, failure, failed_at, started)

    return sleep_for_retry


def _async_sleep_hook(current: ContextVar[Call | None]) -> Wrapper:
    async def sleep_for_retry(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = current.get()
        if call is None:
            return await wrapped(*args, **kwargs)
        failure = _failure_now(kwargs.get("response"))
        failed_at, started = time.time_ns(), time.perf_counter()
        try:
            return await wrapped(*args, **kwargs)
        finally:
            _record(call, failure, failed_at, started)

    return sleep_for_retry


def response_hook(current: ContextVar[Call | None]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The last attempt succeeded: keep its status. Sync and async alike (the coroutine is returned).

    This one runs on every successful call, so it replaces the method with a plain function instead
    of a wrapt wrapper: half the cost (wrapt builds a bound wrapper on each attribute lookup)."""

    def replace(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def _process_response(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = current.get()
            if call is not None:
                try:
                    response = kwargs["response"]
                    call.set_http_status(response.status_code)
                    call.report_cost(cost_from_headers(response.headers))
                except Exception as exc:
                    _fault("response hook", exc)
            return original(self, *args, **kwargs)

        return _process_response

    return replace


# In openai 1.55 and older, `_retry_request` slept and then called `_request` for the next attempt, so the
# wait ends when `_request` starts again; the failure waits in `_pending` until then.
_pending: ContextVar[tuple[Call, Failure | None, int, float] | None] = ContextVar("otel_llm_retry", default=None)


def _legacy_retry_hook(current: ContextVar[Call | None]) -> Wrapper:
    def retry_request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = current.get()
        if call is not None:
            _pending.set((call, _failure_now(None), time.time_ns(), time.perf_counter()))
        return wrapped(*args, **kwargs)

    return retry_request


def _legacy_request_hook(current: ContextVar[Call | None]) -> Wrapper:
    def request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        pending = _pending.get()
        if pending is not None:
            _pending.set(None)
            if pending[0] is current.get():  # not one left over by a call that was interrupted
                _record(*pending)
        return wrapped(*args, **kwargs)

    return request


def _clients() -> list[tuple[type, bool]]:
    import importlib

    try:
        module = importlib.import_module(_SDK)
    except ImportError:
        return []
    found = [(getattr(module, name, None), is_async) for name, is_async in (("SyncAPIClient", False), ("AsyncAPIClient", True))]
    return [(owner, is_async) for owner, is_async in found if isinstance(owner, type)]


def hooks(current: ContextVar[Call | None]) -> list[tuple[type, str, Wrapper]]:
    """(class, method, wrapt wrapper) for the retry path of the installed SDK."""
    found: list[tuple[type, str, Wrapper]] = []
    for owner, is_async in _clients():
        methods = vars(owner)
        if "_sleep_for_retry" in methods:
            found.append((owner, "_sleep_for_retry", (_async_sleep_hook if is_async else _sleep_hook)(current)))
        elif "_retry_request" in methods and "_request" in methods:
            found.append((owner, "_retry_request", _legacy_retry_hook(current)))
            found.append((owner, "_request", _legacy_request_hook(current)))
    return found


def replacements(current: ContextVar[Call | None]) -> list[tuple[type, str, Callable[[Callable[..., Any]], Callable[..., Any]]]]:
    """(class, method, original -> replacement) for the success path: plain functions, see `response_hook`."""
    make = response_hook(current)
    return [(owner, "_process_response", make) for owner, _ in _clients() if "_process_response" in vars(owner)]

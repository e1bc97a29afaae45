"""Failures on purpose: bad keys, rate limits, server errors and dropped connections.

A /v1 request is checked in this order; the first failure wins:

1. No `Authorization: Bearer` key -> 401; a key starting with `sk-invalid` -> 401 `invalid_api_key`
   (always, whatever else is asked).
2. The JSON body (400) and the model (404), by the app.
3. The key's `rpm_limit` / `tpm_limit` over a 60 s window -> a real 429 (`RateLimiter`).
4. `x-simulator-fail: <fault>` -> that fault on this request.
5. `x-simulator-fail-sequence: <fault>,<fault>,...` -> attempt *i* of a logical call gets item *i*;
   past the end it succeeds. The attempt number is counted per `x-simulator-request-id` when that
   header is sent (any client), else taken from the openai SDK's own `x-stainless-retry-count`
   (so SDK retries walk the sequence with no extra header), else 0.
6. A seeded random draw against `rate_401`, `rate_429`, `rate_500`, `rate_503`.

Steps 2-6 apply to the generation endpoints; GET /v1/models checks only the key.

A fault is an HTTP status (`401`, `429`, `500`, `503`, any 4xx/5xx), `drop` (close the connection:
before any response, or for a stream after its first few events), or `ok`/`200` (succeed; useful
inside a sequence). Every error carries OpenAI's JSON body; every authenticated reply carries
`x-ratelimit-*` headers, and a 429 also `retry-after` and `retry-after-ms`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from .config import SimulatorConfig
from .replies import ApiError

__all__ = [
    "DROP",
    "HEADER_FAIL",
    "HEADER_FAIL_SEQUENCE",
    "HEADER_REQUEST_ID",
    "FaultInjector",
    "RateLimiter",
    "api_key",
]

HEADER_FAIL: Final = "x-simulator-fail"
HEADER_FAIL_SEQUENCE: Final = "x-simulator-fail-sequence"
HEADER_REQUEST_ID: Final = "x-simulator-request-id"
_HEADER_SDK_RETRY_COUNT: Final = "x-stainless-retry-count"
DROP: Final = 0  # the fault "drop": not an HTTP status, the connection is closed instead
_WINDOW: Final = 60.0
_NOMINAL_LIMIT: Final = 1_000_000  # what x-ratelimit-limit-* report when no limit is configured

_MESSAGES: Final = {
    401: (
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: ("You are not allowed to access this resource.", "invalid_request_error", None),
    429: (
        "Rate limit reached for {model} in organization org-simulator on requests per min (RPM).",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def api_key(headers: Mapping[str, str]) -> str | None:
    """The bearer key of a request, or None."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


class FaultInjector:
    """Picks the fault, if any, for each request; thread-safe and reproducible given `config.seed`."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        self._attempts: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def check_auth(self, headers: Mapping[str, str]) -> str:
        """The request's API key, or a 401 exactly as OpenAI words it."""
        key = api_key(headers)
        if key is None:
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if key.startswith("sk-invalid"):
            raise ApiError(
                401,
                f"Incorrect API key provided: {_redact(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return key

    def clear(self) -> None:
        with self._lock:
            self._attempts.clear()

    def pick(self, headers: Mapping[str, str]) -> int | None:
        """The requested or drawn fault: an HTTP status, DROP, or None for success."""
        if HEADER_FAIL in headers:
            return parse_fault(headers[HEADER_FAIL])
        if HEADER_FAIL_SEQUENCE in headers:
            sequence = [parse_fault(item) for item in headers[HEADER_FAIL_SEQUENCE].split(",")]
            attempt = self._attempt(headers)
            return sequence[attempt] if attempt < len(sequence) else None
        return self._draw()

    def error(self, status: int, model: str) -> ApiError:
        """The error reply for an injected fault, with the headers a client backs off by."""
        message, type_, code = _MESSAGES.get(
            status,
            (
                f"Simulated error {status}.",
                "server_error" if status >= 500 else "invalid_request_error",
                None,
            ),
        )
        if status == 429:
            return ApiError(429, message.format(model=model), type_, code, headers=self.retry_headers())
        headers = {}
        if status >= 500 and self._config.retry_after_5xx is not None:
            headers = _retry_after(self._config.retry_after_5xx)
        return ApiError(status, message, type_, code, headers=headers)

    def retry_headers(self) -> dict[str, str]:
        return _retry_after(self._config.retry_after)

    def _attempt(self, headers: Mapping[str, str]) -> int:
        request_id = headers.get(HEADER_REQUEST_ID)
        if request_id is None:
            retry_count = headers.get(_HEADER_SDK_RETRY_COUNT, "0")
            return int(retry_count) if retry_count.isdigit() else 0
        with self._lock:
            attempt = self._attempts.pop(request_id, 0)
            self._attempts[request_id] = attempt + 1
            if len(self._attempts) > 100_000:
                self._attempts.popitem(last=False)
        return attempt

    def _draw(self) -> int | None:
        config = self._config
        with self._lock:
            draw = self._rng.random()
        for status, rate in (
            (401, config.rate_401),
            (429, config.rate_429),
            (500, config.rate_500),
            (503, config.rate_503),
        ):
            if draw < rate:
                return status
            draw -= rate
        return None


class RateLimiter:
    """Per-key request and token limits over fixed 60 s windows, reported in x-ratelimit-* headers.

    Like OpenAI's, the token limit rejects a request once the window's tokens are spent; the tokens
    of a reply are only known after it is generated, so they are added by `consume`.
    """

    def __init__(self, rpm: int, tpm: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rpm = rpm
        self._tpm = tpm
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, model: str) -> None:
        """Count one request against the key, or raise the 429 that a spent window gets."""
        with self._lock:
            window = self._window(key)
            over = self._over(window)
            if over is None:
                window.requests += 1
                return
            reset = window.reset(self._clock())
            headers = self._headers(window, reset) | _retry_after(reset)
        raise ApiError(429, _limit_message(over, model, reset), over, "rate_limit_exceeded", headers=headers)

    def consume(self, key: str, tokens: int) -> None:
        with self._lock:
            self._window(key).tokens += tokens

    def headers(self, key: str) -> dict[str, str]:
        """The x-ratelimit-* headers of the key's current window."""
        with self._lock:
            window = self._window(key)
            return self._headers(window, window.reset(self._clock()))

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()

    def _window(self, key: str) -> _Window:
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window.start >= _WINDOW:
            window = self._windows[key] = _Window(now)
        return window

    def _over(self, window: _Window) -> str | None:
        if self._rpm and window.requests >= self._rpm:
            return "requests"
        if self._tpm and window.tokens >= self._tpm:
            return "tokens"
        return None

    def _headers(self, window: _Window, reset: float) -> dict[str, str]:
        rpm = self._rpm or _NOMINAL_LIMIT
        tpm = self._tpm or _NOMINAL_LIMIT * 100
        return {
            "x-ratelimit-limit-requests": str(rpm),
            "x-ratelimit-remaining-requests": str(max(rpm - window.requests, 0)),
            "x-ratelimit-reset-requests": _duration(reset),
            "x-ratelimit-limit-tokens": str(tpm),
            "x-ratelimit-remaining-tokens": str(max(tpm - window.tokens, 0)),
            "x-ratelimit-reset-tokens": _duration(reset),
        }


@dataclass
class _Window:
    start: float
    requests: int = 0
    tokens: int = 0

    def reset(self, now: float) -> float:
        return max(self.start + _WINDOW - now, 0.0)


def parse_fault(text: str) -> int | None:
    """'429' -> 429, 'drop' -> DROP, 'ok' / '200' / '' -> None; anything else is the caller's 400."""
    value = text.strip().lower()
    if value in ("", "ok", "200"):
        return None
    if value == "drop":
        return DROP
    if value.isdigit() and 400 <= int(value) <= 599:
        return int(value)
    raise ApiError(400, f"Invalid simulator fault {text!r}: use a 4xx/5xx status, 'drop' or 'ok'.")


def _retry_after(seconds: float) -> dict[str, str]:
    # The SDK prefers retry-after-ms, which keeps sub-second waits exact; retry-after must be an
    # integer by RFC 9110, so it is rounded up.
    return {"retry-after": str(max(math.ceil(seconds), 0)), "retry-after-ms": str(round(seconds * 1000))}


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms" if seconds < 1 else f"{seconds:.3f}s"


def _limit_message(kind: str, model: str, reset: float) -> str:
    unit = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
    return (
        f"Rate limit reached for {model} in organization org-simulator on {unit}. "
        f"Please try again in {_duration(reset)}."
    )


def _redact(key: str) -> str:
    return f"{key[:3]}{'*' * max(len(key) - 7, 0)}{key[-4:]}"

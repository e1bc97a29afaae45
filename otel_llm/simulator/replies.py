"""What a handler hands the HTTP layer: a JSON reply, an SSE stream, a dropped connection, or an
`ApiError` in OpenAI's error shape. Handlers build these without touching sockets, so they are
testable without a server and the server owns all I/O and sleeping."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiError",
    "DropReply",
    "JsonReply",
    "Reply",
    "StreamReply",
    "sse_data",
    "sse_done",
    "sse_event",
]


class ApiError(Exception):
    """An error reply with OpenAI's body: {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def reply(self, delay: float = 0.0) -> JsonReply:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JsonReply(self.status, body, self.headers, delay)


@dataclass(frozen=True)
class JsonReply:
    """A whole JSON body, sent after `delay` seconds."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class StreamReply:
    """A 200 text/event-stream: headers at once, then each (delay, payload) event.

    With `drop_after` set, the connection is cut after that many events, without the terminating
    chunk, as a crashed upstream would.
    """

    events: Iterator[tuple[float, bytes]]
    headers: Mapping[str, str] = field(default_factory=dict)
    drop_after: int | None = None


@dataclass(frozen=True)
class DropReply:
    """Close the connection without any response after `delay` seconds."""

    delay: float = 0.0


Reply = JsonReply | StreamReply | DropReply


def sse_data(payload: Any) -> bytes:
    """A data-only event, as chat and legacy completions streams use."""
    return b"data: " + _dumps(payload) + b"\n\n"


def sse_event(name: str, payload: Any) -> bytes:
    """A named event, as the Responses API streams use."""
    return b"event: " + name.encode() + b"\ndata: " + _dumps(payload) + b"\n\n"


def sse_done() -> bytes:
    return b"data: [DONE]\n\n"


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()

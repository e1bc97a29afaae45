"""Sync and async stream proxies that feed a `Call` and end it exactly once, on every path.

The proxy is a `wrapt.ObjectProxy`, so `isinstance(stream, openai.Stream)` and every attribute of
the SDK's stream still work. It ends the call when the stream is exhausted, raises, is closed, is
left through its context manager, or is garbage-collected without any of those. When we asked for
the usage chunk on the app's behalf, the proxy swallows that one chunk so the app sees exactly the
chunks it would have seen.
"""

from __future__ import annotations

from typing import Any

import wrapt

from .call import Call, report_fault

__all__ = ["AsyncStreamProxy", "StreamProxy", "wrap_stream"]


def _usage_only(chunk: Any) -> bool:
    return not chunk.choices and chunk.usage is not None


class _Base(wrapt.ObjectProxy):  # type: ignore[misc]
    """What both proxies share: the call, the chunk handler, and ending on garbage collection."""

    def __init__(self, wrapped: Any, call: Call, events: bool) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_events = events
        self._self_strip = call.strip_usage and not events
        self._self_broken = False

    def _self_feed(self, chunk: Any) -> bool:
        """Record a chunk; False when the app must not see it (the usage chunk we asked for)."""
        if not self._self_broken:
            try:
                if self._self_events:
                    self._self_call.on_event(chunk)
                else:
                    self._self_call.on_chunk(chunk)
            except Exception as exc:  # our fault: keep streaming untouched, stop looking at chunks
                report_fault("stream chunk", exc)
                self._self_broken = True
        if self._self_strip:
            # Decided apart from the recording above: even when that failed, the app must not see
            # a chunk it never asked for.
            try:
                return not _usage_only(chunk)
            except Exception:
                return True
        return True

    def __del__(self) -> None:
        # Dropped without being exhausted or closed: end the span with what arrived.
        call = getattr(self, "_self_call", None)
        if call is not None:
            call.end_stream()

    def __reduce_ex__(self, protocol: Any) -> Any:  # pragma: no cover - streams do not pickle anyway
        return self.__wrapped__.__reduce_ex__(protocol)


class StreamProxy(_Base):
    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        wrapped = self.__wrapped__
        while True:
            try:
                chunk = wrapped.__next__()
            except StopIteration:
                self._self_call.end_stream()
                raise
            except BaseException as exc:
                self._self_call.end_stream(exc)
                raise
            if self._self_feed(chunk):
                return chunk

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.end_stream()

    def __enter__(self) -> StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_call.end_stream(exc)


class AsyncStreamProxy(_Base):
    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        wrapped = self.__wrapped__
        while True:
            try:
                chunk = await wrapped.__anext__()
            except StopAsyncIteration:
                self._self_call.end_stream()
                raise
            except BaseException as exc:
                self._self_call.end_stream(exc)
                raise
            if self._self_feed(chunk):
                return chunk

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_call.end_stream()

    async def aclose(self) -> None:
        await self.close()

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_call.end_stream(exc)


def wrap_stream(stream: Any, call: Call, is_async: bool, events: bool) -> Any:
    """The proxy for an SDK stream; `events` for the Responses API's typed events."""
    return (AsyncStreamProxy if is_async else StreamProxy)(stream, call, events)

"""Sync and async stream proxies that feed a `Call` and end it exactly once, on every path.

The proxy is a `wrapt.ObjectProxy`, so `isinstance(stream, openai.Stream)` and every attribute of
the SDK's stream still work. It ends the call when the stream is exhausted, raises, is closed, is
left through its context manager, or is garbage-collected without any of those. When we asked for
the usage chunk on the app's behalf, the proxy swallows that one chunk so the app sees exactly the
chunks it would have seen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import wrapt

from .call import Call, is_usage_chunk
from .faults import report_fault
from .ledger import defer
from .sdk import chunk_source

__all__ = ["AsyncStreamProxy", "StreamProxy", "wrap_stream"]


class _Base(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """What both proxies share: the call, what it reads (chunks or events), and ending on garbage collection."""

    def __init__(self, wrapped: Any, call: Call, events: bool) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_events = events
        self._self_strip = call.strips_usage and not events
        self._self_broken = False

    def _self_fault(self, exc: Exception) -> None:
        """Our fault: keep streaming untouched, stop looking at chunks."""
        report_fault("stream chunk", exc)
        self._self_broken = True

    def __del__(self) -> None:
        # Dropped without being exhausted or closed: end the span with what arrived, at the next call or
        # collection. A finaliser runs inside whatever allocation triggered the garbage collection,
        # perhaps in a thread holding the ledger's lock or the SDK's: it must take no lock (ledger.defer).
        call = getattr(self, "_self_call", None)
        if call is not None and not call.ended:  # read to its end, closed or failed: nothing left to end
            defer(call.end_stream)

    def __reduce_ex__(self, protocol: Any) -> Any:  # pragma: no cover - streams do not pickle anyway
        return self.__wrapped__.__reduce_ex__(protocol)

    def _self_source(self, is_async: bool) -> Any:
        """What a `for` / `async for` loop reads: the SDK stream's own chunk iterator (sdk.chunk_source)."""
        try:
            return chunk_source(self.__wrapped__, is_async)
        except Exception as exc:  # our fault: iterate the SDK's stream itself
            report_fault("stream source", exc)
            return self.__wrapped__

    def _self_next(self, chunk: Any) -> bool:
        """`next(stream)`'s step: record one chunk; True to hide it (the usage chunk we asked for)."""
        if not self._self_broken:
            try:
                call = self._self_call
                usage_only = call.on_event(chunk) if self._self_events else call.on_chunk(chunk)
                return self._self_strip and usage_only
            except Exception as exc:
                self._self_fault(exc)
        return self._self_strip and is_usage_chunk(chunk)


class StreamProxy(_Base):
    def __iter__(self) -> Iterator[Any]:
        # The loop lives in `Call.relay`; it holds this proxy (through `_self_fault`), so a stream iterated
        # without being kept (`for c in client...create(stream=True)`) lives until the loop ends.
        return self._self_call.relay(self._self_source(False), self._self_events, self._self_strip,
                                     self._self_fault, not self._self_broken)

    def __next__(self) -> Any:
        # `next(stream)`; `for` loops take `__iter__`'s generator.
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
            if self._self_next(chunk):
                continue
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
    def __aiter__(self) -> AsyncIterator[Any]:
        return self._self_call.arelay(self._self_source(True), self._self_events, self._self_strip,
                                      self._self_fault, not self._self_broken)

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
            if self._self_next(chunk):
                continue
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

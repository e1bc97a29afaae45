"""Sync and async stream proxies that feed a `Call` and end it exactly once, on every path.

The proxy is a `wrapt.ObjectProxy`, so `isinstance(stream, openai.Stream)` and every attribute of
the SDK's stream still work. It ends the call when the stream is exhausted, raises, is closed, is
left through its context manager, or is garbage-collected without any of those. When we asked for
the usage chunk on the app's behalf, the proxy swallows that one chunk so the app sees exactly the
chunks it would have seen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import wrapt

from .call import Call
from .faults import report_fault
from .ledger import defer
from .sdk import chunk_source

__all__ = ["AsyncStreamProxy", "StreamProxy", "wrap_stream"]


def _usage_only(chunk: Any) -> bool:
    return not chunk.choices and chunk.usage is not None


class _Base(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """What both proxies share: the call, the chunk handler, and ending on garbage collection."""

    def __init__(self, wrapped: Any, call: Call, events: bool) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_on = call.on_event if events else call.on_chunk
        self._self_strip = call.strips_usage and not events
        self._self_broken = False

    def _self_fault(self, exc: Exception) -> None:
        """Our fault: keep streaming untouched, stop looking at chunks."""
        report_fault("stream chunk", exc)
        self._self_broken = True

    @staticmethod
    def _self_hidden(chunk: Any) -> bool:
        """The usage chunk we asked for: the app never sees it. Decided apart from the recording, so
        a fault there never shows the app a chunk it did not ask for."""
        try:
            return _usage_only(chunk)
        except Exception:
            return False

    def __del__(self) -> None:
        # Dropped without being exhausted or closed: end the span with what arrived, at the next call or
        # collection. A finaliser runs inside whatever allocation triggered the garbage collection,
        # perhaps in a thread holding the ledger's lock or the SDK's: it must take no lock (ledger.defer).
        call = getattr(self, "_self_call", None)
        if call is not None and not call.ended:  # read to its end, closed or failed: nothing left to end
            defer(call.end_stream)

    def __reduce_ex__(self, protocol: Any) -> Any:  # pragma: no cover - streams do not pickle anyway
        return self.__wrapped__.__reduce_ex__(protocol)

    def _self_parts(self, is_async: bool) -> tuple[Any, Call, Callable[[Any], None] | None, bool]:
        """What a `for` / `async for` loop's generator needs: the chunks' source (sdk.chunk_source), the
        call, the chunk handler (None once broken) and whether to hide the usage chunk."""
        try:
            source = chunk_source(self.__wrapped__, is_async)
        except Exception as exc:  # our fault: iterate the SDK's stream itself
            report_fault("stream source", exc)
            source = self.__wrapped__
        return source, self._self_call, None if self._self_broken else self._self_on, self._self_strip


def _chunks(proxy: StreamProxy, wrapped: Any, call: Call, on: Callable[[Any], None] | None, strip: bool) -> Iterator[Any]:
    """`for chunk in stream`: the per-chunk hot path. A generator over the SDK's own iterator costs
    less per chunk than a `__next__` method (no Python call per chunk, state in locals), and it takes
    the place of the SDK stream's pass-through generator (sdk.chunk_source) rather than adding a layer. It holds
    `proxy`, so a stream iterated without being kept (`for c in client...create(stream=True)`) lives
    until the loop ends; when the app leaves the loop early (GeneratorExit), the proxy's close, exit
    or garbage collection ends the call, as after `next()`."""
    try:
        for chunk in wrapped:
            if on is not None:
                try:
                    on(chunk)
                except Exception as exc:
                    proxy._self_fault(exc)
                    on = None
            if strip and _Base._self_hidden(chunk):
                continue
            yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        call.end_stream(exc)
        raise
    call.end_stream()


async def _achunks(proxy: AsyncStreamProxy, wrapped: Any, call: Call, on: Callable[[Any], None] | None,
                   strip: bool) -> AsyncIterator[Any]:
    """`async for chunk in stream`: as `_chunks`."""
    try:
        async for chunk in wrapped:
            if on is not None:
                try:
                    on(chunk)
                except Exception as exc:
                    proxy._self_fault(exc)
                    on = None
            if strip and _Base._self_hidden(chunk):
                continue
            yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        call.end_stream(exc)
        raise
    call.end_stream()


class StreamProxy(_Base):
    def __iter__(self) -> Iterator[Any]:
        return _chunks(self, *self._self_parts(False))

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
            if not self._self_broken:
                try:
                    self._self_on(chunk)
                except Exception as exc:
                    self._self_fault(exc)
            if self._self_strip and self._self_hidden(chunk):
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
        return _achunks(self, *self._self_parts(True))

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
            if not self._self_broken:
                try:
                    self._self_on(chunk)
                except Exception as exc:
                    self._self_fault(exc)
            if self._self_strip and self._self_hidden(chunk):
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

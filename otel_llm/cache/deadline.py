"""One deadline for a whole backend operation (connect, send, every read), however the server misbehaves.

A socket timeout bounds each read, not the reply: a Redis that trickles one byte every 30 ms never
trips a 50 ms socket timeout and holds the app for seconds. So a blocking backend's `get` / `set`
runs on a worker thread and the caller waits at most the deadline; past it the caller goes on (to
the API), the backend is told to `abort` (Redis: its sockets are shut, which frees the worker), and
the operation counts as a failure. Workers are few, made lazily, and made again after a fork.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..call import report_fault

__all__ = ["DeadlineExceeded", "DeadlineRunner"]

_T = TypeVar("_T")
MAX_WORKERS = 32  # concurrent backend operations; more wait in line, within their own deadline
IDLE_EXIT = 30.0  # seconds a worker waits for work before it ends


class DeadlineExceeded(TimeoutError):
    """The backend did not finish within the deadline; the caller went on without it."""


class DeadlineRunner:
    """Runs blocking calls on a few daemon threads, waiting for each at most `timeout` seconds."""

    def __init__(self, timeout: float, abort: Callable[[], None] | None = None) -> None:
        self.timeout = timeout
        self._abort = abort
        self._lock = threading.Lock()
        self._pool: _Pool | None = None
        self._pid = 0

    def run(self, func: Callable[..., _T], *args: Any) -> _T:
        """`func(*args)`'s result, or DeadlineExceeded after `timeout` seconds (its other errors as raised)."""
        future: concurrent.futures.Future[_T] = self._workers().submit(func, args)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()  # still queued: never runs
            if self._abort is not None:  # a worker blocked on a socket is released; the caller never waits for it
                threading.Thread(target=_quietly, args=(self._abort,), name="otel_llm-cache-abort", daemon=True).start()
            raise DeadlineExceeded(f"no answer within {self.timeout * 1000:.0f} ms") from None

    def _workers(self) -> _Pool:
        pid = os.getpid()
        pool = self._pool
        if pool is not None and self._pid == pid:
            return pool
        with self._lock:  # first use, or the first in a forked child (the parent's threads are not here)
            if self._pool is None or self._pid != pid:
                self._pool = _Pool(MAX_WORKERS)
                self._pid = pid
            return self._pool


def _quietly(func: Callable[[], None]) -> None:
    try:
        func()
    except Exception as exc:  # the backend is being given up on: its failure to stop changes nothing
        report_fault("response cache abort", exc)


class _Pool:
    """Daemon worker threads made on demand, ending when idle: one stuck on a dead socket never holds
    up the app's exit (a ThreadPoolExecutor's workers are joined at exit)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._queue: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]]] = (
            queue.SimpleQueue())
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, func: Callable[..., _T], args: tuple[Any, ...]) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        self._queue.put((future, func, args))
        with self._lock:
            if self._idle == 0 and self._threads < self._size:
                self._threads += 1
                threading.Thread(target=self._work, name="otel_llm-cache", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                future, func, args = self._queue.get(timeout=IDLE_EXIT)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if not self._queue.empty():
                        continue  # raced with a submit that counted on this thread
                    self._threads -= 1
                return
            with self._lock:
                self._idle -= 1
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(func(*args))
            except BaseException as exc:  # handed to the waiter (or dropped if it left): never escapes
                future.set_exception(exc)

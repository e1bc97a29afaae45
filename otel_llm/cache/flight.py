"""Single-flight: concurrent identical misses in one process make one API call, not one each.

The first cacheable call for a key leads: it looks the key up and, on a miss, calls the API. Calls
for the same key that arrive meanwhile follow: they wait for the leader to land, then are served
the entry it made (a hit: their own object, rebuilt from the same bytes). A follower waits for the
leader's call and nothing else; if the leader stored nothing (it failed, was cancelled, got an
answer that is not stored, or found the entry in the backend), each follower goes its own way, a
normal lookup and then the API, and never sees the leader's exception. Nor does a follower wait
longer than its own request's timeout: then it goes its own way too. The key carries the tenant,
so a follower is only ever served an answer it would have been served from the cache.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["Flight", "Flights", "in_event_loop_thread", "patience"]


class Flight:
    """One miss in flight: its entry once the leader lands (None if the leader stored nothing)."""

    __slots__ = ("_async", "_done", "_lock", "entry", "waiting")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._async: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[bytes | None]]] = []
        self.entry: bytes | None = None
        self.waiting = 0  # followers waiting now (for tests and debugging)

    def wait(self, patience: float | None) -> bytes | None:
        """Block until the leader lands, at most `patience` seconds (a thread's follower)."""
        with self._lock:
            self.waiting += 1
        try:
            landed = self._done.wait(patience)
        finally:
            with self._lock:
                self.waiting -= 1
        return self.entry if landed else None

    async def await_landing(self, patience: float | None) -> bytes | None:
        """Wait until the leader lands, at most `patience` seconds, without blocking the event loop
        (an asyncio task's follower)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.create_future()
        with self._lock:
            if self._done.is_set():
                return self.entry
            self._async.append((loop, future))
            self.waiting += 1
        try:  # a cancelled follower stops waiting; the leader does not notice
            return await asyncio.wait_for(future, patience)
        except asyncio.TimeoutError:
            return None
        finally:
            with self._lock:
                self.waiting -= 1

    def land(self, entry: bytes | None) -> None:
        with self._lock:
            self.entry = entry
            self._done.set()
            waiters, self._async = self._async, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future, entry)
            except RuntimeError:
                pass  # that loop is closed: nobody is waiting there any more


def _resolve(future: asyncio.Future[bytes | None], entry: bytes | None) -> None:
    if not future.done():
        future.set_result(entry)


class Flights:
    """The misses in flight in this process, by cache key: at most one per call under way."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, Flight] = {}

    def join(self, key: str) -> tuple[Flight, bool]:
        """The flight for `key` and whether this call leads it (True: it must `land` it, always)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def land(self, key: str, flight: Flight, entry: bytes | None) -> None:
        """The leader is done: later calls for `key` start afresh; the followers get `entry`."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.land(entry)

    def abandon(self, key: str, flight: Flight) -> None:
        """After a fault in `land`: forget the flight and release its followers empty-handed."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        Flight.land(flight, None)

    def waiting(self) -> int:
        """Followers waiting now, over all flights (for tests and debugging)."""
        with self._lock:
            return sum(f.waiting for f in self._flights.values())

    def __len__(self) -> int:
        return len(self._flights)


def patience(timeout: object) -> float | None:
    """How long a follower waits for its leader: no longer than its own request would wait for the
    API (a number of seconds, or an httpx Timeout's read timeout); None: as long as the leader takes."""
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return max(0.0, float(timeout))
    read = getattr(timeout, "read", None)
    return max(0.0, float(read)) if isinstance(read, (int, float)) and not isinstance(read, bool) else None


def in_event_loop_thread() -> bool:
    """Whether an asyncio loop runs on this thread: a sync call here must never block waiting for a
    task, and an async call elsewhere (trio) cannot wait on an asyncio future."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


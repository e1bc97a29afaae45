"""The in-process backend: an LRU dict bounded by entry count and by bytes, with per-entry expiry."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Thread-safe; every operation is O(1) under one lock and never does I/O."""

    blocking = False  # async callers may call it inline

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.nbytes = 0  # keys + values held now

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[0] <= self._clock():
                self._drop(key)
                return None
            self._data.move_to_end(key)
            return item[1]

    def set(self, key: str, value: bytes, ttl: float) -> None:
        size = len(key) + len(value)
        with self._lock:
            if key in self._data:
                self._drop(key)
            if size > self.max_bytes:
                return  # would evict everything else and still not fit
            self._data[key] = (self._clock() + ttl, value)
            self.nbytes += size
            while len(self._data) > self.max_entries or self.nbytes > self.max_bytes:
                self._drop(next(iter(self._data)))  # least recently used first

    def close(self) -> None:
        with self._lock:
            self._data.clear()
            self.nbytes = 0

    def _drop(self, key: str) -> None:
        _, value = self._data.pop(key)
        self.nbytes -= len(key) + len(value)

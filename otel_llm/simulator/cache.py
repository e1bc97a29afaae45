"""Prompt-prefix caching modelled on OpenAI's automatic prompt caching.

OpenAI caches prompts of at least 1,024 tokens; a later prompt that starts with a cached prefix
reports that prefix as `cached_tokens`, rounded down to 1,024 + k*128 tokens. Here both numbers are
configurable, blocks are keyed by a hash of the whole prefix (so only exact prefixes match), and
entries expire after a TTL and are evicted oldest-first past a capacity.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

__all__ = ["PromptCache"]


class PromptCache:
    """Thread-safe store of prompt-prefix blocks, one namespace per model."""

    def __init__(
        self,
        min_tokens: int,
        increment: int,
        ttl: float,
        capacity: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._min_tokens = min_tokens
        self._increment = increment
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._expiry: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def lookup_and_store(self, namespace: str, pieces: Sequence[str]) -> int:
        """Return how many leading tokens were already cached, then cache this prompt's blocks."""
        keys = self._block_keys(namespace, pieces)
        now = self._clock()
        with self._lock:
            cached = 0
            for length, key in keys:
                expiry = self._expiry.get(key)
                if expiry is not None and expiry > now:
                    cached = length
            for _, key in keys:
                # Re-inserting moves the key to the end, so eviction drops the least recently used.
                self._expiry.pop(key, None)
                self._expiry[key] = now + self._ttl
            while len(self._expiry) > self._capacity:
                self._expiry.popitem(last=False)
        return cached

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()

    def _block_keys(self, namespace: str, pieces: Sequence[str]) -> list[tuple[int, bytes]]:
        digest = hashlib.sha256(namespace.encode())
        keys: list[tuple[int, bytes]] = []
        next_boundary = self._min_tokens
        for length, piece in enumerate(pieces, start=1):
            # A separator keeps ("ab", "c") and ("a", "bc") apart.
            digest.update(piece.encode() + b"\x00")
            if length == next_boundary:
                keys.append((length, digest.copy().digest()))
                next_boundary += self._increment
        return keys

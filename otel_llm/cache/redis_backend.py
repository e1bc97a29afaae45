"""The shared backend: Redis through the `redis` package, imported only when a redis:// URL is set.

Timeouts are short and retries off: a cache that answers in more than ~50 ms is worth less than
the API call it would save, and the circuit breaker in `ResponseCache` stops a dead Redis from
costing even that on every call. The socket timeout bounds each read; the whole operation is
bounded by `ResponseCache`'s deadline, which calls `abort` to free a thread stuck on a slow server.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RedisBackend"]

DEFAULT_TIMEOUT = 0.05  # seconds, for connect and for every read


class RedisBackend:
    blocking = True  # async callers run it in a worker thread

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        import redis  # lazily: otel_llm works without the package
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # URL options (?socket_timeout=0.2) win over these defaults in redis-py's from_url.
        self._client: Any = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    def get(self, key: str) -> bytes | None:
        value = self._client.get(key)
        if value is None or isinstance(value, bytes):
            return value
        # A server that answers GET with a number, an array or a status is not a Redis we can trust.
        raise TypeError(f"Redis answered GET with a {type(value).__name__}")

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._client.set(key, value, px=max(1, int(ttl * 1000)))

    def abort(self) -> None:
        """Shut every connection, in use or not: a read blocked on a slow server fails at once."""
        self._client.connection_pool.disconnect()

    def close(self) -> None:
        self._client.close()

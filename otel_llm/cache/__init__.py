"""The opt-in exact-match response cache: what may be cached, its key, and hits as the SDK's own objects.

Off unless `OTEL_LLM_RESPONSE_CACHE` (or `instrument(response_cache=...)`) names a backend. The
instrumentor hands a cacheable call to `ResponseCache.call` / `acall`, which either returns the
rebuilt response without touching the API, or calls the SDK and stores what came back. Nothing
here may fail the app's call: a broken backend or a corrupt entry is a miss, counted as
`result=error`, and a failing backend is left alone for a while (a circuit breaker).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

from .. import sdk
from .. import semconv as sc
from ..call import Call
from ..faults import report_fault

if TYPE_CHECKING:
    from ..ledger import Sum
    from ..settings import Settings

__all__ = ["CACHED_OPERATIONS", "Backend", "ResponseCache", "cache_key", "cacheable", "open_cache"]

_log = logging.getLogger("otel_llm")

KEY_PREFIX: Final = "otel_llm:rc:v1:"
_FORMAT: Final = 1  # envelope version: entries of another version are misses
# Per-call transport arguments: they change how the request travels, not what it asks.
_TRANSPORT_ARGS: Final = frozenset({"timeout", "extra_headers"})
CACHED_OPERATIONS: Final = frozenset({sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_EMBEDDINGS})
# Responses API tools the app itself executes; any other tool (web search, file search, code
# interpreter, MCP, ...) acts at the provider, so its answer depends on the world, not the prompt.
_APP_TOOLS: Final = frozenset({"function", "custom"})
BREAKER_INITIAL: Final = 2.0  # seconds the backend is left alone after a failure, doubling ...
BREAKER_MAX: Final = 60.0  # ... up to this

HIT: Final = "hit"
MISS: Final = "miss"
ERROR: Final = "error"


class Backend(Protocol):
    blocking: bool  # True: async callers run it in a worker thread

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl: float) -> None: ...
    def close(self) -> None: ...


class _Uncacheable(Exception):
    """A request argument we cannot put in a key (a generator, a file): the call bypasses the cache."""


_given = sdk.given


def _canon(value: Any) -> Any:
    """A JSON-able value that is equal for requests the SDK would send identically."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value  # temperature=0 and 0.0 are one request
    if isinstance(value, Mapping):
        return {str(k): _canon(v) for k, v in value.items() if not sdk.is_sentinel(v)}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    dump = getattr(value, "model_dump", None)  # a pydantic model passed as a param
    if callable(dump):
        return _canon(dump(mode="json", exclude_unset=True))
    raise _Uncacheable(type(value).__name__)


def cacheable(settings: Settings, operation: str, method: str, events: bool, kwargs: Mapping[str, Any]) -> bool:
    """Whether a request may be answered from the cache: see the README's "Response cache" section."""
    if method != "create" or operation not in CACHED_OPERATIONS:
        return False  # .parse() is not cached: its result embeds the app's own classes
    if sdk.raw_request(kwargs):
        return False
    if kwargs.get("stream") is True and (not settings.response_cache_streams or events):
        return False
    if operation == sc.OP_EMBEDDINGS:
        return True  # no sampling
    if events:
        if kwargs.get("background") is True or _given(kwargs.get("conversation")):
            return False  # answered later, or appended to server-side state
        tools: Any = kwargs.get("tools")
        if _given(tools) and any(not isinstance(t, Mapping) or t.get("type") not in _APP_TOOLS for t in tools):
            return False
    elif _given(kwargs.get("web_search_options")):
        return False
    if settings.response_cache_nondeterministic:
        return True
    temperature = kwargs.get("temperature")
    return isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature == 0


def cache_key(operation: str, method: str, client: Any, kwargs: Mapping[str, Any]) -> str | None:
    """SHA-256 over everything that changes the answer and the tenant; None when uncacheable."""
    api_key = getattr(client, "api_key", None)
    if not isinstance(api_key, str) or not api_key or getattr(client, "_api_key_provider", None) is not None:
        return None  # no fixed key, no tenant: never risk serving one tenant's answer to another
    try:
        material = {
            "v": _FORMAT,
            "op": operation,
            "method": method,
            "base_url": str(getattr(client, "base_url", "")),
            "key": hashlib.sha256(api_key.encode("utf-8", "replace")).hexdigest(),
            "org": getattr(client, "organization", None),
            "project": getattr(client, "project", None),
            "query": _canon(getattr(client, "default_query", None) or {}),
            "kwargs": {k: _canon(v) for k, v in kwargs.items() if k not in _TRANSPORT_ARGS and _given(v)},
        }
    except _Uncacheable:
        return None
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return KEY_PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _types() -> dict[str, type]:
    """The only classes an entry may be rebuilt as (never a class named by the stored data)."""
    from openai.types import Completion, CreateEmbeddingResponse
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from openai.types.responses import Response

    return {
        c.__name__: c for c in (ChatCompletion, ChatCompletionChunk, Completion, CreateEmbeddingResponse, Response)
    }


def _dump(obj: Any) -> Any:
    # exclude_unset: the provider's JSON as received, so a rebuilt object has the same fields set.
    return obj.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _stream_complete(kwargs: Mapping[str, Any], chunks: list[Any]) -> bool:
    """Every choice finished and, if asked for, the usage chunk came: the app read to the end."""
    n = kwargs.get("n")
    wanted = n if isinstance(n, int) and n > 0 else 1
    finished = sum(1 for c in chunks for choice in (c.choices or ()) if choice.finish_reason)
    options = kwargs.get("stream_options")
    wants_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    return finished >= wanted and (not wants_usage or any(c.usage is not None for c in chunks))


class ResponseCache:
    """Policy, key, codec, breaker and counting around one backend. Built once per `instrument()`."""

    def __init__(self, backend: Backend, settings: Settings, requests: Sum, lock: Any) -> None:
        self.backend = backend
        self.settings = settings
        self.ttl = settings.response_cache_ttl
        self.max_entry_bytes = settings.response_cache_max_bytes
        self._requests = requests
        self._lock = lock  # the ledger's
        self._types = _types()
        self._open_until = 0.0  # circuit breaker: no backend calls before this monotonic time
        self._backoff = BREAKER_INITIAL
        self._failures = 0
        self.breaker_initial = BREAKER_INITIAL
        self.breaker_max = BREAKER_MAX

    # --- the two entry points (the instrumentor's wrappers) -------------------------------------
    def call(self, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             call: Call, client: Any, method: str, events: bool) -> Any:
        """The SDK's answer, from the cache or from the SDK. Only the SDK's own exceptions escape."""
        key = self._plan(call, client, method, events, kwargs)
        if key is None:
            return wrapped(*args, **kwargs)
        hit = self._lookup(key, call, client)
        if hit is not None:
            return hit
        result = wrapped(*args, **kwargs)
        entry = self._entry(key, result, call, kwargs)
        if entry is not None:
            self._put(key, entry)
        return result

    async def acall(self, wrapped: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any],
                    call: Call, client: Any, method: str, events: bool) -> Any:
        key = self._plan(call, client, method, events, kwargs)
        if key is None:
            return await wrapped(*args, **kwargs)
        hit = await self._alookup(key, call, client)
        if hit is not None:
            return hit
        result = await wrapped(*args, **kwargs)
        entry = self._entry(key, result, call, kwargs)
        if entry is not None:
            await self._aput(key, entry)
        return result

    def _lookup(self, key: str, call: Call, client: Any) -> Any:
        try:
            if not self._usable(call):
                return None
            try:
                raw = self.backend.get(key)
            except Exception as exc:
                self._backend_failed("get", exc, call)
                return None
            return self._hit_or_miss(raw, call, client)
        except Exception as exc:
            report_fault("response cache lookup", exc)
            return None

    async def _alookup(self, key: str, call: Call, client: Any) -> Any:
        try:
            if not self._usable(call):
                return None
            try:
                raw = await self._run(self.backend.get, key)
            except Exception as exc:
                self._backend_failed("get", exc, call)
                return None
            return self._hit_or_miss(raw, call, client)
        except Exception as exc:
            report_fault("response cache lookup", exc)
            return None

    async def _aput(self, key: str, entry: bytes) -> None:
        try:
            await self._run(self._put, key, entry)
        except Exception as exc:
            report_fault("response cache put", exc)

    # --- steps shared by sync and async (none of them raises) -----------------------------------
    def _plan(self, call: Call, client: Any, method: str, events: bool, kwargs: Mapping[str, Any]) -> str | None:
        try:
            if not cacheable(self.settings, call.operation, method, events, kwargs):
                return None
            return cache_key(call.operation, method, client, kwargs)
        except Exception as exc:
            report_fault("response cache key", exc)
            return None

    def _usable(self, call: Call) -> bool:
        """The breaker: while open, the lookup is skipped and counted as an error."""
        if time.monotonic() < self._open_until:
            self._count(call, ERROR)
            return False
        return True

    def _hit_or_miss(self, raw: bytes | None, call: Call, client: Any) -> Any:
        if self._failures:
            self._recovered()
        if raw is None:
            self._count(call, MISS)
            call.mark_response_cache_miss()
            return None
        try:
            result = self._rebuild(raw, client, call.streaming)
        except Exception as exc:
            self._count(call, ERROR)
            _log_once("corrupt", "otel_llm: a response cache entry could not be read (%s: %s); treated as a miss "
                      "and overwritten", type(exc).__name__, exc)
            return None
        self._count(call, HIT)
        call.mark_response_cache_hit()  # last: a fault above leaves a plain miss
        return result

    def _entry(self, key: str, result: Any, call: Call, kwargs: Mapping[str, Any]) -> bytes | None:
        """The bytes to store for a plain result; for a stream, arm the call to store at its end."""
        try:
            name = type(result).__name__
            if sdk.is_stream(result):
                call.keep_chunks(partial(self._store_stream, key, kwargs))
                return None
            if self._types.get(name) is not type(result):
                return None  # not one of ours (a gateway's surprise): never stored
            if getattr(result, "status", "completed") not in ("completed", None):
                return None  # a Responses API answer still running, failed or cut short
            return _encode(name, False, _dump(result))
        except Exception as exc:
            report_fault("response cache encode", exc)
            return None

    def _store_stream(self, key: str, kwargs: Mapping[str, Any], call: Call) -> None:
        """At the end of a stream the app read to the end: store its chunks for replay."""
        try:
            chunks = call.take_chunks()
            if not chunks or call.response_cache_hit or not _stream_complete(kwargs, chunks):
                return
            self._put(key, _encode(type(chunks[0]).__name__, True, [_dump(c) for c in chunks]))
        except Exception as exc:
            report_fault("response cache stream", exc)

    def _put(self, key: str, entry: bytes) -> None:
        """Store; never raises. A failure opens the breaker (the next lookups count as errors)."""
        if len(entry) > self.max_entry_bytes or time.monotonic() < self._open_until:
            return
        try:
            self.backend.set(key, entry, self.ttl)
        except Exception as exc:
            try:
                self._backend_failed("set", exc, None)
            except Exception as inner:
                report_fault("response cache put", inner)

    def _rebuild(self, raw: bytes, client: Any, streaming: bool) -> Any:
        envelope = json.loads(raw)
        if not isinstance(envelope, dict) or envelope.get("v") != _FORMAT:
            raise ValueError("unknown entry format")
        cls: Any = self._types[envelope["t"]]
        body = envelope["b"]
        if envelope.get("s") is not streaming:
            raise ValueError("stream entry for a plain call, or the reverse")
        if streaming:
            if not isinstance(body, list) or not all(isinstance(c, dict) for c in body):
                raise TypeError("stream entry is not a list of chunks")
            return _replay(client, cls, body)
        if not isinstance(body, dict):
            raise TypeError("entry body is not an object")
        return cls.construct(**body)  # the SDK's own lenient build, as for a live response

    # --- failures and counting ------------------------------------------------------------------
    def _backend_failed(self, op: str, exc: Exception, call: Call | None) -> None:
        if call is not None:
            self._count(call, ERROR)
        self._failures += 1
        self._open_until = time.monotonic() + self._backoff
        _log_once("backend", "otel_llm: the response cache failed (%s: %s: %s); calls go to the API uncached, "
                  "and the cache is retried after %.0f s (backing off up to %.0f s)",
                  op, type(exc).__name__, exc, self._backoff, self.breaker_max)
        self._backoff = min(self._backoff * 2, self.breaker_max)

    def _recovered(self) -> None:
        _log.info("otel_llm: the response cache answers again after %d failure(s)", self._failures)
        self._failures = 0
        self._backoff = self.breaker_initial

    def _count(self, call: Call, result: str) -> None:
        key = ((sc.GEN_AI_REQUEST_MODEL, call.model), (sc.GEN_AI_OPERATION_NAME, call.operation),
               (sc.RESPONSE_CACHE_RESULT, result))
        with self._lock:
            self._requests.add(key, 1)

    async def _run(self, func: Callable[..., Any], *args: Any) -> Any:
        if not self.backend.blocking:
            return func(*args)
        import anyio.to_thread  # the openai SDK's own dependency; works under asyncio and trio

        return await anyio.to_thread.run_sync(partial(func, *args))


def _encode(name: str, stream: bool, body: Any) -> bytes:
    return json.dumps({"v": _FORMAT, "t": name, "s": stream, "b": body}, separators=(",", ":")).encode()


def _replay(client: Any, cls: type, chunks: list[dict[str, Any]]) -> Any:
    """The SDK's own Stream (or AsyncStream) over the stored chunks, as server-sent events."""
    import openai

    http = sdk.transport(client)  # httpx2 under openai 3.x, httpx under 1.x and 2.x
    body = b"".join(b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n" for c in chunks)
    response = http.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=body + b"data: [DONE]\n\n",
        request=http.Request("POST", str(client.base_url)),
    )
    stream_cls = openai.AsyncStream if type(client).__name__.startswith("Async") else openai.Stream
    return stream_cls(cast_to=cls, response=response, client=client)


_logged: set[str] = set()


def _log_once(kind: str, message: str, *args: Any) -> None:
    if kind in _logged:
        _log.debug(message, *args)
    else:
        _logged.add(kind)
        _log.warning(message, *args)


def open_cache(settings: Settings, requests: Sum, lock: Any) -> ResponseCache | None:
    """The cache the settings name, or None (off, or a backend that cannot be built: logged)."""
    url = settings.response_cache
    if not url:
        return None
    try:
        backend: Backend
        if url.startswith("memory://"):
            from .memory import MemoryBackend

            query = parse_qs(urlsplit(url).query)
            backend = MemoryBackend(
                _int_option(query, "max_entries", settings.response_cache_max_entries),
                _int_option(query, "max_bytes", settings.response_cache_max_bytes),
            )
        else:
            from .redis_backend import RedisBackend

            backend = RedisBackend(url)
    except ImportError:
        _log.error("otel_llm: OTEL_LLM_RESPONSE_CACHE=%s needs the redis package (pip install 'otel-llm[redis]'); "
                   "the response cache is off", _redact(url))
        return None
    except Exception as exc:
        _log.error("otel_llm: cannot open the response cache %s (%s); it is off", _redact(url), exc)
        return None
    return ResponseCache(backend, settings, requests, lock)


def _int_option(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    try:
        value = int(values[-1])
        if value > 0:
            return value
    except ValueError:
        pass
    _log.warning("otel_llm: ignoring response cache option %s=%r (expected a positive whole number); using %d",
                 name, values[-1], default)
    return default


def _redact(url: str) -> str:
    """A URL fit for a log line: no password."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.password, "***", 1)
    return url

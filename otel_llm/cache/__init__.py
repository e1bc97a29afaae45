"""The opt-in exact-match response cache: what may be cached, its key, and hits as the SDK's own objects.

Off unless `OTEL_LLM_RESPONSE_CACHE` (or `instrument(response_cache=...)`) names a backend. The
instrumentor hands a cacheable call to `ResponseCache.call` / `acall`, which either returns the
rebuilt response without touching the API, or calls the SDK and stores what came back. Nothing
here may fail the app's call: a broken backend or a corrupt entry is a miss, counted as
`result=error`, and a failing backend is left alone for a while (a circuit breaker).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from .. import sdk
from .. import semconv as sc
from ..call import Call
from ..faults import report_fault
from .deadline import DeadlineRunner
from .entry import check_entry, expected_type
from .flight import Flight, Flights, in_event_loop_thread, patience
from .identity import identity

if TYPE_CHECKING:
    from ..ledger import Sum
    from ..settings import Settings

__all__ = ["CACHED_OPERATIONS", "Backend", "ResponseCache", "cache_key", "cacheable", "open_cache"]

_log = logging.getLogger("otel_llm")

KEY_PREFIX: Final = "otel_llm:rc:v1:"
_FORMAT: Final = 1  # envelope version: entries of another version are misses
# Per-call transport arguments: they change how the request travels, not what it asks. (The headers
# that identify the tenant are hashed in by `identity`.)
_TRANSPORT_ARGS: Final = frozenset({"timeout", "extra_headers"})
CACHED_OPERATIONS: Final = frozenset({sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_EMBEDDINGS})
# Responses API tools the app itself executes; any other tool (web search, file search, code
# interpreter, MCP, ...) acts at the provider, so its answer depends on the world, not the prompt.
_APP_TOOLS: Final = frozenset({"function", "custom"})
# Cache URL options whose values may be logged; any other query value may be a credential.
_PLAIN_OPTIONS: Final = frozenset({"db", "max_entries", "max_bytes", "socket_timeout", "socket_connect_timeout",
                                   "protocol", "health_check_interval"})
BREAKER_INITIAL: Final = 2.0  # seconds the backend is left alone after a failure, doubling ...
BREAKER_MAX: Final = 60.0  # ... up to this

HIT: Final = "hit"
MISS: Final = "miss"
ERROR: Final = "error"  # the backend failed, or is being left alone after a failure
INVALID: Final = "invalid"  # an entry was found but not served: unreadable, or not what this call returns


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
        if _given(tools) and (not isinstance(tools, (list, tuple))  # another iterable is the SDK's to consume
                              or any(not isinstance(t, Mapping) or t.get("type") not in _APP_TOOLS for t in tools)):
            return False
    elif _given(kwargs.get("web_search_options")):
        return False
    if settings.response_cache_nondeterministic:
        return True
    temperature = kwargs.get("temperature")
    return isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature == 0


def cache_key(operation: str, method: str, client: Any, kwargs: Mapping[str, Any]) -> str | None:
    """SHA-256 over everything that changes the answer and the tenant; None when uncacheable."""
    try:
        tenant = identity(client, kwargs.get("extra_headers"))
        if tenant is None:
            return None  # who the request speaks for is decided while it is sent: never risk a crossing
        material = {
            "v": _FORMAT,
            "op": operation,
            "method": method,
            "base_url": str(getattr(client, "base_url", "")),
            "tenant": tenant,
            "query": _canon(sdk.default_query(client)),
            "kwargs": {k: _canon(v) for k, v in kwargs.items() if k not in _TRANSPORT_ARGS and _given(v)},
        }
    except _Uncacheable:
        return None
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return KEY_PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# The only classes an entry may be rebuilt as (never a class named by the stored data).
_TYPES: Final = (("openai.types", "Completion"), ("openai.types", "CreateEmbeddingResponse"),
                 ("openai.types.chat", "ChatCompletion"), ("openai.types.chat", "ChatCompletionChunk"),
                 ("openai.types.responses", "Response"))


def _types() -> dict[str, type]:
    """`_TYPES` by name, those this SDK release has: openai before 1.66 has no Responses API, so no
    `Response` to store or rebuild (its entries, written by a newer SDK sharing the backend, are misses)."""
    found: dict[str, type] = {}
    for module, name in _TYPES:
        try:
            found[name] = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    return found


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
        # One deadline for each whole backend operation; the memory backend does no I/O and needs none.
        self._deadline = (DeadlineRunner(settings.response_cache_timeout, getattr(backend, "abort", None))
                          if backend.blocking else None)
        self._flights = Flights()  # single-flight: concurrent identical misses make one API call

    # --- the two entry points (the instrumentor's wrappers) -------------------------------------
    def call(self, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             call: Call, client: Any, method: str, events: bool) -> Any:
        """The SDK's answer, from the cache or from the SDK. Only the SDK's own exceptions escape."""
        key = self._plan(call, client, method, events, kwargs)
        if key is None:
            return wrapped(*args, **kwargs)
        flight, leads = self._board(key, call, False)
        if flight is not None and not leads:
            hit = self._follow(flight.wait(_patience(client, kwargs)), call, client, events)
            if hit is not None:
                return hit
            flight = None  # the leader left no entry: this call goes its own way
        try:
            hit = self._lookup(key, call, client, events)
            if hit is not None:
                return hit
            result = wrapped(*args, **kwargs)
            entry = self._entry(key, result, call, kwargs)
            self._land(key, flight, entry)
            flight = None
            if entry is not None:
                self._put(key, entry)
            return result
        finally:
            self._land(key, flight, None)  # the leader failed or left early: its followers go their own way

    async def acall(self, wrapped: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any],
                    call: Call, client: Any, method: str, events: bool) -> Any:
        key = self._plan(call, client, method, events, kwargs)
        if key is None:
            return await wrapped(*args, **kwargs)
        flight, leads = self._board(key, call, True)
        if flight is not None and not leads:
            hit = self._follow(await flight.await_landing(_patience(client, kwargs)), call, client, events)
            if hit is not None:
                return hit
            flight = None
        try:
            hit = await self._alookup(key, call, client, events)
            if hit is not None:
                return hit
            result = await wrapped(*args, **kwargs)
            entry = self._entry(key, result, call, kwargs)
            self._land(key, flight, entry)
            flight = None
            if entry is not None:
                await self._aput(key, entry)
            return result
        finally:
            self._land(key, flight, None)

    def _lookup(self, key: str, call: Call, client: Any, events: bool) -> Any:
        try:
            if not self._usable(call):
                return None
            try:
                raw = self._get(key)
            except Exception as exc:
                self._backend_failed("get", exc, call)
                return None
            if self._failures:
                self._recovered()
            return self._hit_or_miss(raw, call, client, events)
        except Exception as exc:
            report_fault("response cache lookup", exc)
            return None

    async def _alookup(self, key: str, call: Call, client: Any, events: bool) -> Any:
        try:
            if not self._usable(call):
                return None
            try:
                raw = await self._run(self._get, key)
            except Exception as exc:
                self._backend_failed("get", exc, call)
                return None
            if self._failures:
                self._recovered()
            return self._hit_or_miss(raw, call, client, events)
        except Exception as exc:
            report_fault("response cache lookup", exc)
            return None

    async def _aput(self, key: str, entry: bytes) -> None:
        try:
            await self._run(self._put, key, entry)
        except Exception as exc:
            report_fault("response cache put", exc)

    # --- single-flight (see flight.py) ------------------------------------------------------------
    def _board(self, key: str, call: Call, is_async: bool) -> tuple[Flight | None, bool]:
        """(the flight for `key`, whether this call leads it); (None, False): no single-flight for it."""
        try:
            if call.streaming:
                return None, False  # a stream's entry exists only once the app has read it all
            flight, leads = self._flights.join(key)
            if not leads and in_event_loop_thread() is not is_async:
                return None, False  # a sync call on a loop's thread must not block it; trio: no asyncio wait
            return flight, leads
        except Exception as exc:
            report_fault("response cache single-flight", exc)
            return None, False

    def _land(self, key: str, flight: Flight | None, entry: bytes | None) -> None:
        """Release the followers with the leader's entry (None: each goes its own way); never raises."""
        if flight is None:
            return
        try:
            self._flights.land(key, flight, entry if entry is None or len(entry) <= self.max_entry_bytes else None)
        except Exception as exc:
            report_fault("response cache single-flight", exc)
            try:
                self._flights.abandon(key, flight)  # no follower may wait for ever, no later call either
            except Exception as inner:
                report_fault("response cache single-flight", inner)

    def _follow(self, entry: bytes | None, call: Call, client: Any, events: bool) -> Any:
        """A follower's answer: the leader's entry, rebuilt for this call (a hit), or None."""
        if entry is None:
            return None
        try:
            return self._hit_or_miss(entry, call, client, events)
        except Exception as exc:
            report_fault("response cache single-flight", exc)
            return None

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

    def _hit_or_miss(self, raw: bytes | None, call: Call, client: Any, events: bool) -> Any:
        if raw is None:
            self._count(call, MISS)
            call.mark_response_cache_miss()
            return None
        try:
            expected = expected_type(call.operation, events, call.streaming)
            result = self._rebuild(raw, client, call.streaming, expected)
        except Exception as exc:
            self._count(call, INVALID)
            _log_once("corrupt", "otel_llm: a response cache entry could not be read or is not what this call "
                      "returns (%s: %s); treated as a miss and overwritten", type(exc).__name__, exc)
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
            body = _dump(result)
            check_entry(name, name, body, False)  # never store what would not be served
            return _encode(name, False, body)
        except Exception as exc:
            report_fault("response cache encode", exc)
            return None

    def _store_stream(self, key: str, kwargs: Mapping[str, Any], call: Call) -> None:
        """At the end of a stream the app read to the end: store its chunks for replay."""
        try:
            chunks = call.take_chunks()
            if not chunks or call.response_cache_hit or not _stream_complete(kwargs, chunks):
                return
            name, body = type(chunks[0]).__name__, [_dump(c) for c in chunks]
            check_entry(name, name, body, True)  # never store what would not be served
            self._put(key, _encode(name, True, body))
        except Exception as exc:
            report_fault("response cache stream", exc)

    def _put(self, key: str, entry: bytes) -> None:
        """Store; never raises. A failure opens the breaker (the next lookups count as errors)."""
        if len(entry) > self.max_entry_bytes or time.monotonic() < self._open_until:
            return
        try:
            self._set(key, entry)
        except Exception as exc:
            try:
                self._backend_failed("set", exc, None)
            except Exception as inner:
                report_fault("response cache put", inner)

    def _rebuild(self, raw: bytes, client: Any, streaming: bool, expected: str | None) -> Any:
        envelope = json.loads(raw)
        if not isinstance(envelope, dict) or envelope.get("v") != _FORMAT:
            raise ValueError("unknown entry format")
        if envelope.get("s") is not streaming:
            raise ValueError("stream entry for a plain call, or the reverse")
        body: Any = envelope.get("b")
        check_entry(expected, envelope.get("t"), body, streaming)  # the type this call returns, or a miss
        cls: Any = self._types[envelope["t"]]
        if streaming:
            return _replay(client, cls, body)
        return cls.construct(**body)  # the SDK's own lenient build, as for a live response

    # --- failures and counting ------------------------------------------------------------------
    def _backend_failed(self, op: str, exc: Exception, call: Call | None) -> None:
        if call is not None:
            self._count(call, ERROR)
        self._failures += 1
        self._open_until = time.monotonic() + self._backoff
        _log_once("backend", "otel_llm: the response cache failed (%s: %s: %s); calls go to the API uncached, "
                  "and the cache is retried after %.0f s (backing off up to %.0f s)",
                  op, type(exc).__name__, _scrub(str(exc), self.settings.response_cache), self._backoff,
                  self.breaker_max)
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

    def _get(self, key: str) -> bytes | None:
        """The backend's answer within the deadline (DeadlineExceeded past it)."""
        if self._deadline is None:
            return self.backend.get(key)
        return self._deadline.run(self.backend.get, key)

    def _set(self, key: str, entry: bytes) -> None:
        if self._deadline is None:
            self.backend.set(key, entry, self.ttl)
        else:
            self._deadline.run(self.backend.set, key, entry, self.ttl)

    async def _run(self, func: Callable[..., Any], *args: Any) -> Any:
        if not self.backend.blocking:
            return func(*args)
        import anyio.to_thread  # the openai SDK's own dependency; works under asyncio and trio

        return await anyio.to_thread.run_sync(partial(func, *args))


def _patience(client: Any, kwargs: Mapping[str, Any]) -> float | None:
    """A follower's longest wait: the request's own timeout, else the client's (never raises)."""
    try:
        own = "timeout" in kwargs and sdk.given(kwargs["timeout"])
        return patience(kwargs["timeout"] if own else getattr(client, "timeout", None))
    except Exception as exc:
        report_fault("response cache single-flight", exc)
        return None


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

            backend = RedisBackend(url, settings.response_cache_timeout)
    except ImportError:
        _log.error("otel_llm: OTEL_LLM_RESPONSE_CACHE=%s needs the redis package (pip install 'otel-llm[redis]'); "
                   "the response cache is off", _redact(url))
        return None
    except Exception as exc:
        _log.error("otel_llm: cannot open the response cache %s (%s); it is off", _redact(url), _scrub(str(exc), url))
        return None
    try:
        return ResponseCache(backend, settings, requests, lock)
    except Exception as exc:  # our own fault: the calls are still instrumented, uncached
        _log.error("otel_llm: cannot set up the response cache %s (%s: %s); it is off",
                   _redact(url), type(exc).__name__, _scrub(str(exc), url))
        return None


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
    """A cache URL fit for a log line: no user name, no password, no query value but known options."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"***@{host}" if "@" in parts.netloc else host
        query = "&".join(
            f"{name}={value if name.lower() in _PLAIN_OPTIONS else '***'}"
            for name, _, value in (item.partition("=") for item in parts.query.split("&") if item)
        )
        return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    except Exception:
        return "<a URL that cannot be parsed>"


def _scrub(text: str, url: str | None) -> str:
    """`text` (an error message) without any credential the cache URL carries."""
    if not url:
        return text
    try:
        parts = urlsplit(url)
        secrets = [parts.username, parts.password, parts.netloc.rpartition("@")[0]]
        secrets += [value for name, value in parse_qsl(parts.query) if name.lower() not in _PLAIN_OPTIONS]
        secrets += [unquote(s) for s in secrets if s]  # as redis-py decodes them
    except Exception:
        secrets = [url]
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text

"""The opt-in response cache: hits served as the SDK's own objects without reaching the API, the
key that keeps requests and tenants apart, bounds and expiry, and a cache that breaks (a corrupt
entry, Redis killed or hung) never breaking the app. Memory and a real redis-server, sync and async."""

from __future__ import annotations

import gc
import json
import logging
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from otel_llm import cache as cache_module
from otel_llm import semconv as sc
from otel_llm.cache import ResponseCache, cache_key, cacheable
from otel_llm.cache.flight import Flights
from otel_llm.cache.memory import MemoryBackend
from otel_llm.settings import Settings
from tests.conftest import API_KEY, Api, FakeAPI, finished, fixture_json, points, total

MESSAGES = [{"role": "user", "content": "What are your opening hours?"}]
CHAT = {"model": "gpt-4.1", "messages": MESSAGES, "temperature": 0}
REDIS_BIN = shutil.which("redis-server")


# --- a real redis-server, owned by the test -------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server on a loopback port, its data in a temp dir; stopped by its PID."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        if REDIS_BIN is None:
            pytest.skip("redis-server is not installed (scripts/install-tools, or apt-get install redis-server)")
        pytest.importorskip("redis", reason="the redis package is not installed (pip install 'otel-llm[redis]')")
        self.workdir = workdir
        self.port = port or _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        import redis

        self.proc = subprocess.Popen(
            [str(REDIS_BIN), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        client.close()
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def entries(self) -> list[bytes]:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            return list(client.keys("otel_llm:rc:*"))
        finally:
            client.close()

    def write(self, key: bytes, value: bytes) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.set(key, value)
        finally:
            client.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, for tests that kill it."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    server: RedisServer = request.getfixturevalue("redis_server")
    import redis

    client = redis.Redis.from_url(server.url)
    client.flushdb()
    client.close()
    return server.url


@pytest.fixture
def cached(instrument: Any, backend_url: str) -> Callable[..., ResponseCache]:
    """`cached(**settings)`: instrument with the response cache on; returns the cache."""

    def start(**settings: Any) -> ResponseCache:
        # A deadline a busy test machine always meets: these tests are about what is served
        # (tests/test_cache_deadline.py holds Redis to the 50 ms default).
        settings.setdefault("response_cache_timeout", 1.0)
        instrumentor = instrument(response_cache=settings.pop("response_cache", backend_url), **settings)
        cache = instrumentor.telemetry.response_cache
        assert cache is not None
        return cache

    return start


def requests_by_result(reader: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for point in points(reader, sc.RESPONSE_CACHE_REQUESTS):
        result = point.attributes[sc.RESPONSE_CACHE_RESULT]
        out[result] = out.get(result, 0) + point.value
    return out


def cache_backend_keys(cache: ResponseCache, server: RedisServer | None = None) -> list[str]:
    backend = cache.backend
    if isinstance(backend, MemoryBackend):
        return list(backend._data)
    assert server is not None
    return [k.decode() for k in server.entries()]


# --- hits, misses and what they record ---------------------------------------------------------------
def test_hit_is_the_sdks_own_object_and_never_reaches_the_api(
    cached: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    cached()
    first = api.call("chat.completions.create", **CHAT)
    second = api.call("chat.completions.create", **CHAT)

    assert len(fake.requests) == 1
    assert type(second) is type(first) is openai.types.chat.ChatCompletion
    assert second == first
    assert second.to_dict() == first.to_dict()  # same fields set, as the API sent them
    assert second is not first

    miss, hit = finished(spans)
    cost = miss.attributes[sc.COST_USD]
    assert cost > 0
    expected = {
        **{k: v for k, v in miss.attributes.items() if k not in (sc.RESPONSE_CACHE_HIT, sc.CACHE_SAVINGS_USD)},
        sc.RESPONSE_CACHE_HIT: True,
        sc.COST_USD: 0.0,
        sc.CACHE_SAVINGS_USD: cost,  # what the call would have cost
    }
    assert dict(hit.attributes) == expected
    assert miss.attributes[sc.RESPONSE_CACHE_HIT] is False
    assert hit.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == miss.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS]

    assert requests_by_result(reader) == {"miss": 1, "hit": 1}
    assert total(reader, sc.CACHE_SAVINGS, otel_llm__cache__kind="response") == pytest.approx(cost)
    assert total(reader, sc.COST) == pytest.approx(cost)  # only the call that reached the API
    assert total(reader, sc.CALLS) == 2
    # The provider processed the tokens once: the sums count them once.
    assert total(reader, sc.TOKENS, gen_ai__token__type="input") == miss.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS]


@pytest.mark.parametrize(
    ("path", "kwargs", "cls"),
    [
        ("completions.create", {"model": "gpt-3.5-turbo-instruct", "prompt": "x", "temperature": 0}, "Completion"),
        ("embeddings.create", {"model": "text-embedding-3-small", "input": ["a", "b"]}, "CreateEmbeddingResponse"),
        ("responses.create", {"model": "gpt-4.1", "input": "x", "temperature": 0,
                              "tools": [{"type": "function", "name": "f", "parameters": {}}]}, "Response"),
    ],
    ids=["completions", "embeddings", "responses"],
)
def test_other_operations_hit_too(
    cached: Any, api: Api, fake: FakeAPI, spans: Any, path: str, kwargs: dict[str, Any], cls: str,
) -> None:
    cached()
    first = api.call(path, **kwargs)
    second = api.call(path, **kwargs)
    assert len(fake.requests) == 1
    assert type(second).__name__ == cls and type(second) is type(first)
    assert second == first
    assert finished(spans)[1].attributes[sc.RESPONSE_CACHE_HIT] is True


def test_different_requests_are_different_entries(cached: Any, api: Api, fake: FakeAPI, reader: Any) -> None:
    cached()
    variants = [
        CHAT,
        {**CHAT, "model": "gpt-4.1-mini"},
        {**CHAT, "messages": [{"role": "user", "content": "And on Sundays?"}]},
        {**CHAT, "max_tokens": 50},
        {**CHAT, "seed": 7},
        {**CHAT, "extra_body": {"provider": {"order": ["b"]}}},
    ]
    for kwargs in variants:
        api.call("chat.completions.create", **kwargs)
    assert len(fake.requests) == len(variants)
    for kwargs in variants:  # each now has its own entry
        api.call("chat.completions.create", **kwargs)
    assert len(fake.requests) == len(variants)
    # Transport arguments and headers that identify nobody change nothing about the answer.
    api.call("chat.completions.create", **CHAT, timeout=12.5, extra_headers={"traceparent": "00-abc-def-01"})
    assert len(fake.requests) == len(variants)
    # A header we do not know might name a tenant: a new entry (hit rate, never a crossed answer).
    api.call("chat.completions.create", **CHAT, extra_headers={"X-Trace": "abc"})
    assert len(fake.requests) == len(variants) + 1
    assert requests_by_result(reader) == {"miss": len(variants) + 1, "hit": len(variants) + 1}


def test_two_tenants_never_share_an_entry(cached: Any, api: Api, fake: FakeAPI) -> None:
    cached()
    other = Api(api.mode, fake, "https://api.openai.com/v1")
    other.client = other.client.with_options(api_key="sk-other-tenant")
    gateway = Api(api.mode, fake, "https://gateway.example.com/v1")
    try:
        mine = api.call("chat.completions.create", **CHAT)
        theirs = other.call("chat.completions.create", **CHAT)
        assert len(fake.requests) == 2  # same request, other key: the API answers again
        gateway.call("chat.completions.create", **CHAT)
        assert len(fake.requests) == 3  # same request and key, other base URL
        assert other.call("chat.completions.create", **CHAT) == theirs
        assert api.call("chat.completions.create", **CHAT) == mine
        assert len(fake.requests) == 3
    finally:
        other.close()
        gateway.close()


def test_entries_expire_after_the_ttl(cached: Any, api: Api, fake: FakeAPI, reader: Any) -> None:
    cached(response_cache_ttl=0.3)
    api.call("chat.completions.create", **CHAT)
    api.call("chat.completions.create", **CHAT)
    assert len(fake.requests) == 1
    time.sleep(0.45)
    api.call("chat.completions.create", **CHAT)
    assert len(fake.requests) == 2
    assert requests_by_result(reader) == {"miss": 2, "hit": 1}


# --- what is cached, and what is not -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "nondeterministic", "is_cached"),
    [
        ({"temperature": 0}, False, True),
        ({"temperature": 0.0}, False, True),
        ({}, False, False),  # unset: the provider samples at its default temperature (1.0 at OpenAI)
        ({"temperature": 0.7}, False, False),
        ({"temperature": None}, False, False),
        ({}, True, True),
        ({"temperature": 0.7}, True, True),
    ],
)
def test_only_deterministic_requests_are_cached_unless_opted_in(
    instrument: Any, api: Api, fake: FakeAPI, reader: Any, kwargs: dict[str, Any], nondeterministic: bool,
    is_cached: bool,
) -> None:
    instrument(response_cache="memory://", response_cache_nondeterministic=nondeterministic)
    for _ in range(2):
        api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, **kwargs)
    assert len(fake.requests) == (1 if is_cached else 2)
    assert requests_by_result(reader) == ({"miss": 1, "hit": 1} if is_cached else {})


def _twice(api: Api, path: str, how: str, **kwargs: Any) -> None:
    for _ in range(2):
        if how == "raw":
            target: Any = api.client
            for part in path.split("."):
                target = getattr(target, part)
            raw = api.run(target.with_raw_response.create(**kwargs)) if how == "raw" else None
            api.run(raw.parse())
        elif how == "stream":
            api.consume(api.call(path, **kwargs))
        else:
            api.call(path, **kwargs)


@pytest.mark.parametrize(
    ("path", "how", "kwargs"),
    [
        ("chat.completions", "raw", CHAT),
        ("chat.completions.create", "stream", {**CHAT, "stream": True}),  # replay is opt-in
        ("chat.completions.parse", "value", CHAT),
        ("chat.completions.create", "value", {**CHAT, "web_search_options": {}}),
        ("responses.create", "value", {"model": "gpt-4.1", "input": "x", "temperature": 0,
                                       "tools": [{"type": "web_search"}]}),
        ("responses.create", "value", {"model": "gpt-4.1", "input": "x", "temperature": 0, "conversation": "conv_1"}),
        ("responses.create", "stream", {"model": "gpt-4.1", "input": "x", "temperature": 0, "stream": True}),
        ("chat.completions.create", "value", {**CHAT, "messages": iter(MESSAGES)}),  # a one-shot iterator
    ],
    ids=["with_raw_response", "stream", "parse", "web_search_options", "hosted_tool", "conversation",
         "responses_stream", "iterator"],
)
def test_bypassed_requests_always_reach_the_api(
    instrument: Any, api: Api, fake: FakeAPI, reader: Any, path: str, how: str, kwargs: dict[str, Any],
) -> None:
    instrument(response_cache="memory://")
    if how != "raw":
        api.call("chat.completions.create", **CHAT)  # an entry that a raw call must not be served from
    fake.requests.clear()
    _twice(api, path, how, **kwargs)
    assert len(fake.requests) == 2
    assert sum(v for k, v in requests_by_result(reader).items() if k != "miss") == 0


def test_a_decisions_call_never_touches_the_cache(instrument: Any, api: Api, fake: FakeAPI, reader: Any) -> None:
    """Its answer is no kind the cache stores, so it is not looked up either (no backend round trip)."""
    instrument(response_cache="memory://", response_cache_nondeterministic=True)
    decision = {"model": "gpt-6-luna", "input": "x", "questions": [{"type": "predicate", "instructions": "x?"}]}
    first = api.call("decisions.create", **decision)
    again = api.call("decisions.create", **decision)
    assert again.model_dump() == first.model_dump() and len(fake.requests) == 2
    assert requests_by_result(reader) == {}


def test_with_raw_response_is_not_served_from_an_entry(instrument: Any, api: Api, fake: FakeAPI) -> None:
    instrument(response_cache="memory://")
    api.call("chat.completions.create", **CHAT)
    raw = api.run(api.client.chat.completions.with_raw_response.create(**CHAT))
    assert raw.headers["x-request-id"] == "req_2"  # a real response, with its headers
    assert len(fake.requests) == 2


def test_streams_replay_when_opted_in(cached: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    cached(response_cache_streams=True)
    kwargs = {**CHAT, "stream": True}
    first = api.consume(api.call("chat.completions.create", **kwargs))
    stream = api.call("chat.completions.create", **kwargs)
    assert isinstance(stream, openai.AsyncStream if api.is_async else openai.Stream)
    second = api.consume(stream)
    assert len(fake.requests) == 1
    assert [c.to_dict() for c in second] == [c.to_dict() for c in first]
    assert all(type(c) is openai.types.chat.ChatCompletionChunk for c in second)
    assert all(c.usage is None for c in second)  # the usage chunk we asked for stays hidden, as live
    miss, hit = finished(spans)
    assert hit.attributes[sc.RESPONSE_CACHE_HIT] is True
    assert hit.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == miss.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS]
    assert hit.attributes[sc.CACHE_SAVINGS_USD] == miss.attributes[sc.COST_USD] > 0
    assert requests_by_result(reader) == {"miss": 1, "hit": 1}


def test_a_stream_left_early_is_not_stored(instrument: Any, api: Api, fake: FakeAPI) -> None:
    instrument(response_cache="memory://", response_cache_streams=True)
    kwargs = {**CHAT, "stream": True}
    stream = api.call("chat.completions.create", **kwargs)
    api.consume(stream, limit=2)
    api.run(stream.close())
    del stream
    gc.collect()
    api.consume(api.call("chat.completions.create", **kwargs))
    assert len(fake.requests) == 2


def test_off_by_default(instrumented: Any, api: Api, fake: FakeAPI, reader: Any) -> None:
    assert instrumented.telemetry.response_cache is None
    for _ in range(2):
        api.call("chat.completions.create", **CHAT)
    assert len(fake.requests) == 2
    assert points(reader, sc.RESPONSE_CACHE_REQUESTS) == []


# --- a cache that fails never fails the call ---------------------------------------------------------
def test_a_corrupt_entry_is_a_counted_miss_and_is_overwritten(
    cached: Any, api: Api, fake: FakeAPI, reader: Any, backend_url: str, request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = cached()
    server = request.getfixturevalue("redis_server") if backend_url.startswith("redis") else None
    expected = api.call("chat.completions.create", **CHAT)
    (key,) = cache_backend_keys(cache, server)
    for garbage in (b"\x00not json", b'{"v": 1, "t": "os.system", "s": false, "b": {}}', b'{"v": 1}'):
        if server is None:
            cache.backend.set(key, garbage, 60)
        else:
            server.write(key.encode(), garbage)
        assert api.call("chat.completions.create", **CHAT) == expected
    assert len(fake.requests) == 4
    assert requests_by_result(reader) == {"miss": 1, "invalid": 3}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "could not be read" in r.getMessage()]
    assert len(warnings) <= 1  # logged once per process, not per call
    assert api.call("chat.completions.create", **CHAT) == expected  # the miss stored a good entry again
    assert len(fake.requests) == 4


def _envelope(name: str, body: Any, stream: bool = False) -> bytes:
    return json.dumps({"v": 1, "t": name, "s": stream, "b": body}).encode()


CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]}
WRONG_ENTRIES = {
    "embedding_entry": _envelope("CreateEmbeddingResponse", fixture_json("embeddings.json")),
    "embedding_body_named_chat": _envelope("ChatCompletion", fixture_json("embeddings.json")),
    "responses_entry": _envelope("Response", fixture_json("response.json")),
    "completion_entry": _envelope("Completion", fixture_json("completion.json")),
    "chunk_entry": _envelope("ChatCompletionChunk", CHUNK),
    "choices_not_a_list": _envelope("ChatCompletion", {**fixture_json("chat_completion.json"), "choices": "x"}),
}


@pytest.mark.parametrize("poison", sorted(WRONG_ENTRIES))
def test_an_entry_of_another_type_is_never_served(
    cached: Any, api: Api, fake: FakeAPI, reader: Any, backend_url: str, request: pytest.FixtureRequest,
    poison: str,
) -> None:
    """An embedding (or any other type) where a chat answer is looked up: a counted miss, never served."""
    cache = cached()
    server = request.getfixturevalue("redis_server") if backend_url.startswith("redis") else None
    expected = api.call("chat.completions.create", **CHAT)
    (key,) = cache_backend_keys(cache, server)
    if server is None:
        cache.backend.set(key, WRONG_ENTRIES[poison], 60)
    else:
        server.write(key.encode(), WRONG_ENTRIES[poison])
    result = api.call("chat.completions.create", **CHAT)
    assert type(result) is openai.types.chat.ChatCompletion
    assert result.choices[0].message.content == expected.choices[0].message.content
    assert len(fake.requests) == 2  # the API answered, not the entry
    assert requests_by_result(reader) == {"miss": 1, "invalid": 1}
    assert api.call("chat.completions.create", **CHAT) == expected  # the miss stored a good entry again
    assert len(fake.requests) == 2


@pytest.mark.redis
def test_redis_killed_mid_run_calls_keep_working_and_count_errors(
    instrument: Any, api: Api, fake: FakeAPI, reader: Any, fresh_redis: RedisServer, tmp_path: Path,
) -> None:
    # A deadline a busy machine meets: this test is about a Redis that dies, not a slow one.
    cache = instrument(response_cache=fresh_redis.url, response_cache_timeout=1.0).telemetry.response_cache
    cache._backoff = cache.breaker_initial = 0.3
    gets = 0
    real_get = cache.backend.get

    def counting_get(key: str) -> bytes | None:
        nonlocal gets
        gets += 1
        return real_get(key)

    cache.backend.get = counting_get  # type: ignore[method-assign]
    expected = api.call("chat.completions.create", **CHAT)
    api.call("chat.completions.create", **CHAT)
    assert (len(fake.requests), gets) == (1, 2)

    fresh_redis.kill()
    started = time.perf_counter()
    for _ in range(5):
        assert api.call("chat.completions.create", **CHAT) == expected
    elapsed = time.perf_counter() - started
    assert len(fake.requests) == 6
    assert gets == 3  # one failed lookup opened the breaker; the next four left Redis alone
    assert elapsed < 1.0
    assert requests_by_result(reader) == {"miss": 1, "hit": 1, "error": 5}

    # Redis comes back (empty): after the back-off the cache is used again.
    revived = RedisServer(tmp_path, fresh_redis.port).start()
    try:
        time.sleep(0.35)
        api.call("chat.completions.create", **CHAT)
        api.call("chat.completions.create", **CHAT)
        assert len(fake.requests) == 7
        assert requests_by_result(reader) == {"miss": 2, "hit": 2, "error": 5}
    finally:
        revived.stop()


@pytest.mark.redis
def test_a_hung_redis_costs_one_short_timeout_then_is_skipped(
    instrument: Any, api: Api, fake: FakeAPI, reader: Any,
) -> None:
    pytest.importorskip("redis")
    with socket.socket() as hung:  # accepts connections (backlog), never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        port = hung.getsockname()[1]
        instrument(response_cache=f"redis://127.0.0.1:{port}/0")
        started = time.perf_counter()
        first = api.call("chat.completions.create", **CHAT)
        one = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(10):
            api.call("chat.completions.create", **CHAT)
        ten = time.perf_counter() - started
    assert first.choices[0].message.content == "This is a test."
    assert one < 0.5  # ~50 ms socket timeout, not redis-py's 5 s default
    assert ten < one * 3 + 0.2  # the breaker keeps the next calls off the hung server
    assert requests_by_result(reader) == {"error": 11}


FAULTS = {
    "key": (cache_module, "cache_key"),
    "policy": (cache_module, "cacheable"),
    "get": (MemoryBackend, "get"),
    "set": (MemoryBackend, "set"),
    "rebuild": (ResponseCache, "_rebuild"),
    "encode": (cache_module, "_encode"),
    "count": (ResponseCache, "_count"),
    "replay": (cache_module, "_replay"),
    "flight_join": (Flights, "join"),
    "flight_land": (Flights, "land"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("stream", [False, True], ids=["value", "stream"])
def test_host_survives_a_fault_in_the_cache_code(
    instrument: Any, api: Api, fake: FakeAPI, spans: Any, monkeypatch: pytest.MonkeyPatch, fault: str, stream: bool,
) -> None:
    kwargs = {**CHAT, "stream": True} if stream else CHAT

    def use(result: Any) -> Any:
        return [c.to_dict() for c in api.consume(result)] if stream else result.to_dict()

    expected = use(api.call("chat.completions.create", **kwargs))  # uninstrumented
    instrument(response_cache="memory://", response_cache_streams=True)
    use(api.call("chat.completions.create", **kwargs))  # a good entry, if the fault is on the read path

    def boom(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("injected fault in the response cache")

    monkeypatch.setattr(*FAULTS[fault], boom)
    for _ in range(2):
        assert use(api.call("chat.completions.create", **kwargs)) == expected
    gc.collect()
    assert len(finished(spans)) == 3  # every call still got its one span


def test_without_the_redis_package_the_cache_is_off_and_the_app_runs(
    instrument: Any, api: Api, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis -> ImportError
    instrumentor = instrument(response_cache="redis://127.0.0.1:1/0")
    assert instrumentor.telemetry.response_cache is None
    assert any("needs the redis package" in r.getMessage() for r in caplog.records)
    api.call("chat.completions.create", **CHAT)
    assert len(fake.requests) == 1


def test_on_an_sdk_without_the_responses_api_chat_is_still_cached(
    instrument: Any, api: Api, fake: FakeAPI, spans: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """openai before 1.66 has no `openai.types.responses`: instrument() raised ModuleNotFoundError, so an
    app that turned the cache on got no telemetry at all (`make test-openai-releases` runs it on 1.26)."""
    monkeypatch.setitem(sys.modules, "openai.types.responses", None)  # import -> ModuleNotFoundError
    instrumentor = instrument(response_cache="memory://")
    assert instrumentor.telemetry.response_cache is not None
    first = api.call("chat.completions.create", **CHAT)
    again = api.call("chat.completions.create", **CHAT)
    assert again.model_dump() == first.model_dump() and len(fake.requests) == 1
    assert len(finished(spans)) == 2


def test_a_fault_setting_up_the_cache_leaves_the_calls_instrumented_and_says_so(
    instrument: Any, api: Api, fake: FakeAPI, spans: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(ResponseCache, "__init__", boom)
    instrumentor = instrument(response_cache="memory://")
    assert instrumentor.telemetry.response_cache is None
    assert [r.levelno for r in caplog.records if "cannot set up the response cache" in r.getMessage()] == [logging.ERROR]
    api.call("chat.completions.create", **CHAT)
    api.call("chat.completions.create", **CHAT)
    assert len(fake.requests) == 2 and len(finished(spans)) == 2


# --- the memory backend's bounds ---------------------------------------------------------------------
def test_memory_lru_is_bounded_by_entries() -> None:
    backend = MemoryBackend(max_entries=2, max_bytes=10_000)
    backend.set("a", b"1", 60)
    backend.set("b", b"2", 60)
    assert backend.get("a") == b"1"  # a is now the most recently used
    backend.set("c", b"3", 60)
    assert (backend.get("a"), backend.get("b"), backend.get("c")) == (b"1", None, b"3")
    assert len(backend) == 2


def test_memory_lru_is_bounded_by_bytes() -> None:
    backend = MemoryBackend(max_entries=100, max_bytes=30)
    backend.set("k1", b"x" * 8, 60)  # 10 bytes with its key
    backend.set("k2", b"x" * 8, 60)
    backend.set("k3", b"x" * 8, 60)
    assert backend.nbytes == 30
    backend.set("k4", b"x" * 8, 60)
    assert backend.get("k1") is None and backend.nbytes == 30
    backend.set("big", b"x" * 40, 60)  # larger than the whole cache: not stored, nothing evicted
    assert backend.get("big") is None and len(backend) == 3
    backend.set("k2", b"y" * 2, 60)  # replacing an entry frees its old bytes
    assert backend.nbytes == 24


def test_memory_entries_expire() -> None:
    now = [100.0]
    backend = MemoryBackend(10, 10_000, clock=lambda: now[0])
    backend.set("k", b"v", 5)
    now[0] = 104.9
    assert backend.get("k") == b"v"
    now[0] = 105.0
    assert backend.get("k") is None and backend.nbytes == 0


def test_memory_url_options_bound_the_cache_end_to_end(instrument: Any, api: Api, fake: FakeAPI) -> None:
    cache = instrument(response_cache="memory://?max_entries=2&max_bytes=1000000").telemetry.response_cache
    assert (cache.backend.max_entries, cache.backend.max_bytes) == (2, 1_000_000)
    prompts = [{**CHAT, "messages": [{"role": "user", "content": str(i)}]} for i in range(3)]
    for kwargs in prompts:
        api.call("chat.completions.create", **kwargs)
    api.call("chat.completions.create", **prompts[0])  # evicted by the third
    api.call("chat.completions.create", **prompts[2])  # still there
    assert len(fake.requests) == 4


# --- the key and the policy, as pure functions -------------------------------------------------------
def _client(**kw: Any) -> Any:
    return openai.OpenAI(api_key=kw.pop("api_key", API_KEY), base_url=kw.pop("base_url", "https://api.openai.com/v1"), **kw)


def test_key_ignores_transport_args_and_omitted_values_but_not_the_request() -> None:
    client = _client()
    base = cache_key("chat", "create", client, CHAT)
    assert base is not None and base.startswith("otel_llm:rc:v1:") and len(base) == len("otel_llm:rc:v1:") + 64
    assert cache_key("chat", "create", client, {**CHAT, "temperature": 0.0}) == base
    assert cache_key("chat", "create", client, {**CHAT, "timeout": 3, "extra_headers": {"traceparent": "b"}}) == base
    assert cache_key("chat", "create", client, {**CHAT, "extra_headers": {"a": "b"}}) != base
    assert cache_key("chat", "create", client, {**CHAT, "top_p": getattr(openai, "omit", openai.NOT_GIVEN), "n": openai.NOT_GIVEN}) == base
    assert cache_key("chat", "create", client, {**CHAT, "user": "u1"}) != base
    assert cache_key("chat", "create", client, {**CHAT, "extra_query": {"x": 1}}) != base
    assert cache_key("chat", "create", _client(api_key="sk-other"), CHAT) != base
    assert cache_key("chat", "create", _client(organization="org-2"), CHAT) != base
    assert cache_key("chat", "create", _client(base_url="https://gw.example/v1"), CHAT) != base
    assert cache_key("text_completion", "create", client, CHAT) != base
    assert API_KEY not in base


def test_key_refuses_what_it_cannot_see() -> None:
    assert cache_key("chat", "create", _client(), {**CHAT, "messages": iter(MESSAGES)}) is None
    keyless = _client()
    keyless.api_key = ""
    assert cache_key("chat", "create", keyless, CHAT) is None


def test_policy_table() -> None:
    s = Settings()
    assert cacheable(s, "chat", "create", False, CHAT)
    assert not cacheable(s, "chat", "parse", False, CHAT)
    assert not cacheable(s, "image_generation", "create", False, CHAT)
    assert cacheable(s, "embeddings", "create", False, {"model": "m", "input": "x"})
    assert not cacheable(s, "chat", "create", False, {**CHAT, "extra_headers": {"X-Stainless-Raw-Response": "raw"}})
    assert not cacheable(s, "chat", "create", False, {**CHAT, "stream": True})
    assert cacheable(Settings(response_cache_streams=True), "chat", "create", False, {**CHAT, "stream": True})
    assert not cacheable(Settings(response_cache_streams=True), "chat", "create", True, {**CHAT, "stream": True})
    assert not cacheable(s, "chat", "create", True, {**CHAT, "background": True})
    assert cacheable(s, "chat", "create", True, {**CHAT, "tools": [{"type": "custom", "name": "x"}]})
    assert not cacheable(s, "chat", "create", True, {**CHAT, "tools": [{"type": "mcp"}]})
    assert not cacheable(s, "chat", "create", False, {**CHAT, "temperature": True})


# --- credentials in the cache URL never reach a log line ---------------------------------------------
SECRET_URLS = [
    "redis://:SECRET@127.0.0.1:{port}/0",
    "redis://tenant:SECRET@127.0.0.1:{port}/0",
    "redis://SECRET@127.0.0.1:{port}/0",  # a token given as the user name
    "redis://127.0.0.1:{port}/0?password=SECRET&socket_timeout=0.05",
    "redis://:redis@127.0.0.1:{port}/0?x=SECRET",  # a password that is also the scheme's name
    "rediss://default:SECRET@127.0.0.1:{port}/0",
    "unix://:SECRET@/tmp/otel-llm-no-such.sock?db=0",
    "redis://:SECRET@127.0.0.1:notaport/0",  # cannot even be opened
    "redis://:SECRET@[::1/0",  # cannot even be parsed
]


@pytest.mark.parametrize("template", SECRET_URLS)
@pytest.mark.parametrize("redis_installed", [True, False], ids=["redis", "no_redis_package"])
def test_credentials_in_the_cache_url_are_never_logged(
    instrument: Any, api: Api, fake: FakeAPI, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    template: str, redis_installed: bool,
) -> None:
    if redis_installed:
        pytest.importorskip("redis")
    else:
        monkeypatch.setitem(sys.modules, "redis", None)
    url = template.format(port=_free_port())  # nothing listens there: every lookup fails and is logged
    secret = "redis" if ":redis@" in url else "SECRET"
    instrument(response_cache=url)
    for _ in range(2):
        api.call("chat.completions.create", **CHAT)
    assert len(fake.requests) == 2
    assert any("response cache" in r.getMessage() for r in caplog.records)  # something was logged ...
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "SECRET" not in logged  # ... and no credential in it, at any level
    if secret == "redis":
        assert ":redis@" not in logged


def test_tools_given_as_an_iterator_reach_the_api_untouched(instrument: Any, api: Api, fake: FakeAPI) -> None:
    """The SDK takes any iterable of tools: the cache's checks read only lists and tuples, so a one-shot
    iterator is the SDK's to consume (the request then bypasses the cache, as any it cannot key)."""
    instrument(response_cache="memory://")
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    api.call("responses.create", model="gpt-4.1", input="hi", temperature=0, tools=iter([tool]))
    assert fake.bodies[-1]["tools"] == [tool]

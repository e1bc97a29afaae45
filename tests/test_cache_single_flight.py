"""Single-flight: twenty identical cold requests at once make one upstream call, sync threads and
async tasks alike; the nineteen others wait for that one call only and are served its answer as hits;
if it fails, each of them calls the API itself and none sees the leader's exception."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import openai
import pytest

from otel_llm import semconv as sc
from otel_llm.cache import ResponseCache
from tests.conftest import Api, FakeAPI, Reply, finished, httpx, total
from tests.test_response_cache import CHAT, backend_url, redis_server, requests_by_result  # noqa: F401

N = 20


class GatedAPI(FakeAPI):
    """Once armed, holds the next request until `ready()` (the other calls all wait on it), at most 10 s."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = lambda: True
        self._lock = threading.Lock()
        self._armed = False

    def arm(self, ready: Any) -> None:
        self.requests.clear()
        self.ready, self._armed = ready, True

    def _gated(self) -> bool:
        with self._lock:
            gated, self._armed = self._armed, False
            return gated

    def handler(self, request: Any) -> Any:
        if self._gated():
            deadline = time.monotonic() + 10
            while not self.ready() and time.monotonic() < deadline:
                time.sleep(0.005)
        return self._answer(request)

    async def async_handler(self, request: Any) -> Any:
        if self._gated():
            deadline = time.monotonic() + 10
            while not self.ready() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        return self._answer(request)


@pytest.fixture
def gated() -> GatedAPI:
    return GatedAPI()


@pytest.fixture
def fake(gated: GatedAPI) -> FakeAPI:  # the `api` fixture's transport answers through the gate
    return gated


def all_at_once(api: Api, n: int) -> list[Any]:
    """`n` identical calls at the same moment: threads on the sync client, tasks on the async one."""
    if api.is_async:
        async def together() -> list[Any]:
            return await asyncio.gather(*(api.client.chat.completions.create(**CHAT) for _ in range(n)),
                                        return_exceptions=True)
        return list(api.run(together()))
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = api.client.chat.completions.create(**CHAT)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def _start(instrument: Any, url: str, gated: GatedAPI) -> ResponseCache:
    # A generous deadline: twenty threads opening Redis connections at once on a busy test machine
    # must not turn into lookup errors here (tests/test_cache_deadline.py tests the deadline).
    cache = instrument(response_cache=url, response_cache_timeout=2.0).telemetry.response_cache
    assert cache is not None
    gated.arm(lambda: cache._flights.waiting() == N - 1)
    return cache


def test_twenty_identical_cold_requests_make_one_upstream_call(
    instrument: Any, api: Api, gated: GatedAPI, spans: Any, reader: Any, backend_url: str,  # noqa: F811
) -> None:
    expected = api.call("chat.completions.create", **CHAT).to_dict()  # uninstrumented
    _start(instrument, backend_url, gated)
    answers = all_at_once(api, N)
    assert len(gated.requests) == 1
    assert [a.to_dict() for a in answers] == [expected] * N
    assert len({id(a) for a in answers}) == N  # each caller its own object
    assert requests_by_result(reader) == {"miss": 1, "hit": N - 1}
    calls = finished(spans)
    assert len(calls) == N
    assert sorted(s.attributes[sc.RESPONSE_CACHE_HIT] for s in calls) == [False] + [True] * (N - 1)
    (leader,) = [s for s in calls if not s.attributes[sc.RESPONSE_CACHE_HIT]]
    cost = leader.attributes[sc.COST_USD]
    assert total(reader, sc.COST) == pytest.approx(cost)  # one call reached the API: one cost
    assert total(reader, sc.CACHE_SAVINGS, otel_llm__cache__kind="response") == pytest.approx((N - 1) * cost)
    assert total(reader, sc.CALLS) == N


def test_when_the_leader_fails_each_waiter_calls_the_api_itself(
    instrument: Any, api: Api, gated: GatedAPI, reader: Any,
) -> None:
    expected = api.call("chat.completions.create", **CHAT).to_dict()
    _start(instrument, "memory://", gated)
    gated.reply(Reply(500, {"error": {"message": "upstream failed", "type": "server_error"}}))
    outcomes = all_at_once(api, N)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], openai.InternalServerError)  # the leader's, only
    assert [o.to_dict() for o in outcomes if not isinstance(o, BaseException)] == [expected] * (N - 1)
    # Released, each waiter goes its own way: a lookup, then the API. (One that finds the entry a
    # faster one just stored is served it: between 1 and N-1 new upstream calls.)
    upstream = len(gated.requests)
    assert 2 <= upstream <= N
    assert requests_by_result(reader) == {"miss": upstream, "hit": N - upstream} if upstream < N else {"miss": N}


def test_streams_are_not_single_flighted(instrument: Any, api: Api, fake: FakeAPI) -> None:
    cache = instrument(response_cache="memory://", response_cache_streams=True).telemetry.response_cache
    assert cache is not None
    stream = api.call("chat.completions.create", **CHAT, stream=True)
    assert len(cache._flights) == 0  # no flight held open while the app reads
    api.consume(stream)


def test_a_sync_call_on_the_event_loops_thread_never_waits_for_an_async_leader(
    instrument: Any, gated: GatedAPI,
) -> None:
    """It would block the very loop the leader needs: it goes its own way instead (no deadlock)."""
    cache = instrument(response_cache="memory://").telemetry.response_cache
    assert cache is not None
    sync_done = threading.Event()
    gated.arm(sync_done.is_set)  # the async leader's request is held until the sync call is over
    sync_client = openai.OpenAI(api_key="sk-t", http_client=openai.DefaultHttpxClient(
        transport=httpx.MockTransport(gated.handler)), max_retries=0)
    async_client = openai.AsyncOpenAI(api_key="sk-t", http_client=openai.DefaultAsyncHttpxClient(
        transport=httpx.MockTransport(gated.async_handler)), max_retries=0)
    answers: list[Any] = []

    async def scenario() -> None:
        leader = asyncio.ensure_future(async_client.chat.completions.create(**CHAT))
        while len(cache._flights) == 0:  # the leader has boarded and waits in the API
            await asyncio.sleep(0.005)
        answers.append(sync_client.chat.completions.create(**CHAT))  # blocking, on the loop's thread
        sync_done.set()
        answers.append(await leader)
        await async_client.close()

    runner = threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True)
    runner.start()
    runner.join(timeout=20)
    assert not runner.is_alive(), "deadlock: the sync call waited for the leader it was blocking"
    sync_client.close()
    assert [a.choices[0].message.content for a in answers] == ["This is a test."] * 2
    assert len(gated.requests) == 2


def test_a_waiter_never_waits_longer_than_its_own_timeout(instrument: Any, api: Api, gated: GatedAPI) -> None:
    """A leader with a long timeout, a waiter with a short one: past its own timeout, the waiter goes
    its own way (a lookup, then the API) instead of outwaiting the leader."""
    cache = instrument(response_cache="memory://").telemetry.response_cache
    assert cache is not None
    follower_done = threading.Event()
    gated.arm(follower_done.is_set)  # the leader's answer is held until the waiter has its own
    short = api.client.with_options(timeout=0.2)

    async def both() -> list[Any]:
        async def follower() -> Any:
            while len(cache._flights) == 0:
                await asyncio.sleep(0.005)
            try:
                return await short.chat.completions.create(**CHAT)
            finally:
                follower_done.set()
        return list(await asyncio.gather(api.client.chat.completions.create(**CHAT), follower()))

    if api.is_async:
        answers = api.run(both())
    else:
        results: dict[str, Any] = {}
        leader = threading.Thread(target=lambda: results.update(leader=api.client.chat.completions.create(**CHAT)))
        leader.start()
        assert wait_until(lambda: len(cache._flights) == 1)
        try:
            results["follower"] = short.chat.completions.create(**CHAT)
        finally:
            follower_done.set()
        leader.join(timeout=20)
        answers = [results["leader"], results["follower"]]
    assert [a.choices[0].message.content for a in answers] == ["This is a test."] * 2
    assert len(gated.requests) == 2  # the waiter gave up on the leader after 0.2 s and asked itself


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True

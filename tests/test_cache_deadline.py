"""One deadline for the whole cache lookup (and store): a Redis that trickles its reply a byte at a
time, one that never answers, and one that answers with the wrong types all leave the app with
exactly the answer it gets without the cache, within the deadline, and the sums exact."""

from __future__ import annotations

import time
from typing import Any

import pytest

from otel_llm import semconv as sc
from otel_llm.cache.deadline import DeadlineExceeded, DeadlineRunner
from tests.conftest import Api, FakeAPI, finished, total
from tests.hostile_redis import HostileRedis, hang, reply, trickle, wait_for
from tests.test_response_cache import CHAT, requests_by_result

pytestmark = pytest.mark.redis
CALLS = 3
DEADLINE = 0.3
# A 100-byte value, one byte every 30 ms: no single read waits 50 ms, the reply takes 3.2 s.
TRICKLED_VALUE = b"$100\r\n" + b"x" * 100 + b"\r\n"

HOSTILE = {
    "trickled_get": {"get": trickle(TRICKLED_VALUE)},
    "trickled_set": {"set": trickle(b"+" + b"O" * 100 + b"\r\n")},  # GET misses at once, SET crawls
    "hung_get": {"get": hang()},
    "hung_set": {"set": hang()},
    "get_answers_integer": {"get": reply(b":42\r\n")},
    "get_answers_array": {"get": reply(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n")},
    "get_answers_error": {"get": reply(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")},
    "get_answers_status": {"get": reply(b"+OK\r\n")},
    "get_answers_garbage": {"get": reply(b"?what\r\n")},
    "set_answers_array": {"set": reply(b"*1\r\n:1\r\n")},
}


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
def test_a_hostile_redis_costs_at_most_the_deadline_and_changes_nothing(
    instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, hostile: str,
) -> None:
    pytest.importorskip("redis")
    expected = api.call("chat.completions.create", **CHAT).to_dict()  # uninstrumented
    fake.requests.clear()
    with HostileRedis(**HOSTILE[hostile]) as server:
        # 300 ms, not the 50 ms default: on a busy test machine connecting alone can take 50 ms, and the
        # bad reply must be reached. The trickle still takes ten times as long.
        instrument(response_cache=server.url, response_cache_timeout=DEADLINE)
        started = time.perf_counter()
        answers = [api.call("chat.completions.create", **CHAT).to_dict() for _ in range(CALLS)]
        elapsed = time.perf_counter() - started
        # The client reached the misbehaving command (not stopped earlier, at connect).
        assert (b"SET" if "set" in hostile else b"GET") in server.commands, server.commands
    assert answers == [expected] * CALLS  # exactly what the app gets without the cache
    assert len(fake.requests) == CALLS  # every call reached the API
    # One deadline for the lookup (then the breaker keeps Redis out); without it the trickle alone takes 3.2 s.
    assert elapsed < DEADLINE + 1.2, f"{CALLS} calls took {elapsed:.2f} s"
    results = requests_by_result(reader)
    assert "hit" not in results and sum(results.values()) == CALLS
    # The sums: every call priced and counted once, as without the cache.
    spent = [s.attributes[sc.COST_USD] for s in finished(spans)]
    assert len(spent) == CALLS and spent[0] > 0
    assert total(reader, sc.COST) == pytest.approx(sum(spent), rel=1e-12)
    assert total(reader, sc.CALLS) == CALLS
    input_tokens = finished(spans)[0].attributes[sc.GEN_AI_USAGE_INPUT_TOKENS]
    assert total(reader, sc.TOKENS, gen_ai__token__type="input") == CALLS * input_tokens


def test_the_deadline_covers_the_whole_operation_and_releases_the_worker() -> None:
    aborted: list[bool] = []
    runner = DeadlineRunner(0.05, abort=lambda: aborted.append(True))

    def slow() -> str:
        for _ in range(20):  # twenty steps of 30 ms: each short, the whole 600 ms
            time.sleep(0.03)
        return "late"

    started = time.perf_counter()
    with pytest.raises(DeadlineExceeded):
        runner.run(slow)
    assert time.perf_counter() - started < 0.5
    assert wait_for(lambda: aborted == [True])  # on a thread of its own: the caller never waits for it
    assert runner.run(lambda: "fast") == "fast"
    with pytest.raises(KeyError):  # the function's own error, as raised
        runner.run({}.__getitem__, "missing")


def test_the_timeout_is_a_setting() -> None:
    from otel_llm.settings import load_settings

    assert load_settings({}).response_cache_timeout == 0.05
    assert load_settings({"OTEL_LLM_RESPONSE_CACHE_TIMEOUT": "0.2"}).response_cache_timeout == 0.2

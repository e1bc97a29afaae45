"""Figures for the response cache's deadline and single-flight, against any otel_llm tree.

    .venv/bin/python tests/cache_figures.py              # this tree
    git archive main otel_llm | tar -x -C /tmp/main && .venv/bin/python tests/cache_figures.py /tmp/main

Prints how long three calls take behind a Redis that trickles its reply one byte every 30 ms, and
how many upstream calls twenty identical cold requests make at once (a 50 ms API, memory cache).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if len(sys.argv) > 1:
    sys.path.insert(0, sys.argv[1])  # another otel_llm tree

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

import otel_llm
from tests.conftest import FakeAPI, httpx
from tests.hostile_redis import HostileRedis, trickle

CHAT = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


class SlowAPI(FakeAPI):
    def handler(self, request: Any) -> Any:
        time.sleep(0.05)
        return self._answer(request)


def client(fake: FakeAPI) -> Any:
    http = openai.DefaultHttpxClient(transport=httpx.MockTransport(fake.handler))
    return openai.OpenAI(api_key="sk-x", http_client=http, max_retries=0)


def instrument(instrumentor: Any, url: str) -> None:
    instrumentor.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider(), response_cache=url)


def main() -> None:
    print("otel_llm from", Path(otel_llm.__file__).parent)
    instrumentor = otel_llm.OpenAIInstrumentor()
    instrument(instrumentor, "memory://")
    client(FakeAPI()).chat.completions.create(**CHAT)  # first-call imports, outside the figures
    instrumentor.uninstrument()

    with HostileRedis(get=trickle(b"$100\r\n" + b"x" * 100 + b"\r\n")) as server:
        import redis  # noqa: F401  (imported before timing)

        instrument(instrumentor, server.url)
        c = client(FakeAPI())
        for i in range(3):
            started = time.perf_counter()
            c.chat.completions.create(**CHAT)
            print(f"trickling Redis: call {i + 1} took {time.perf_counter() - started:.3f} s")
        instrumentor.uninstrument()

    instrument(instrumentor, "memory://")
    fake = SlowAPI()
    c = client(fake)
    barrier = threading.Barrier(20)

    def one() -> None:
        barrier.wait()
        c.chat.completions.create(**CHAT)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("20 identical cold requests at once (50 ms API): upstream calls =", len(fake.requests))
    instrumentor.uninstrument()


if __name__ == "__main__":
    main()

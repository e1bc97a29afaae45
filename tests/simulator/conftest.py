"""Fixtures for the simulator tests: a running simulator, and the real openai SDK driven the same
way whether the client is sync or async (one `api` fixture parametrized over both, no twin tests)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from otel_llm.simulator import Simulator
from sim_helpers import FAST

@pytest.fixture
def make_sim() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def make(**overrides: Any) -> Simulator:
        simulator = Simulator(config=dataclasses.replace(FAST, **overrides)).start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Simulator]) -> Simulator:
    return make_sim()


class Api:
    """One SDK client, sync or async, called through the same synchronous methods."""

    def __init__(self, client: openai.OpenAI | openai.AsyncOpenAI, loop: asyncio.AbstractEventLoop | None) -> None:
        self.client = client
        self._loop = loop

    @property
    def is_async(self) -> bool:
        return self._loop is not None

    def call(self, path: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call e.g. "chat.completions.create" and return its (awaited) result."""
        result = self._method(path)(*args, **kwargs)
        return self._run(result) if self._loop is not None else result

    def stream(self, path: str, /, **kwargs: Any) -> list[Any]:
        """Call with stream=True and collect every item the SDK yields."""
        if self._loop is None:
            with self._method(path)(stream=True, **kwargs) as stream:
                return list(stream)

        async def collect() -> list[Any]:
            async with await self._method(path)(stream=True, **kwargs) as stream:
                return [item async for item in stream]

        return self._run(collect())

    def responses_stream(self, **kwargs: Any) -> tuple[list[Any], Any]:
        """client.responses.stream(...): its events and get_final_response()."""
        if self._loop is None:
            assert isinstance(self.client, openai.OpenAI)
            with self.client.responses.stream(**kwargs) as stream:
                return list(stream), stream.get_final_response()

        async def collect() -> tuple[list[Any], Any]:
            assert isinstance(self.client, openai.AsyncOpenAI)
            async with self.client.responses.stream(**kwargs) as stream:
                return [event async for event in stream], await stream.get_final_response()

        return self._run(collect())

    def chat_stream(self, **kwargs: Any) -> Any:
        """client.chat.completions.stream(...): the SDK's own accumulation, get_final_completion()."""
        if self._loop is None:
            assert isinstance(self.client, openai.OpenAI)
            with self.client.chat.completions.stream(**kwargs) as stream:
                return stream.get_final_completion()

        async def collect() -> Any:
            assert isinstance(self.client, openai.AsyncOpenAI)
            async with self.client.chat.completions.stream(**kwargs) as stream:
                return await stream.get_final_completion()

        return self._run(collect())

    def close(self) -> None:
        if isinstance(self.client, openai.OpenAI):
            self.client.close()
        else:
            self._run(self.client.close())
        if self._loop is not None:
            self._loop.close()

    def _method(self, path: str) -> Any:
        target: Any = self.client
        for name in path.split("."):
            target = getattr(target, name)
        return target

    def _run(self, coroutine: Any) -> Any:
        assert self._loop is not None
        return self._loop.run_until_complete(coroutine)


@pytest.fixture(params=["sync", "async"])
def make_api(request: pytest.FixtureRequest, sim: Simulator) -> Iterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(simulator: Simulator = sim, **client_kwargs: Any) -> Api:
        options = {"base_url": simulator.base_url, "api_key": "sk-test", "max_retries": 0, **client_kwargs}
        if request.param == "sync":
            api = Api(openai.OpenAI(**options), None)
        else:
            api = Api(openai.AsyncOpenAI(**options), asyncio.new_event_loop())
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()

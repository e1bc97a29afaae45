"""Fixtures for the simulator tests: a running simulator, and the real openai SDK driven the same
way whether the client is sync or async (one `api` fixture parametrized over both, no twin tests)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from sim_helpers import FAST, Api

from otel_llm.simulator import Simulator


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[Simulator]:
    with Simulator(config=FAST) as simulator:
        yield simulator


@pytest.fixture
def sim(shared_sim: Simulator) -> Simulator:
    """The shared instant simulator, with its stats, cache, sequences and limits forgotten."""
    shared_sim.reset()
    return shared_sim


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Simulator]]:
    """A simulator of its own, for a test that needs a non-default config."""
    started: list[Simulator] = []

    def make(**overrides: Any) -> Simulator:
        simulator = Simulator(config=dataclasses.replace(FAST, **overrides)).start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


def _new_api(flavor: str, simulator: Simulator, **client_kwargs: Any) -> Api:
    options = {"base_url": simulator.base_url, "api_key": "sk-test", "max_retries": 0, **client_kwargs}
    if flavor == "sync":
        return Api(openai.OpenAI(**options), None)
    return Api(openai.AsyncOpenAI(**options), asyncio.new_event_loop())


@pytest.fixture(scope="session", params=["sync", "async"])
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def shared_api(flavor: str, shared_sim: Simulator) -> Iterator[Api]:
    # Clients are shared because building one costs the SDK tens of milliseconds.
    api = _new_api(flavor, shared_sim)
    yield api
    api.close()


@pytest.fixture
def api(shared_api: Api, sim: Simulator) -> Api:
    """A client of the shared simulator (reset for this test), sync or async."""
    return shared_api


@pytest.fixture
def make_api(flavor: str, sim: Simulator) -> Iterator[Callable[..., Api]]:
    """Clients with other options or of another simulator, in the test's flavor."""
    made: list[Api] = []

    def make(simulator: Simulator = sim, **client_kwargs: Any) -> Api:
        made.append(_new_api(flavor, simulator, **client_kwargs))
        return made[-1]

    yield make
    for api in made:
        api.close()

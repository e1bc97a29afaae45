"""Helpers shared by the simulator tests (a module, not conftest, so tests can import them)."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from collections.abc import Coroutine
from typing import Any, TypeVar

import openai

from otel_llm.simulator import SimulatorConfig

T = TypeVar("T")

# The documented tokenizer rule, restated here on purpose rather than imported, so that the tests
# check the simulator against the documentation and not against itself.
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def chat_prompt_tokens(*contents: str) -> int:
    """3 framing tokens per message plus its text, plus 3 priming the reply."""
    return sum(tokens(content) + 3 for content in contents) + 3


# Instant and with near-zero retry waits, so SDK retries cost milliseconds.
FAST = SimulatorConfig(latency_scale=0, retry_after=0.001, retry_after_5xx=0.001)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A raw POST (no SDK), for wire-level checks; returns status, headers, body even on errors."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer sk-test", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


class Api:
    """One SDK client, sync or async, called through the same synchronous methods."""

    def __init__(
        self, client: openai.OpenAI | openai.AsyncOpenAI, loop: asyncio.AbstractEventLoop | None
    ) -> None:
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
                items: list[Any] = list(stream)
                return items

        async def collect() -> list[Any]:
            async with await self._method(path)(stream=True, **kwargs) as stream:
                items: list[Any] = [item async for item in stream]
                return items

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
                events: list[Any] = [event async for event in stream]
                return events, await stream.get_final_response()

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

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return self._loop.run_until_complete(coroutine)

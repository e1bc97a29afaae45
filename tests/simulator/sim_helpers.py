"""Helpers shared by the simulator tests (a module, not conftest, so tests can import them)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

from otel_llm.simulator import SimulatorConfig

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

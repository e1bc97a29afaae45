"""A hostile OpenAI-compatible gateway on loopback: each path answers a chat completion with one of the bad
responses that real gateways (and attackers behind them) send, so tests can show the app gets exactly what
it would get without otel_llm and that no bad number reaches the sums."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.stack.stackservers import serving

LEAKED_KEY = "sk-proj-LEAKEDabcdefghijklmnopqrstuvwxyz0123456789"


def _completion(usage: Any, model: str = "gpt-4.1-2025-04-14") -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-hostile", "object": "chat.completion", "created": 1731368630, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok", "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
    }
    if usage is not ...:
        body["usage"] = usage
    return body


def _usage(prompt: Any, completion: Any = 5, **extra: Any) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": 0, **extra}


# path -> (status, headers, body text): what the gateway answers a chat completion with.
Answer = tuple[int, dict[str, str], str]
SCENARIOS: dict[str, Callable[[], Answer]] = {
    "sane": lambda: (200, {}, json.dumps(_completion(_usage(10)))),
    "huge-tokens": lambda: (200, {}, json.dumps(_completion(_usage(10**15)))),
    # JSON has no size limit on integers: Python parses this exactly, far past any float.
    "400-digit-tokens": lambda: (200, {}, json.dumps(_completion(_usage(int("9" * 400))))),
    "negative-tokens": lambda: (200, {}, json.dumps(_completion(_usage(-1_000_000, -5)))),
    "string-tokens": lambda: (200, {}, json.dumps(_completion(_usage("lots", "many")))),
    "usage-not-an-object": lambda: (200, {}, json.dumps(_completion("free"))),
    "no-usage": lambda: (200, {}, json.dumps(_completion(...))),
    # Python's json writes and reads NaN; a gateway's serializer may too.
    "nan-cost": lambda: (200, {}, json.dumps(_completion(_usage(10, cost=float("nan"))))),
    "absurd-cost-header": lambda: (200, {"x-litellm-response-cost": "1e20"}, json.dumps(_completion(_usage(10)))),
    "negative-cost": lambda: (200, {}, json.dumps(_completion(_usage(10, cost=-50.0)))),
    "401-with-key": lambda: (401, {}, json.dumps({"error": {
        "message": f"Incorrect API key provided: {LEAKED_KEY[:8]}****{LEAKED_KEY[-4:]}. Full key {LEAKED_KEY}.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})),
    "not-json": lambda: (200, {}, "<html>502 Bad Gateway</html>"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        scenario = self.path.split("/")[1]
        status, headers, text = SCENARIOS[scenario]()
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def hostile_gateway() -> Iterator[str]:
    """The gateway's root URL on a free loopback port; `{root}/{scenario}/v1` is a base URL."""
    with serving(_Handler) as root:
        yield root

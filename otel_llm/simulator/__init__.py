"""An offline OpenAI-compatible API server on loopback, for tests, demos and benchmarks.

Serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses (each plain and
streamed where OpenAI streams) and /v1/models, with token usage computed by a documented tokenizer
(`tokenizer.py`), deterministic replies, prompt-prefix caching, reasoning tokens, realistic latency,
and faults on demand (`faults.py`). `GET /_simulator/stats` reports what was served. See README.md
in this folder.

    with Simulator(config=SimulatorConfig(latency_scale=0)) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="sk-test")
"""

from __future__ import annotations

from .cli import main
from .config import SimulatorConfig
from .faults import HEADER_FAIL, HEADER_FAIL_SEQUENCE, HEADER_REQUEST_ID
from .models import DEFAULT_MODELS, ModelSpec, is_reasoning_model
from .server import Simulator
from .tokenizer import count_tokens, message_pieces, tokenize

__all__ = [
    "DEFAULT_MODELS",
    "HEADER_FAIL",
    "HEADER_FAIL_SEQUENCE",
    "HEADER_REQUEST_ID",
    "ModelSpec",
    "Simulator",
    "SimulatorConfig",
    "count_tokens",
    "is_reasoning_model",
    "main",
    "message_pieces",
    "tokenize",
]

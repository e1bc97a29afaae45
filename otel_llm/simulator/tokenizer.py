"""The simulator's tokenizer: a documented rule simple enough for a test to recompute by hand.

A token is a run of word characters or one other non-space character::

    TOKEN_PATTERN = re.compile(r"\\w+|[^\\w\\s]")
    count_tokens("Hello, world!") == 4      # "Hello" "," "world" "!"

A chat prompt (and a Responses input) is framed the way OpenAI's cookbook counts it: every message
costs 3 framing tokens plus its text, and the reply is primed with 3 more::

    prompt_tokens = sum(count_tokens(text) + 3 for each message) + 3

Real BPE counts differ, but no test may depend on them: what matters is that the simulator's numbers
are exact and reproducible, so the instrumentation's arithmetic can be checked to the token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "MESSAGE_OVERHEAD",
    "REPLY_PRIMING",
    "TOKEN_PATTERN",
    "count_tokens",
    "message_pieces",
    "tokenize",
]

TOKEN_PATTERN: Final = re.compile(r"\w+|[^\w\s]")
MESSAGE_OVERHEAD: Final = 3
REPLY_PRIMING: Final = 3


def tokenize(text: str) -> list[str]:
    """Split text into the simulator's tokens."""
    return TOKEN_PATTERN.findall(text)


def count_tokens(text: str) -> int:
    """Count the simulator's tokens in text."""
    return sum(1 for _ in TOKEN_PATTERN.finditer(text))


def message_pieces(messages: Iterable[tuple[str, str]]) -> list[str]:
    """The token sequence of a framed conversation; its length is the prompt's token count.

    The framing pieces are real sequence elements, not just a count, because prompt caching
    matches prefixes of this sequence: two prompts that differ only in a role must not share a prefix.
    """
    pieces: list[str] = []
    for role, text in messages:
        pieces += _frame(role)
        pieces += tokenize(text)
    pieces += _frame("assistant")
    return pieces


def _frame(role: str) -> Sequence[str]:
    return ("<|start|>", role, "<|message|>")

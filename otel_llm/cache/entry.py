"""Which stored entry a call may be served: the SDK type its operation returns, and that type's shape.

The key keeps operations apart, but an entry may still be of another type (a Redis shared with
another app or version, a hand-written or hostile value): an embedding served where a chat answer
is expected crashes the app on `resp.choices`. So before anything is served, the entry's type must
be the one this call returns and its body must carry that type's `object` tag and list field; the
same check runs before anything is stored. Anything else is an `InvalidEntry`: a counted miss.
"""

from __future__ import annotations

from typing import Any, Final

from .. import semconv as sc

__all__ = ["InvalidEntry", "check_entry", "expected_type"]

# SDK class -> (its `object` tag, the list field an app reads first)
_SHAPES: Final = {
    "ChatCompletion": ("chat.completion", "choices"),
    "ChatCompletionChunk": ("chat.completion.chunk", "choices"),
    "Completion": ("text_completion", "choices"),
    "CreateEmbeddingResponse": ("list", "data"),
    "Response": ("response", "output"),
}


class InvalidEntry(ValueError):
    """An entry that is not what this call returns: never served."""


def expected_type(operation: str, events: bool, streaming: bool) -> str | None:
    """The SDK class name a call of this kind returns (for a stream, its chunks); None: nothing is."""
    if operation == sc.OP_CHAT:
        if events:
            return None if streaming else "Response"
        return "ChatCompletionChunk" if streaming else "ChatCompletion"
    if operation == sc.OP_TEXT_COMPLETION:
        return "Completion"  # a stream's chunks are Completions too
    if operation == sc.OP_EMBEDDINGS and not streaming:
        return "CreateEmbeddingResponse"
    return None


def check_entry(expected: str | None, name: object, body: object, streaming: bool) -> None:
    """Raise InvalidEntry unless `body` (a list of chunks when streaming) is an `expected` object."""
    if expected is None or name != expected:
        raise InvalidEntry(f"a {_short(name)} entry where a {expected!r} is expected")
    items: list[Any] = body if streaming and isinstance(body, list) else [body]
    if streaming and not (isinstance(body, list) and body):
        raise InvalidEntry("stream entry is not a list of chunks")
    tag, field = _SHAPES[expected]
    for item in items:
        if not isinstance(item, dict):
            raise InvalidEntry("entry body is not an object")
        if item.get("object", tag) != tag:
            raise InvalidEntry(f"entry body is a {_short(item.get('object'))}, not a {tag!r}")
        value = item.get(field)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise InvalidEntry(f"entry body has no list of {field}")


def _short(value: object) -> str:
    """A stored value fit for a log line: whoever wrote the entry chose it, so it is cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

"""Request bodies -> the token pieces the simulator bills, with OpenAI-style 400s for bad shapes.

Chat messages and Responses input items become (role, text) pairs framed by
`tokenizer.message_pieces`. Only text counts: text parts of a content list are joined with newlines;
image, audio and file parts, tool definitions and tool-call arguments are accepted and ignored.
Legacy completions and embeddings inputs are unframed: a string is tokenized, a list of integers is
already tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .replies import ApiError
from .tokenizer import message_pieces, tokenize

__all__ = ["chat_pieces", "input_pieces", "responses_pieces"]


def chat_pieces(body: Mapping[str, Any]) -> list[str]:
    """Framed prompt pieces of a chat completions request."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages", "'messages' must be a non-empty array of message objects.")
    pairs: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _invalid(f"messages.[{index}]", f"Invalid message at 'messages[{index}]': missing role.")
        pairs.append((message["role"], _text(message.get("content"))))
    return message_pieces(pairs)


def responses_pieces(body: Mapping[str, Any]) -> list[str]:
    """Framed prompt pieces of a Responses request: instructions as a developer message, then input."""
    pairs: list[tuple[str, str]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        pairs.append(("developer", instructions))
    items = body.get("input")
    if isinstance(items, str):
        pairs.append(("user", items))
    elif isinstance(items, list) and items:
        pairs += [_item_pair(item) for item in items if isinstance(item, dict)]
    else:
        raise _invalid("input", "'input' must be a string or a non-empty array of input items.")
    return message_pieces(pairs)


def input_pieces(body: Mapping[str, Any], param: str) -> list[list[str]]:
    """Unframed pieces of each input of a legacy completions (`prompt`) or embeddings (`input`) call."""
    value = body.get(param)
    if isinstance(value, str) or _is_token_list(value):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _invalid(param, f"'{param}' must be a string, an array of strings or an array of token arrays.")
    inputs: list[list[str]] = []
    for item in value:
        if isinstance(item, str) and item:
            inputs.append(tokenize(item))
        elif _is_token_list(item) and item:
            inputs.append([str(token) for token in item])
        else:
            raise _invalid(param, f"'{param}' items must be non-empty strings or token arrays.")
    return inputs


def _item_pair(item: Mapping[str, Any]) -> tuple[str, str]:
    if isinstance(item.get("role"), str):
        return item["role"], _text(item.get("content"))
    if item.get("type") == "function_call_output":
        return "tool", _text(item.get("output"))
    return "assistant", ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        return "\n".join(text for text in texts if isinstance(text, str))
    return ""


def _is_token_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(token, int) for token in value) and bool(value)


def _invalid(param: str, message: str) -> ApiError:
    return ApiError(400, message, param=param)

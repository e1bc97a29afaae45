"""Opt-in content capture in the GenAI semantic conventions' message shape (roles, parts, finish reason).

`gen_ai.input.messages`, `gen_ai.output.messages` and `gen_ai.system_instructions` are JSON of the
conventions' schemas (gen-ai-input-messages.json, gen-ai-output-messages.json), the same for plain
calls and streams. Readers are tolerant: an SDK object or a dict, any field missing; what cannot be
mapped becomes a generic part rather than an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from .extract import fields

__all__ = ["input_messages", "output_messages", "stream_output", "system_instructions", "to_json"]

Part = dict[str, Any]
Message = dict[str, Any]
_LIMIT: Final = 16384  # characters per attribute: content can be large, a span should not be
# OpenAI's finish reasons -> the conventions' (others pass through as strings, which the schema allows).
_FINISH: Final = {"tool_calls": "tool_call", "function_call": "tool_call", "max_output_tokens": "length",
                  "completed": "stop", "failed": "error"}
_ROLES: Final = {"developer": "system"}


def to_json(value: object) -> str:
    """Compact JSON, bounded. A truncated value is no longer valid JSON: it says so at its end."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= _LIMIT else text[:_LIMIT] + "...(truncated)"


def _text(content: object) -> Part:
    return {"type": "text", "content": content if isinstance(content, str) else str(content)}


def _finish(reason: object) -> str:
    if not isinstance(reason, str) or not reason:
        return "stop"
    return _FINISH.get(reason, reason)


def _content_parts(content: object) -> list[Part]:
    """A message's `content`: a string, or a list of typed parts (text, image, audio, file, refusal)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [_text(content)]
    parts: list[Part] = []
    for item in content if isinstance(content, (list, tuple)) else ():  # any other iterable is the SDK's to consume
        get = fields(item).get
        kind = get("type")
        if kind in ("text", "input_text", "output_text", "refusal"):
            parts.append(_text(get("text") if kind != "refusal" else get("refusal")))
        elif kind in ("image_url", "input_image"):
            url = get("image_url")
            url = fields(url).get("url") if not isinstance(url, str) and url is not None else url
            parts.append({"type": "uri", "modality": "image", "uri": url if isinstance(url, str) else ""})
        elif isinstance(kind, str):
            parts.append({"type": kind})  # audio, files: named, not copied
    return parts


def _tool_calls(calls: object) -> list[Part]:
    parts: list[Part] = []
    for call in calls if isinstance(calls, (list, tuple)) else ():
        get = fields(call).get
        function = fields(get("function")).get
        parts.append({"type": "tool_call", "id": get("id"), "name": function("name") or "",
                      "arguments": function("arguments")})
    return parts


def _message(item: object) -> Message:
    get = fields(item).get
    role = get("role") or "user"
    role = _ROLES.get(role, role)
    if get("type") == "function_call_output" or role == "tool":  # a tool's answer
        result = get("output") if get("output") is not None else get("content")
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": get("call_id") or get("tool_call_id"),
                                           "response": result}]}
    if get("type") == "function_call":
        return {"role": "assistant", "parts": [{"type": "tool_call", "id": get("call_id"), "name": get("name") or "",
                                                "arguments": get("arguments")}]}
    return {"role": role, "parts": _content_parts(get("content")) + _tool_calls(get("tool_calls"))}


def input_messages(kwargs: Mapping[str, Any]) -> list[Message] | None:
    """The request's messages (chat), input (Responses, embeddings) or prompt (completions)."""
    messages = kwargs.get("messages")
    if isinstance(messages, (list, tuple)):  # a generator is the SDK's to consume, once: not read
        return [_message(m) for m in messages]
    for name in ("input", "prompt"):
        value = kwargs.get(name)
        if isinstance(value, str):
            return [{"role": "user", "parts": [_text(value)]}]
        if isinstance(value, list):
            if all(isinstance(v, str) for v in value):
                return [{"role": "user", "parts": [_text(v) for v in value]}]
            if all(isinstance(v, (dict, Mapping)) or hasattr(v, "__dict__") for v in value):
                return [_message(v) for v in value]
            return [{"role": "user", "parts": [{"type": "tokens"}]}]  # token ids: named, not copied
    return None


def system_instructions(kwargs: Mapping[str, Any]) -> list[Part] | None:
    instructions = kwargs.get("instructions")
    return [_text(instructions)] if isinstance(instructions, str) else None


def output_messages(result: object) -> list[Message]:
    """A whole response's output: chat or completion choices, or a Responses API output list."""
    get = fields(result).get
    choices = get("choices")
    if isinstance(choices, list):
        out = []
        for choice in choices:
            c = fields(choice).get
            message = c("message")
            if message is not None:
                m = _message(message)
                m["role"] = m["role"] if m["role"] != "user" else "assistant"
            else:  # a legacy completion
                m = {"role": "assistant", "parts": [_text(c("text") or "")]}
            m["finish_reason"] = _finish(c("finish_reason"))
            out.append(m)
        return out
    output = get("output")
    details = get("incomplete_details")
    reason = _finish((fields(details).get("reason") if details is not None else None) or get("status"))
    parts: list[Part] = []
    for item in output if isinstance(output, list) else ():
        m = _message(item)
        parts.extend(m["parts"])
    return [{"role": "assistant", "parts": parts, "finish_reason": reason}]


def stream_output(text: str, reasons: tuple[str, ...]) -> list[Message]:
    """A stream's output, as a whole response's would read (the first choice's text)."""
    return [{"role": "assistant", "parts": [_text(text)] if text else [],
             "finish_reason": _finish(reasons[0] if reasons else None)}]

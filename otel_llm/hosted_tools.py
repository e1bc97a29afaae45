"""The tools a Responses API call ran on the provider's side, and what OpenAI charges per call for them.

A Responses call given `tools=[{"type": "web_search"}]` (or file search, code interpreter, image
generation) may run that tool several times; each run is an item of the response's `output`
(`web_search_call`, ...). OpenAI bills web and file search per call on top of the tokens, by the "Built-in
tools" table of https://openai.com/api/pricing as a user quoted it on OpenAI's developer forum, with the
replies confirming which models pay which rate (community.openai.com t/1363698, 2025-11), and as two price
trackers list it (modelcostwatch.com, 2026-03):

| tool | USD per call | note |
|---|---|---|
| web_search | 0.010 | plus search content tokens at the model's rates |
| web_search_preview, reasoning models (o-series, gpt-5) | 0.010 | as web_search |
| web_search_preview, other models (gpt-4o, gpt-4.1, gpt-5-chat) | 0.025 | search content tokens free |
| file_search | 0.0025 | vector storage is billed per GB-day, outside any call |

Code interpreter (per container session) and image generation (at the image model's token rates, not in
the call's usage) are billed by measures a call does not carry: their runs are counted, not priced, unless
a prices file sets a fee per run (`hosted_tools:`, globally or per base URL), which wins over the list.

OpenAI's support has said one web search call may run several billed sub-searches the response does not
show: the fee here is what the response shows, a floor of the bill. Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

__all__ = ["MAX_CALLS", "TOOLS", "Fees", "count", "fees", "searches_preview"]

WEB_SEARCH: Final = "web_search"
FILE_SEARCH: Final = "file_search"
CODE_INTERPRETER: Final = "code_interpreter"
IMAGE_GENERATION: Final = "image_generation"
# The response's output item type -> the tool (a bounded set: the metric label's values).
_ITEMS: Final = {
    "web_search_call": WEB_SEARCH,
    "file_search_call": FILE_SEARCH,
    "code_interpreter_call": CODE_INTERPRETER,
    "image_generation_call": IMAGE_GENERATION,
}
TOOLS: Final = frozenset(_ITEMS.values())
# More tool runs than any real response holds: a gateway's bug or an attacker's response, not believed.
MAX_CALLS: Final = 1_000

WEB_SEARCH_PREVIEW: Final = "web_search_preview"  # a web search run on a request naming the preview tool
_PER_CALL: Final = {WEB_SEARCH: 0.010, WEB_SEARCH_PREVIEW: 0.010, FILE_SEARCH: 0.0025}
_PREVIEW_OTHER_MODELS: Final = 0.025
# o1, o3, o4-mini, gpt-5, gpt-5.1-mini, openai/o3, ...; not gpt-5-chat-latest, which does not reason.
_REASONING: Final = re.compile(r"(?:[^/]*/)?(?:o\d|gpt-5(?![\w.-]*chat))")


class Fees(NamedTuple):
    usd: float  # the fees of the priced tool calls
    unpriced: tuple[str, ...]  # tools that ran and are not in `usd`


def count(output: object, get: Callable[[object], Mapping[str, Any]]) -> tuple[tuple[str, int], ...]:
    """(tool, runs) of a Responses API `output` list, by tool name; `get(item)` gives an item's fields."""
    if not isinstance(output, list) or not output:
        return ()
    found: dict[str, int] = {}
    for item in output:
        kind = get(item).get("type")
        tool = _ITEMS.get(kind) if isinstance(kind, str) else None  # a hostile `type` may be unhashable
        if tool is not None:
            found[tool] = found.get(tool, 0) + 1
    return tuple(sorted(found.items()))


def searches_preview(tools: object) -> bool:
    """The request's `tools` name the preview web search (billed higher on non-reasoning models). Only a
    list or tuple is read: any other iterable (a generator) is the SDK's to consume, once."""
    if not isinstance(tools, (list, tuple)):
        return False
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, Mapping) else getattr(tool, "type", None)
        if isinstance(kind, str) and kind.startswith("web_search_preview"):
            return True
    return False


def fees(calls: tuple[tuple[str, int], ...], model: str, preview: bool, openai_list: bool,
         fee_of: Callable[[str], float | None]) -> Fees:
    """The per-run fees of `calls`: `fee_of(tool)` (a prices file's) first, else OpenAI's list fee where the
    call's prices are OpenAI's (`openai_list`: its API, or a gateway billing OpenAI's list price); a tool
    with neither is unpriced. A web search run of a request naming the preview tool is `web_search_preview`."""
    usd = 0.0
    unpriced: list[str] = []
    for tool, runs in calls:
        key = WEB_SEARCH_PREVIEW if tool == WEB_SEARCH and preview else tool
        fee = fee_of(key)
        if fee is None and openai_list:
            fee = _PER_CALL.get(key)
            if key == WEB_SEARCH_PREVIEW and not _REASONING.match(model):
                fee = _PREVIEW_OTHER_MODELS
        if fee is None:
            unpriced.append(tool)
        else:
            usd += fee * runs
    return Fees(usd, tuple(unpriced))

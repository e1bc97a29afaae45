"""The one module that knows the openai SDK's internals: class names, private fields, its transport.

Everything else asks here. The SDK's private names change between releases (openai 1.x to 3.x), so
each touch is tolerant: a name that is missing answers "no" rather than raising.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from types import FunctionType, ModuleType
from typing import Any, Final

__all__ = [
    "RAW_RESPONSE_HEADER", "base_url_of", "chunk_source", "client_of", "default_query", "given", "helper_raw_stream",
    "is_sentinel", "is_stream", "raw_kind", "raw_request", "set_parsed", "transport",
]

# Set by `with_raw_response` ("raw") and `with_streaming_response` ("stream") on the request they make.
RAW_RESPONSE_HEADER: Final = "X-Stainless-Raw-Response"
_SENTINELS: Final = frozenset({"NotGiven", "Omit"})
_STREAMS: Final = frozenset({"Stream", "AsyncStream"})
_TRANSPORTS: Final = ("httpx2", "httpx")  # openai 3.x, then 1.x and 2.x


def is_sentinel(value: object) -> bool:
    """The SDK's NotGiven / Omit: a parameter the app did not pass."""
    return type(value).__name__ in _SENTINELS


def given(value: object) -> bool:
    """A parameter the app passed: not None and not the SDK's NotGiven / Omit sentinels."""
    return value is not None and type(value).__name__ not in _SENTINELS


def is_stream(value: object) -> bool:
    """The SDK's own Stream or AsyncStream."""
    return type(value).__name__ in _STREAMS


def chunk_source(stream: Any, is_async: bool) -> Any:
    """What a stream proxy iterates for `stream`'s chunks: the SDK stream's own `_iterator` when its
    class's `__iter__` / `__aiter__` only passes that iterator's items on (openai 1.x to 3.x: `for item
    in self._iterator: yield item`), so the proxy's generator replaces the SDK's instead of adding a
    second one per chunk; anything else (another shape, a subclass that iterates otherwise, a method
    another library wrapped), the stream."""
    method = getattr(type(stream), "__aiter__" if is_async else "__iter__", None)
    if type(method) is not FunctionType:  # e.g. another library's wrapt wrapper: it must still run
        return stream
    if not _passes_through(method.__code__, is_async):
        return stream
    source = getattr(stream, "_iterator", None)
    return stream if source is None else source


def _passes_through(code: Any, is_async: bool) -> bool:
    """The generator `for item in self._iterator: yield item` (or its async form), read from its code."""
    kind = inspect.CO_ASYNC_GENERATOR if is_async else inspect.CO_GENERATOR
    return bool(code.co_flags & kind) and code.co_names == ("_iterator",) and code.co_varnames == ("self", "item")


def raw_kind(value: object) -> str | None:
    """`legacy` for `with_raw_response`'s LegacyAPIResponse, `sync` / `async` for
    `with_streaming_response`'s APIResponse / AsyncAPIResponse, else None."""
    name = type(value).__name__
    if name == "LegacyAPIResponse":
        return "legacy"
    if name == "APIResponse":
        return "sync"
    if name == "AsyncAPIResponse":
        return "async"
    return None


def raw_request(kwargs: Mapping[str, Any]) -> bool:
    """The app reads this request's raw response (headers, bytes, lines), not only parsed objects."""
    headers = kwargs.get("extra_headers")
    return isinstance(headers, Mapping) and RAW_RESPONSE_HEADER in headers


def client_of(resource: Any) -> Any:
    """The client (OpenAI, AsyncOpenAI, Azure...) a resource such as `client.chat.completions` belongs to."""
    return resource._client


def base_url_of(client: Any, state: Mapping[str, Any]) -> Any:
    """The client's base URL object, read from its instance dict (`state`) without the property's cost."""
    url = state.get("_base_url")
    return url if url is not None else getattr(client, "base_url", "")


def default_query(client: Any) -> Mapping[str, Any]:
    """The query the client adds to every request (an Azure client's `api-version`): its
    `default_query`, or where the release has no such property (openai 1.26) its `_custom_query`."""
    query = getattr(client, "default_query", None)
    if query is None:
        query = getattr(client, "_custom_query", None)
    return query if isinstance(query, Mapping) else {}


def set_parsed(raw: Any, value: Any) -> None:
    """Make `raw.parse()` return `value`: the LegacyAPIResponse caches its parse per type."""
    raw._parsed_by_type[raw._cast_to] = value


def helper_raw_stream(helper: Any) -> Any:
    """The SDK stream under a stream helper (ChatCompletionStream, ResponseStream), or None."""
    return getattr(helper, "_raw_stream", None)


def transport(client: Any) -> ModuleType:
    """The HTTP library module (httpx or httpx2) the client sends with: taken from the client's own
    HTTP client, so a cached response is built from the classes the SDK reads."""
    http = getattr(client, "_client", None)
    for cls in type(http).__mro__ if http is not None else ():
        top = cls.__module__.split(".")[0]
        if top in _TRANSPORTS:
            return importlib.import_module(top)
    for name in _TRANSPORTS:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("neither httpx2 nor httpx is installed")

"""Pure functions: request kwargs, responses and usage objects -> attributes and token counts.

They read the SDK's objects with `getattr` and tolerate anything: a gateway may send a field as
null, omit it, or use a type the SDK did not expect. Nothing here raises on odd input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

from . import hosted_tools
from . import semconv as sc
from .pricing import Usage
from .sdk import base_url_of, default_query

__all__ = [
    "SENDS_STREAM_USAGE",
    "STREAM_USAGE",
    "Endpoint",
    "accepts_stream_usage",
    "ResponseInfo",
    "client_endpoint",
    "endpoint",
    "fields",
    "request_attributes",
    "response_info",
    "usage_of",
]

# Exact hosts and host suffixes -> gen_ai.provider.name.
_HOSTS: Final = {
    "api.openai.com": "openai",
    "api.deepseek.com": "deepseek",
    "api.x.ai": "x_ai",
    "api.groq.com": "groq",
    "api.mistral.ai": "mistral_ai",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "api.anthropic.com": "anthropic",
    "openrouter.ai": "openrouter",
    "api.together.xyz": "together",
    "api.fireworks.ai": "fireworks",
    "api.perplexity.ai": "perplexity",
    "api.cerebras.ai": "cerebras",
}
_SUFFIXES: Final = (
    (".openai.azure.com", "azure.ai.openai"),
    (".cognitiveservices.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.openai"),
)
# Any other OpenAI-compatible server (a gateway, vLLM, Ollama): one bounded value; the host itself
# is in server.address.
OTHER_PROVIDER: Final = "openai_compatible"

# Providers that accept `stream_options.include_usage` (`OTEL_LLM_INCLUDE_STREAM_USAGE=auto` asks
# them for the usage chunk), each with where that is documented. Not listed, so not asked: Mistral,
# xAI, Gemini, Anthropic, Perplexity and Cerebras (not confirmed; their unmetered streams are
# counted in otel_llm.calls.unmetered and warned about, naming the setting that asks anyway).
STREAM_USAGE: Final = {
    "openai": "platform.openai.com/docs/api-reference/chat/create (stream_options.include_usage)",
    # Azure rejects the parameter before api-version 2024-09-01-preview (400 "Unrecognized request
    # argument"; openai/openai-python#1469); GA from 2024-10-21 (Azure/azure-rest-api-specs inference.yaml).
    "azure.ai.openai": "learn.microsoft.com/azure/ai-services/openai/reference, api-version >= 2024-09-01",
    "openrouter": "openrouter.ai/docs/use-cases/usage-accounting (accepted; usage is always sent)",
    "fireworks": "reference.langchain.com langchain-fireworks stream_usage (opts in to include_usage by default)",
    # The next three document an OpenAI-compatible chat API with `stream_options`; we did not find their
    # own reference pages in our search corpus, so these rest on client libraries (ds-api's
    # StreamOptions for DeepSeek) and on issue 15's check. A server that rejected it would fail the
    # stream with a 400: OTEL_LLM_INCLUDE_STREAM_USAGE=never, or a list of hosts, overrides `auto`.
    "deepseek": "api-docs.deepseek.com/api/create-chat-completion; docs.rs ds-api StreamOptions",
    "groq": "console.groq.com/docs/api-reference#chat-create (stream_options)",
    "together": "docs.together.ai/reference/chat-completions-1 (stream_options)",
    # Any other host is a gateway or a server implementing the OpenAI API: LiteLLM
    # (docs.litellm.ai/docs/completion/usage), vLLM and Ollama (their OpenAI-compatible servers),
    # llamafile, and our simulator all accept it. Asking costs one chunk that the stream proxy hides;
    # a server that ignores it leaves the call unmetered, which is counted and warned about.
    OTHER_PROVIDER: "OpenAI-compatible servers: LiteLLM, vLLM, Ollama, the otel-llm simulator",
}
_AZURE_STREAM_USAGE_SINCE: Final = "2024-09-01"
# Providers that send the usage chunk whether asked or not: never asked, since asking would make the stream
# proxy hide a chunk the app gets without us, and the usage arrives anyway. OpenRouter: its SDK's
# ChatStreamOptions (openrouter.ai/docs/client-sdks/typescript/models/chatstreamoptions): "includeUsage
# ... has no effect. Full usage details are always included."
SENDS_STREAM_USAGE: Final = frozenset({"openrouter"})


def accepts_stream_usage(where: Endpoint, client: object) -> bool:
    """Whether `auto` asks this endpoint for the stream's usage chunk (see `STREAM_USAGE`)."""
    if where.provider not in STREAM_USAGE:
        return False
    if where.provider != "azure.ai.openai":
        return True
    version = default_query(client).get("api-version")
    return isinstance(version, str) and version[:10] >= _AZURE_STREAM_USAGE_SINCE


class Endpoint(NamedTuple):
    provider: str
    address: str
    port: int
    base_url: str


_endpoints: dict[str, Endpoint] = {}
# id(URL object) -> (that object, its Endpoint): a client keeps its URL object, so after the first
# call the lookup is one dict hit with no str() of the URL. Holding the object keeps its id unique.
_by_identity: dict[int, tuple[object, Endpoint]] = {}


def client_endpoint(client: object, state: Mapping[str, Any]) -> Endpoint:
    """The endpoint of an SDK client (`state`: its instance dict), remembered per base-URL object."""
    url = base_url_of(client, state)
    hit = _by_identity.get(id(url))
    if hit is not None and hit[0] is url:
        return hit[1]
    found = endpoint(url)
    if len(_by_identity) < 1024:
        _by_identity[id(url)] = (url, found)
    return found


def endpoint(base_url: object) -> Endpoint:
    """Provider, server address and port of a client's base URL; remembered per URL."""
    key = str(base_url)
    found = _endpoints.get(key)
    if found is not None:
        return found
    parts = urlsplit(key)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 443
    provider = _HOSTS.get(host)
    if provider is None:
        provider = next((name for suffix, name in _SUFFIXES if host.endswith(suffix)), OTHER_PROVIDER)
    found = Endpoint(provider, host, port, key.rstrip("/"))
    if len(_endpoints) < 1024:  # a bound, in case an app builds clients for ever-new URLs
        _endpoints[key] = found
    return found


# kwargs name -> attribute, for simple scalar request parameters (all three token limits are one
# attribute; an app gives one of them).
_REQUEST_SCALARS: Final = {
    "max_tokens": sc.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": sc.GEN_AI_REQUEST_MAX_TOKENS,
    "max_output_tokens": sc.GEN_AI_REQUEST_MAX_TOKENS,
    "temperature": sc.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": sc.GEN_AI_REQUEST_TOP_P,
    "frequency_penalty": sc.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": sc.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": sc.GEN_AI_REQUEST_SEED,
    "service_tier": sc.OPENAI_REQUEST_SERVICE_TIER,
}
# Parameters that need more than a type check; everything else in kwargs is passed over.
_REQUEST_OTHERS: Final = frozenset({"n", "stop", "encoding_format", "dimensions", "response_format", "conversation"})


def request_attributes(operation: str, kwargs: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    """Add the request's own gen_ai.request.* attributes to `attrs`.

    One pass over the few kwargs a call has, not one lookup per known parameter. The SDK's NotGiven
    and Omit sentinels are none of the accepted types, so they are skipped with the rest."""
    scalars = _REQUEST_SCALARS
    others = None
    for name, value in kwargs.items():
        key = scalars.get(name)
        if key is not None:
            if isinstance(value, (int, float, str)) and type(value) is not bool:
                attrs[key] = value
        elif name in _REQUEST_OTHERS:
            others = True
    if others:
        _other_request_attributes(operation, kwargs, attrs)


def _other_request_attributes(operation: str, kwargs: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    n = kwargs.get("n")
    if type(n) is int and n != 1:
        attrs[sc.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = (stop,)
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
    if operation == sc.OP_EMBEDDINGS:
        fmt = kwargs.get("encoding_format")
        if isinstance(fmt, str):
            attrs[sc.GEN_AI_REQUEST_ENCODING_FORMATS] = (fmt,)
        dims = kwargs.get("dimensions")
        if type(dims) is int:
            attrs[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dims
    fmt = kwargs.get("response_format")
    if isinstance(fmt, Mapping) and isinstance(fmt.get("type"), str):
        attrs[sc.GEN_AI_OUTPUT_TYPE] = "json" if fmt["type"].startswith("json") else fmt["type"]
    elif isinstance(fmt, type):  # a pydantic model given to .parse()
        attrs[sc.GEN_AI_OUTPUT_TYPE] = "json"
    conversation = kwargs.get("conversation")
    if isinstance(conversation, str):
        attrs[sc.GEN_AI_CONVERSATION_ID] = conversation


class _Malformed(ValueError):
    """A token count that is no count at all (a string, a fraction, NaN): the usage cannot be read."""


def _int(value: object) -> int:
    """A token count as the provider sent it. Absent is 0; a negative count is kept, so the recorder
    rejects it as beyond any real call; anything that is not a whole number makes the usage unreadable
    (never a silent 0 tokens at $0). `type() is int`: a bool is no token count."""
    if value is None:
        return 0
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():  # a sloppy gateway's 10.0
        return int(value)
    raise _Malformed(repr(value)[:40])


def fields(obj: object) -> Mapping[str, Any]:
    """The fields of an SDK model (or a dict) as a mapping, without `getattr` on absent names.

    `getattr(model, "missing", None)` costs an exception inside pydantic (about 2.5 µs); reading the
    instance dict does not. Fields a gateway sent beyond the SDK's schema live in
    `__pydantic_extra__`. The instance dict is tried first: an ABC `isinstance` check costs more.
    """
    found = getattr(obj, "__dict__", None)
    if type(found) is dict:
        extra = getattr(obj, "__pydantic_extra__", None)
        return {**found, **extra} if extra else found
    if isinstance(obj, Mapping):
        return obj
    return {}


def usage_of(usage: object) -> Usage | None:
    """Normalise a chat/completions/embeddings or responses usage object (or dict) to `Usage`; None
    when there is none, or none we can read (not an object, or counts that are not numbers): the call
    is then counted as unmetered, never as 0 tokens at $0."""
    if usage is None:
        return None
    found = fields(usage)
    if not found or found.get("type") == "duration":  # whisper-1's usage is seconds of audio, not tokens
        return None
    try:
        return _usage(found.get)
    except _Malformed:
        return None


def _usage(get: Any) -> Usage:
    if get("input_tokens") is not None or get("output_tokens") is not None:  # Responses API
        input_tokens, output_tokens = _int(get("input_tokens")), _int(get("output_tokens"))
        # The transcription API names it `input_token_details` (its audio tokens are priced apart).
        in_details = get("input_tokens_details") or get("input_token_details")
        out_details = get("output_tokens_details")
    else:
        input_tokens, output_tokens = _int(get("prompt_tokens")), _int(get("completion_tokens"))
        in_details, out_details = get("prompt_tokens_details"), get("completion_tokens_details")
    cache_read = cache_write = reasoning = audio_in = audio_out = image_in = 0
    if in_details is not None:
        d = fields(in_details).get
        cache_read = _int(d("cached_tokens"))
        cache_write = _int(d("cache_write_tokens")) or _int(d("cache_creation_tokens"))
        audio_in = _int(d("audio_tokens"))
        image_in = _int(d("image_tokens"))  # the Images API (gpt-image-1)
    if out_details is not None:
        d = fields(out_details).get
        reasoning = _int(d("reasoning_tokens"))
        audio_out = _int(d("audio_tokens"))
    # Anthropic-style gateways report cache writes at the top level.
    cache_write = cache_write or _int(get("cache_creation_input_tokens"))
    return Usage(input_tokens, output_tokens, cache_read, cache_write, reasoning, audio_in, audio_out, image_in)


class ResponseInfo(NamedTuple):
    response_id: str | None
    model: str | None
    finish_reasons: tuple[str, ...]
    usage: Usage | None
    service_tier: str | None
    system_fingerprint: str | None
    tool_calls: tuple[tuple[str, int], ...] = ()  # hosted tools the provider ran (Responses API): (tool, runs)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def response_info(result: object) -> ResponseInfo:
    """What a complete (non-stream) response says about itself."""
    get = fields(result).get
    choices = get("choices")
    reasons: tuple[str, ...] = ()
    tools: tuple[tuple[str, int], ...] = ()
    if isinstance(choices, list):
        reasons = tuple(r for r in (fields(c).get("finish_reason") for c in choices) if isinstance(r, str))
    else:
        status = _str(get("status"))  # Responses API
        if status is not None:
            details = get("incomplete_details")
            reason = _str(fields(details).get("reason")) if details is not None else None
            reasons = (reason or status,)
            tools = hosted_tools.count(get("output"), fields)
    return ResponseInfo(
        _str(get("id")),
        _str(get("model")),
        reasons,
        usage_of(get("usage")),
        _str(get("service_tier")),
        _str(get("system_fingerprint")),
        tools,
    )

"""The OpenTelemetry instrumentor: the only module that imports wrapt's patching, driven by one table.

Each row of `_PATCHES` names a method of the openai SDK and how to treat it. Rows whose module or
class does not exist in the installed SDK version are skipped, so one table serves openai 1.x to 3.x.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import sys
from collections.abc import Callable, Collection
from typing import Any, Final, NamedTuple

import wrapt
from opentelemetry import context
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from . import retries, sdk
from . import semconv as sc
from .cache import CACHED_OPERATIONS, ResponseCache, open_cache
from .call import Call
from .extract import SENDS_STREAM_USAGE, accepts_stream_usage
from .faults import report_fault
from .hosted_tools import searches_preview
from .scrub import scrub
from .settings import Settings, load_settings
from .streams import wrap_stream
from .telemetry import Telemetry

__all__ = ["OpenAIInstrumentor"]

_log = logging.getLogger("otel_llm")
_INSTRUMENTS: Final = ("openai >= 1.26, < 4",)

# The call whose SDK method is running now. A nested wrapped call (a helper that calls `create`
# inside) is passed straight through, so one logical call gives one span; the HTTP-attempt hooks
# find the call to attribute retries to here.
current_call: contextvars.ContextVar[Call | None] = contextvars.ContextVar("otel_llm_call", default=None)


class Patch(NamedTuple):
    modules: tuple[str, ...]  # candidates, first importable wins (the SDK moved modules over time)
    cls: str
    method: str
    operation: str
    is_async: bool
    events: bool = False  # streams of Responses API events rather than chat chunks
    cached: bool = True  # the response cache may serve it (the cache's own policy decides the rest)


def _rows(modules: tuple[str, ...], name: str, methods: tuple[str, ...], operation: str, events: bool = False,
          cached: bool = True) -> list[Patch]:
    return [
        Patch(modules, prefix + name, method, operation, prefix == "Async", events, cached)
        for prefix in ("", "Async")
        for method in methods
    ]


_CHAT = ("openai.resources.chat.completions.completions", "openai.resources.chat.completions")
_PATCHES: Final = (
    _rows(_CHAT, "Completions", ("create", "parse"), sc.OP_CHAT)
    + _rows(("openai.resources.beta.chat.completions",), "Completions", ("parse",), sc.OP_CHAT)
    + _rows(("openai.resources.completions",), "Completions", ("create",), sc.OP_TEXT_COMPLETION)
    + _rows(("openai.resources.embeddings",), "Embeddings", ("create",), sc.OP_EMBEDDINGS)
    # compact: a model compacts a conversation (openai 2.11 on), billed by the pass's tokens.
    + _rows(("openai.resources.responses.responses",), "Responses", ("create", "parse", "compact"), sc.OP_CHAT,
            events=True)
    # Questions a model answers about an input (openai 3.26 on): its tokens are billed as chat's; not a cached kind.
    + _rows(("openai.resources.decisions",), "Decisions", ("create",), sc.OP_CHAT, cached=False)
    + _rows(("openai.resources.images",), "Images", ("generate", "edit", "create_variation"), sc.OP_IMAGE)
    + _rows(("openai.resources.audio.transcriptions",), "Transcriptions", ("create",), sc.OP_AUDIO_TRANSCRIPTION)
    + _rows(("openai.resources.audio.translations",), "Translations", ("create",), sc.OP_AUDIO_TRANSLATION)
    + _rows(("openai.resources.audio.speech",), "Speech", ("create",), sc.OP_AUDIO_SPEECH)
    + _rows(("openai.resources.batches",), "Batches", ("create",), sc.OP_BATCH)
)

# The SDK's stream helpers close the HTTP response directly, bypassing our proxy: after their
# close(), end the proxied stream they hold.
class HelperClose(NamedTuple):
    module: str
    cls: str
    is_async: bool
    method: str = "close"


_HELPER_STREAMS: Final = (
    HelperClose("openai.lib.streaming.chat._completions", "ChatCompletionStream", False),
    HelperClose("openai.lib.streaming.chat._completions", "AsyncChatCompletionStream", True),
    HelperClose("openai.lib.streaming.responses._responses", "ResponseStream", False),
    HelperClose("openai.lib.streaming.responses._responses", "AsyncResponseStream", True),
)


def _by_module() -> dict[str, list[Patch | HelperClose]]:
    """Every candidate module name -> the rows to apply when it is imported."""
    found: dict[str, list[Patch | HelperClose]] = {}
    for patch in _PATCHES:
        for name in patch.modules:
            found.setdefault(name, []).append(patch)
    for helper in _HELPER_STREAMS:
        found.setdefault(helper.module, []).append(helper)
    return found

# Other instrumentations of the openai SDK: module -> how to turn it off.
_PEERS: Final = {
    "opentelemetry.instrumentation.genai.openai": "opentelemetry-instrumentation-genai-openai",
    "opentelemetry.instrumentation.openai_v2": "opentelemetry-instrumentation-openai-v2",
    "opentelemetry.instrumentation.openai": "OpenLLMetry (opentelemetry-instrumentation-openai)",
    "openinference.instrumentation.openai": "openinference-instrumentation-openai",
}


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """`OpenAIInstrumentor().instrument(tracer_provider=..., meter_provider=..., **settings)`.

    Settings keywords are the fields of `otel_llm.settings.Settings`; they override the environment.
    """

    def __init__(self) -> None:
        super().__init__()
        # BaseInstrumentor returns one shared instance and re-runs __init__ on every
        # `OpenAIInstrumentor()`: keep what the first one patched, or uninstrument() would forget it.
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[type, str, Any]] = []
            self._applied: set[tuple[type, str]] = set()
            self._hooked: set[str] = set()  # SDK modules whose import hook is registered (once per process)
            self.telemetry: Telemetry | None = None
            self._pid = os.getpid()  # the process that instrumented

    def instrument(self, **kwargs: Any) -> Any:
        """As BaseInstrumentor's, plus the post-fork recipe: in a forked child (a pre-fork server's
        worker), instrumenting again with the child's own providers replaces what the parent set up
        instead of being ignored as "already instrumented"."""
        if self.is_instrumented_by_opentelemetry and self._pid != os.getpid():
            self.uninstrument()
        return super().instrument(**kwargs)

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        tracer_provider = kwargs.pop("tracer_provider", None)
        meter_provider = kwargs.pop("meter_provider", None)
        kwargs.pop("logger_provider", None)
        self._pid = os.getpid()
        settings = load_settings(**kwargs)
        if not settings.enabled:
            _log.info("otel_llm: disabled by OTEL_LLM_ENABLED")
            return
        try:
            self._patch_all(Telemetry(settings, tracer_provider, meter_provider), settings)
        except Exception as exc:  # never fail the app's start-up, and never go quiet about it:
            # opentelemetry-instrument logs an ImportError from an instrumentor at debug level only.
            self._uninstrument()
            _log.error("otel_llm: could not instrument the openai SDK (%s: %s); the app runs without otel_llm's "
                       "telemetry", type(exc).__name__, scrub(str(exc)))

    def _patch_all(self, telemetry: Telemetry, settings: Settings) -> None:
        """Open the response cache, patch the SDK and its retries, look for peers."""
        telemetry.use_cache(open_cache(settings, telemetry.response_cache_requests, telemetry.ledger.lock))
        self.telemetry = telemetry
        # The SDK imports its resource modules lazily, on first use; importing them all here would add
        # ~90 ms to the app's start-up. Patch the modules already loaded now, and each other one when
        # (and if) it is imported, through one import hook per module for the life of the process: a
        # hook per instrument() would pile up in wrapt's registry across instrument/uninstrument cycles.
        for module_name, rows in _by_module().items():
            module = sys.modules.get(module_name)
            if module is not None:
                self._patch_module(telemetry, rows, module)
            elif module_name not in self._hooked:
                self._hooked.add(module_name)
                wrapt.register_post_import_hook(functools.partial(self._on_import, rows), module_name)
        for owner, name, hook in retries.hooks(current_call):  # the SDK's own retries, see retries.py
            self._wrap(owner, name, hook)
        for owner, name, replace in retries.replacements(current_call):  # plain functions: on every call
            original = vars(owner)[name]
            setattr(owner, name, replace(original))
            self._patched.append((owner, name, original))
        _warn_peers()

    def _on_import(self, rows: list[Any], module: Any) -> None:
        """An SDK module was imported: patch it if we are instrumented now (BaseInstrumentor keeps one
        instance per class, so this hook outlives instrument/uninstrument cycles), else do nothing."""
        telemetry = self.telemetry
        if telemetry is not None:
            self._patch_module(telemetry, rows, module)

    def _patch_module(self, telemetry: Telemetry, rows: list[Any], module: Any) -> None:
        """Patch one SDK module's rows (those not patched yet)."""
        try:
            for row in rows:
                owner = getattr(module, row.cls, None)
                if owner is None or row.method not in vars(owner) or (owner, row.method) in self._applied:
                    continue
                if isinstance(row, Patch):
                    wrapper = (_async_wrapper if row.is_async else _sync_wrapper)(telemetry, row)
                else:
                    wrapper = _helper_close_async if row.is_async else _helper_close
                self._wrap(owner, row.method, wrapper)
        except Exception as exc:  # a hook runs inside the app's import statement: never fail it
            report_fault("patch module", exc)

    def _wrap(self, owner: type, name: str, wrapper: Callable[..., Any]) -> None:
        self._applied.add((owner, name))
        original = vars(owner)[name]
        wrapt.wrap_function_wrapper(owner, name, wrapper)
        self._patched.append((owner, name, original))

    def _uninstrument(self, **kwargs: Any) -> None:
        while self._patched:
            owner, name, original = self._patched.pop()
            setattr(owner, name, original)
        self._applied.clear()
        self.telemetry = None  # import hooks still waiting for their module now do nothing


_peer_hooks: list[str] = []  # peers whose import hook is registered (once per process)
_peers_warned: set[str] = set()


def _warn_peers() -> None:
    """Duplicate spans are a top complaint: warn once per peer, whether it was imported before us or
    after (under `opentelemetry-instrument` the load order of instrumentors is not ours to choose)."""
    for module, label in _PEERS.items():
        if module not in _peer_hooks:
            _peer_hooks.append(module)
            wrapt.register_post_import_hook(functools.partial(_warn_peer, label), module)


def _warn_peer(label: str, _module: Any) -> None:
    if label in _peers_warned:
        return
    _peers_warned.add(label)
    _log.warning(
        "otel_llm: another openai instrumentation is loaded too (%s): every call will be traced twice. "
        "Turn it off with OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=openai,openai_v2 (or stop calling its "
        "instrument()), or turn otel_llm off with OTEL_LLM_ENABLED=false.",
        label,
    )


def _start(telemetry: Telemetry, patch: Patch, instance: Any, kwargs: dict[str, Any]) -> tuple[Call, dict[str, Any]] | None:
    """Open the call; None when our own code failed (the SDK then runs untouched)."""
    try:
        client = sdk.client_of(instance)
        streaming = kwargs.get("stream") is True
        call = telemetry.start(patch.operation, client, kwargs, streaming)
        if patch.events and searches_preview(kwargs.get("tools")):
            call.searches_preview()
        if streaming and not patch.events and _wants_usage(telemetry.settings, call, client, kwargs):
            kwargs = {**kwargs, "stream_options": {**(kwargs.get("stream_options") or {}), "include_usage": True}}
            call.ask_usage()
        return call, kwargs
    except Exception as exc:
        report_fault("start", exc)
        return None


def _wants_usage(settings: Settings, call: Call, client: Any, kwargs: dict[str, Any]) -> bool:
    """Ask for the usage chunk the app did not ask for, where the setting allows it. Never on a raw
    or streaming-response request: the app reads its bytes, and would see the extra chunk."""
    options = kwargs.get("stream_options")
    if isinstance(options, dict) and "include_usage" in options:
        return False  # the app decided, either way
    if not isinstance(options, dict) and sdk.given(options):
        return False
    if call.operation not in (sc.OP_CHAT, sc.OP_TEXT_COMPLETION) or sdk.raw_request(kwargs):
        return False
    if call.where.provider in SENDS_STREAM_USAGE:  # it comes unasked: the app would miss the chunk we hid
        return False
    if settings.include_stream_usage == "auto":
        return accepts_stream_usage(call.where, client)
    return settings.stream_usage_for(call.where.address)


def _finish(call: Call, result: Any, is_async: bool, events: bool) -> Any:
    """Hand back the SDK's own object (or a stream proxy); record what it says. Never raises."""
    try:
        if sdk.is_stream(result):
            return wrap_stream(result, call, is_async, events)
        kind = sdk.raw_kind(result)
        if kind == "legacy":
            _finish_legacy_raw(call, result, is_async, events)
            return result
        if kind is not None:
            _finish_streamed_raw(call, result, kind == "async", events)
            return result
        call.complete(result)
    except Exception as exc:
        report_fault("finish", exc)
        call.end_quietly()
    return result


def _finish_legacy_raw(call: Call, raw: Any, is_async: bool, events: bool) -> None:
    """`with_raw_response`: parse now (the SDK caches it, so the app's own parse() returns this very
    object); for a stream, put our proxy in that cache so the app iterates through it."""
    parsed = raw.parse()
    if sdk.is_stream(parsed):
        sdk.set_parsed(raw, wrap_stream(parsed, call, is_async, events))
    else:
        call.complete(parsed)


def _finish_streamed_raw(call: Call, raw: Any, is_async: bool, events: bool) -> None:
    """`with_streaming_response`: the body is read lazily, so record when the app parses it, and end
    the span when the response is closed unparsed."""
    parse, close = raw.parse, raw.close

    if is_async:

        async def async_parse(*args: Any, **kwargs: Any) -> Any:
            return _parsed(call, await parse(*args, **kwargs), True, events)

        async def async_close() -> None:
            try:
                await close()
            finally:
                call.end_quietly()

        raw.parse, raw.close = async_parse, async_close
    else:

        def sync_parse(*args: Any, **kwargs: Any) -> Any:
            return _parsed(call, parse(*args, **kwargs), False, events)

        def sync_close() -> None:
            try:
                close()
            finally:
                call.end_quietly()

        raw.parse, raw.close = sync_parse, sync_close


def _parsed(call: Call, parsed: Any, is_async: bool, events: bool) -> Any:
    try:
        if sdk.is_stream(parsed):
            return wrap_stream(parsed, call, is_async, events)
        call.complete(parsed)
    except Exception as exc:
        report_fault("parse", exc)
    return parsed


def _cache_for(telemetry: Telemetry, patch: Patch) -> ResponseCache | None:
    """The response cache, for methods it may serve (None: the wrapper pays one `if` for it)."""
    cache = telemetry.response_cache
    return (cache if cache is not None and patch.cached and patch.method == "create"
            and patch.operation in CACHED_OPERATIONS else None)


def _sync_wrapper(telemetry: Telemetry, patch: Patch) -> Callable[..., Any]:
    cache = _cache_for(telemetry, patch)

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if current_call.get() is not None:
            return wrapped(*args, **kwargs)
        started = _start(telemetry, patch, instance, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        call, kwargs = started
        token = current_call.set(call)
        scope = context.attach(call.context)
        try:
            if cache is None:
                result = wrapped(*args, **kwargs)
            else:  # a hit returns the stored response without calling the SDK
                result = cache.call(wrapped, args, kwargs, call, sdk.client_of(instance), patch.method, patch.events)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            context.detach(scope)
            current_call.reset(token)
        return _finish(call, result, False, patch.events)

    return wrapper


def _async_wrapper(telemetry: Telemetry, patch: Patch) -> Callable[..., Any]:
    cache = _cache_for(telemetry, patch)

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if current_call.get() is not None:
            return await wrapped(*args, **kwargs)
        started = _start(telemetry, patch, instance, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        call, kwargs = started
        token = current_call.set(call)
        scope = context.attach(call.context)
        try:
            if cache is None:
                result = await wrapped(*args, **kwargs)
            else:
                result = await cache.acall(wrapped, args, kwargs, call, sdk.client_of(instance), patch.method, patch.events)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            context.detach(scope)
            current_call.reset(token)
        return _finish(call, result, True, patch.events)

    return wrapper


def _end_helper_stream(instance: Any) -> None:
    try:
        raw = sdk.helper_raw_stream(instance)
        call = getattr(raw, "_self_call", None)
        if isinstance(call, Call):
            call.end_stream()
    except Exception as exc:
        report_fault("helper close", exc)


def _helper_close(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return wrapped(*args, **kwargs)
    finally:
        _end_helper_stream(instance)


async def _helper_close_async(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _end_helper_stream(instance)

"""Who caused a call: user, session, team and feature from our context or baggage, and the key's fingerprint.

`attributes()` sets a context variable, so it follows threads that copy context and asyncio tasks.
The app's own values rank first: its scope, then the request's `user` / `safety_identifier` field.
OpenTelemetry baggage fills what is still missing only when the operator trusts it
(OTEL_LLM_TRUST_BAGGAGE): W3C baggage arrives from outside the service with every HTTP request, so a
caller could otherwise charge its spend to anyone.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import hmac
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeVar

from opentelemetry import baggage

__all__ = ["Attribution", "attributes", "configure", "current", "fingerprint"]

_F = TypeVar("_F", bound=Callable[..., Any])


class Attribution(NamedTuple):
    user_id: str | None = None
    session_id: str | None = None
    team: str | None = None
    feature: str | None = None


_EMPTY: Final = Attribution()
_current: contextvars.ContextVar[Attribution] = contextvars.ContextVar("otel_llm_attribution", default=_EMPTY)

# Baggage keys read for each field, first match wins.
_BAGGAGE_KEYS: Final = MappingProxyType(
    {
        "user_id": ("user.id", "user_id", "enduser.id"),
        "session_id": ("session.id", "session_id"),
        "team": ("otel_llm.team", "team"),
        "feature": ("otel_llm.feature", "feature"),
    }
)


class _Scope:
    """Context manager and decorator in one, for sync and async functions alike."""

    def __init__(self, values: Mapping[str, str | None]) -> None:
        self._values = {k: v for k, v in values.items() if v is not None}
        self._tokens: list[contextvars.Token[Attribution]] = []

    def __enter__(self) -> Attribution:
        merged = _current.get()._replace(**self._values)
        self._tokens.append(_current.set(merged))
        return merged

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._tokens.pop())

    def __call__(self, func: _F) -> _F:
        values = self._values
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _Scope(values):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _Scope(values):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def attributes(
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    team: str | None = None,
    feature: str | None = None,
) -> _Scope:
    """Tag every LLM call inside: `with otel_llm.attributes(user_id="u1"):` or as a decorator.

    Nested scopes override only the keys they name.
    """
    return _Scope({"user_id": user_id, "session_id": session_id, "team": team, "feature": feature})


class _Policy:
    """Set by `configure()` at instrument(): whether baggage is trusted, and the fingerprint's key."""

    trust_baggage = False
    fingerprint_key: bytes | None = None


def configure(*, trust_baggage: bool, fingerprint_key: str | None) -> None:
    """Apply the settings (one instrumented SDK per process, so module state is enough)."""
    _Policy.trust_baggage = trust_baggage
    key = fingerprint_key.encode("utf-8") if fingerprint_key else None
    if key != _Policy.fingerprint_key:
        _Policy.fingerprint_key = key
        fingerprint.cache_clear()


def current(request_user: object = None) -> Attribution:
    """The attribution for a call starting now: our scope, then the request's user, then (when
    trusted) baggage."""
    scoped = _current.get()
    if scoped is not _EMPTY and None not in scoped:
        return scoped
    if scoped.user_id is None and isinstance(request_user, str) and request_user:
        scoped = scoped._replace(user_id=request_user)
    found = baggage.get_all() if _Policy.trust_baggage else None
    if found:
        fill = {}
        for field, keys in _BAGGAGE_KEYS.items():
            if getattr(scoped, field) is None:
                value = next((found[key] for key in keys if key in found), None)
                if value is not None:
                    fill[field] = str(value)
        if fill:
            scoped = scoped._replace(**fill)
    return scoped


@functools.lru_cache(maxsize=256)
def fingerprint(api_key: str | None) -> str:
    """A short one-way identifier of an API key, never the key itself: 12 hex chars of an HMAC-SHA256
    keyed with OTEL_LLM_FINGERPRINT_KEY when one is set (the same secret on every replica gives the same
    id), else of a plain SHA-256 (anyone holding a candidate key can check it against the id)."""
    if not api_key:
        return "none"
    data = api_key.encode("utf-8", "replace")
    key = _Policy.fingerprint_key
    if key is not None:
        return hmac.new(key, data, hashlib.sha256).hexdigest()[:12]
    return hashlib.sha256(data).hexdigest()[:12]

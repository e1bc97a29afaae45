"""Who caused a call: user, session, team and feature from our context or baggage, and the key's fingerprint.

`attributes()` sets a context variable, so it follows threads that copy context and asyncio tasks.
OpenTelemetry baggage serves web middleware that sets the same keys once per request. The request's
own `user` / `safety_identifier` field is the last fallback for the user id.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeVar

from opentelemetry import baggage

__all__ = ["Attribution", "attributes", "current", "fingerprint"]

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


def current(request_user: object = None) -> Attribution:
    """The attribution for a call starting now: our scope, then baggage, then the request's user."""
    scoped = _current.get()
    if scoped is not _EMPTY and None not in scoped:
        return scoped
    found = baggage.get_all()
    if found:
        fill = {}
        for field, keys in _BAGGAGE_KEYS.items():
            if getattr(scoped, field) is None:
                value = next((found[key] for key in keys if key in found), None)
                if value is not None:
                    fill[field] = str(value)
        if fill:
            scoped = scoped._replace(**fill)
    if scoped.user_id is None and isinstance(request_user, str) and request_user:
        scoped = scoped._replace(user_id=request_user)
    return scoped


@functools.lru_cache(maxsize=256)
def fingerprint(api_key: str | None) -> str:
    """A short one-way identifier of an API key: 12 hex chars of SHA-256, never the key itself."""
    if not api_key:
        return "none"
    return hashlib.sha256(api_key.encode("utf-8", "replace")).hexdigest()[:12]

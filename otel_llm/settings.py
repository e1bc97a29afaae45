"""The frozen settings object: read once from the environment, overridable by `instrument(**kwargs)`.

An invalid value is reported once, naming the variable, and falls back to its default: a typo in
an environment variable must never stop the host app from starting.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["METRIC_ATTRIBUTE_CHOICES", "Settings", "load_settings"]

_log = logging.getLogger("otel_llm")
_T = TypeVar("_T")

METRIC_ATTRIBUTE_CHOICES = frozenset({"user", "team", "api_key", "feature"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything otel_llm can be told. Field names are the `instrument()` keyword arguments."""

    enabled: bool = True
    capture_content: bool = False
    prices: str | None = None
    reference_model: str | None = None
    # "auto" (OpenAI's own API only), "always", "never", or a comma list of hosts.
    include_stream_usage: str = "auto"
    metric_attributes: frozenset[str] = frozenset({"user", "team", "api_key"})
    metric_user_limit: int = 1000
    metric_series_limit: int = 2000
    response_cache: str | None = None
    response_cache_ttl: float = 3600.0
    response_cache_max_entries: int = 10_000
    response_cache_max_bytes: int = 64 * 1024 * 1024
    response_cache_streams: bool = False
    response_cache_nondeterministic: bool = False

    def stream_usage_for(self, host: str) -> bool:
        """Whether to ask `host` for the usage chunk when the app did not."""
        mode = self.include_stream_usage
        if mode == "always":
            return True
        if mode == "never":
            return False
        if mode == "auto":
            return host == "api.openai.com"
        return host in {h.strip() for h in mode.split(",")}


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("expected a positive whole number")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("expected a positive number")
    return value


def _stream_usage(text: str) -> str:
    value = text.strip()
    if not value:
        raise ValueError("expected auto, always, never or a comma list of hosts")
    return value.lower() if value.lower() in {"auto", "always", "never"} else value


def _metric_attributes(text: str) -> frozenset[str]:
    parts = {p.strip().lower() for p in text.split(",") if p.strip()}
    if parts == {"none"}:
        return frozenset()
    unknown = parts - METRIC_ATTRIBUTE_CHOICES
    if unknown:
        raise ValueError(f"unknown {sorted(unknown)}; choose from {sorted(METRIC_ATTRIBUTE_CHOICES)} or none")
    return frozenset(parts)


def _cache_url(text: str) -> str | None:
    value = text.strip()
    if not value or value.lower() in _FALSE:
        return None
    if not value.startswith(("memory://", "redis://", "rediss://", "unix://")):
        raise ValueError("expected memory:// or redis://host:port/db")
    return value


def _text(text: str) -> str | None:
    return text.strip() or None


# variable -> (field, parser)
_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "OTEL_LLM_ENABLED": ("enabled", _bool),
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": ("capture_content", _bool),
    "OTEL_LLM_PRICES": ("prices", _text),
    "OTEL_LLM_REFERENCE_MODEL": ("reference_model", _text),
    "OTEL_LLM_INCLUDE_STREAM_USAGE": ("include_stream_usage", _stream_usage),
    "OTEL_LLM_METRIC_ATTRIBUTES": ("metric_attributes", _metric_attributes),
    "OTEL_LLM_METRIC_USER_LIMIT": ("metric_user_limit", _positive_int),
    "OTEL_LLM_METRIC_SERIES_LIMIT": ("metric_series_limit", _positive_int),
    "OTEL_LLM_RESPONSE_CACHE": ("response_cache", _cache_url),
    "OTEL_LLM_RESPONSE_CACHE_TTL": ("response_cache_ttl", _positive_float),
    "OTEL_LLM_RESPONSE_CACHE_MAX_ENTRIES": ("response_cache_max_entries", _positive_int),
    "OTEL_LLM_RESPONSE_CACHE_MAX_BYTES": ("response_cache_max_bytes", _positive_int),
    "OTEL_LLM_RESPONSE_CACHE_STREAMS": ("response_cache_streams", _bool),
    "OTEL_LLM_RESPONSE_CACHE_NONDETERMINISTIC": ("response_cache_nondeterministic", _bool),
}
ENV_VARIABLES = tuple(_ENV)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults, then the environment, then keyword overrides.

    Unknown keyword overrides raise TypeError (a programming error in the app's own code, caught at
    `instrument()` time); bad environment values only warn.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (field, parse) in _ENV.items():
        raw = env.get(name)
        if raw is None:
            continue
        try:
            values[field] = parse(raw)
        except ValueError as exc:
            default = getattr(Settings, field, None)
            _log.warning("otel_llm: ignoring %s=%r (%s); using the default %r", name, raw, exc, default)
    known = {f.name for f in dataclasses.fields(Settings)}
    for key, value in overrides.items():
        if key not in known:
            raise TypeError(f"otel_llm: unknown setting {key!r}; known: {sorted(known)}")
        if key == "metric_attributes" and not isinstance(value, frozenset):
            value = _metric_attributes(",".join(value) if not isinstance(value, str) else value)
        values[key] = value
    return Settings(**values)

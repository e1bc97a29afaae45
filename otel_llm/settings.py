"""The frozen settings object: read once from the environment, overridable by `instrument(**kwargs)`.

One parser per setting serves both paths: an environment value is a string, a keyword value may be a
string too (from a config file) or the setting's own type. An invalid value is reported once, naming
the variable or keyword in plain words (credentials in URLs masked), and falls back to its default:
a typo must never stop the host app from starting.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from . import conventions

__all__ = ["ENV_VARIABLES", "METRIC_ATTRIBUTE_CHOICES", "Settings", "load_settings", "redact"]

_log = logging.getLogger("otel_llm")

METRIC_ATTRIBUTE_CHOICES = frozenset({"user", "team", "api_key", "feature"})
_ATTRIBUTE_ORDER: Final = ("user", "team", "api_key", "feature")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_STREAM_KEYWORDS: Final = ("auto", "always", "never")
_HOST: Final = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything otel_llm can be told. Field names are the `instrument()` keyword arguments."""

    enabled: bool = True
    capture_content: bool = False
    prices: str | None = None
    reference_model: str | None = None
    # "auto" (the providers known to accept it, see extract.STREAM_USAGE), "always", "never", or hosts.
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
    response_cache_timeout: float = 0.05
    fingerprint_key: str | None = None
    trust_baggage: bool = False
    # Which GenAI conventions the standard names follow: v1_41 (default), latest or both (conventions.py).
    semconv_mode: conventions.Mode = conventions.V1_41

    def stream_usage_for(self, host: str) -> bool:
        """Whether to ask `host` for the usage chunk when the app did not, in the modes other than
        `auto` (which depends on the provider, not only the host: extract.accepts_stream_usage)."""
        mode = self.include_stream_usage
        if mode in ("always", "never"):
            return mode == "always"
        return host in {h.strip() for h in mode.split(",")}


class _Wrong(ValueError):
    """A value this setting cannot take; the message says what it expects, in a user's words."""


def _text_of(value: object, expected: str) -> str:
    if isinstance(value, str):
        return value
    raise _Wrong(f"expected {expected}")


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _text_of(value, "true or false").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Wrong("expected true or false")


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _Wrong("expected a positive whole number")
    try:
        number = int(value.strip()) if isinstance(value, str) else value
    except ValueError:
        raise _Wrong("expected a positive whole number") from None
    if number <= 0:
        raise _Wrong("expected a positive whole number")
    return number


def _positive_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Wrong("expected a positive number")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        raise _Wrong("expected a positive number") from None
    if not (number > 0 and math.isfinite(number)):
        raise _Wrong("expected a positive number")
    return number


def _stream_usage(value: object) -> str:
    expected = "auto, always, never or a comma list of host names"
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    text = _text_of(value, expected).strip()
    if text.lower() in _STREAM_KEYWORDS:
        return text.lower()
    hosts = [h.strip() for h in text.split(",")]
    if not text or not all(hosts):
        raise _Wrong(f"expected {expected}")
    for host in hosts:
        if not _HOST.match(host.lower()):
            raise _Wrong(f"{host!r} is not a host name; expected {expected}")
        # A one-word name close to a keyword is a typo ("alway"), not a host on the network.
        close = difflib.get_close_matches(host.lower(), _STREAM_KEYWORDS, n=1, cutoff=0.7)
        if "." not in host and close:
            raise _Wrong(f"{host!r} is neither a keyword nor a plausible host (did you mean {close[0]}?)")
    return text


def _metric_attributes(value: object) -> frozenset[str]:
    expected = f"a comma list of {', '.join(_ATTRIBUTE_ORDER)}, or none"
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    parts = {p.strip().lower() for p in _text_of(value, expected).split(",") if p.strip()}
    if parts == {"none"}:
        return frozenset()
    unknown = parts - METRIC_ATTRIBUTE_CHOICES
    if unknown:
        raise _Wrong(f"unknown {', '.join(sorted(unknown))}; expected {expected}")
    return frozenset(parts)


def _cache_url(value: object) -> str | None:
    if value is None or value is False:
        return None
    text = _text_of(value, "memory:// or redis://host:port/db").strip()
    if not text or text.lower() in _FALSE:
        return None
    if not text.startswith(("memory://", "redis://", "rediss://", "unix://")):
        raise _Wrong("expected memory:// or redis://host:port/db")
    return text


def _path(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _text_of(value, "a file path").strip() or None


def _semconv_mode(value: object) -> conventions.Mode:
    """The standard `OTEL_SEMCONV_STABILITY_OPT_IN` list (other categories ignored), or a mode's name."""
    try:
        return conventions.parse_mode(_text_of(value, "a comma list such as gen_ai_latest_experimental"))
    except ValueError as exc:
        raise _Wrong(str(exc)) from None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return _text_of(value, "text").strip() or None


# variable -> (field, parser)
_ENV: dict[str, tuple[str, Callable[[object], Any]]] = {
    "OTEL_LLM_ENABLED": ("enabled", _bool),
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": ("capture_content", _bool),
    "OTEL_LLM_PRICES": ("prices", _path),
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
    "OTEL_LLM_RESPONSE_CACHE_TIMEOUT": ("response_cache_timeout", _positive_float),
    "OTEL_LLM_FINGERPRINT_KEY": ("fingerprint_key", _text),
    "OTEL_LLM_TRUST_BAGGAGE": ("trust_baggage", _bool),
    "OTEL_SEMCONV_STABILITY_OPT_IN": ("semconv_mode", _semconv_mode),
}
ENV_VARIABLES = tuple(_ENV)
_PARSERS: Final = {field: parse for field, parse in _ENV.values()}
_SECRET_FIELDS: Final = frozenset({"fingerprint_key"})  # never echoed at all

# `scheme://user:password@host`, also when the scheme is mistyped (`redis//:pw@`, `redis:/u:pw@`) or
# missing (`u:pw@host`); and `password=` / `token=` query parameters.
_USERINFO: Final = re.compile(r"(^|/)[^/@\s]*@")
_SECRET_PARAM: Final = re.compile(r"(?i)((?:pass(?:word)?|secret|token|key|auth)=)[^&\s]*")


def redact(text: str) -> str:
    """`text` with the credentials a URL may carry masked: safe to log."""
    return _SECRET_PARAM.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


def _shown(value: object) -> str:
    """A value as a user wrote it, for a warning: strings quoted and masked, other types by type name."""
    if isinstance(value, str):
        return repr(redact(value))
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float)):
        return f"{value!r} (a number)"
    kinds: dict[type, str] = {list: "list", tuple: "list", set: "set", frozenset: "set", dict: "mapping"}
    kind = kinds.get(type(value), "object")
    return f"an {kind}" if kind == "object" else f"a {kind}"


def _default_text(field: str) -> str:
    """The default in the words of the variable's own syntax."""
    default = getattr(Settings, field)
    if field == "response_cache" and default is None:
        return "off"
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, frozenset):
        return ",".join(a for a in _ATTRIBUTE_ORDER if a in default) or "none"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _parse(field: str, label: str, value: object) -> tuple[bool, Any]:
    """(True, parsed) or (False, None) after one warning naming `label`."""
    try:
        return True, _PARSERS[field](value)
    except (_Wrong, ValueError, TypeError) as exc:
        shown = "(hidden)" if field in _SECRET_FIELDS else _shown(value)
        problem = redact(str(exc)) if field not in _SECRET_FIELDS else "invalid"
        _log.warning("otel_llm: ignoring %s=%s (%s); using the default: %s", label, shown, problem, _default_text(field))
        return False, None


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults, then the environment, then keyword overrides, each value through
    the one parser of its setting.

    Unknown keywords raise TypeError (a programming error in the app's own code, caught at
    `instrument()` time); bad values of either kind only warn.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (field, _parse_value) in _ENV.items():
        raw = env.get(name)
        if raw is not None:
            ok, parsed = _parse(field, name, raw)
            if ok:
                values[field] = parsed
    known = set(_PARSERS)
    for key, value in overrides.items():
        if key not in known:
            raise TypeError(f"otel_llm: unknown setting {key!r}; known: {', '.join(sorted(known))}")
        ok, parsed = _parse(key, key, value)
        if ok:
            values[key] = parsed
    return Settings(**values)

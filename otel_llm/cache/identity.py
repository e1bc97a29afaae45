"""Who a request speaks for: a hash of every credential and header it will send, or None when unseen.

The response cache must never hand one tenant's answer to another, and tenants are told apart in
many places: the API key, a gateway virtual key in `default_headers`, a per-request Authorization in
`extra_headers`, `OpenAI-Organization` / `OpenAI-Project`, `api-key`, `x-portkey-api-key`, an Azure
AD token, headers on the app's own httpx client. So the identity is not a list of known credential
headers but the reverse: every header the request will carry is hashed in, except the few that are
known to identify nobody (`_NEUTRAL`). A header we do not recognise costs only hit rate.

A request whose credentials are decided while it is sent (a key or token provider, an httpx `auth`,
a request hook, an SDK or httpx client subclass overriding how requests are prepared or sent, a
provider runtime or workload identity) has no identity we can see: None, and the call is not cached.
(A custom httpx transport that rewrites headers is not seen: it is where tests and proxies sit.)
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Hashable, Mapping
from typing import Any, Final, cast

__all__ = ["NEUTRAL_HEADERS", "identity"]

# Headers that say how a request travels or which SDK sent it, never who sends it.
NEUTRAL_HEADERS: Final = frozenset({
    "accept", "accept-encoding", "connection", "content-type", "user-agent",
    "traceparent", "tracestate", "idempotency-key", "x-request-id",
})
_NEUTRAL_PREFIXES: Final = ("x-stainless-",)  # the SDK's own: language, OS, retry count, timeout
_EMPTY_CREDENTIALS: Final = frozenset({"", "bearer", "basic"})  # a header value that carries no credential
# Credential fields of the client, hashed in besides the headers they become: the SDK version in use
# may add them to the request later than `default_headers` (Azure's token in openai 1.x).
_FIELDS: Final = ("api_key", "admin_api_key", "organization", "project", "_azure_ad_token")
# Set on a client whose credentials are computed per request.
_DYNAMIC: Final = ("_api_key_provider", "_azure_ad_token_provider", "_provider_runtime", "workload_identity",
                   "_workload_identity_auth")
# Methods that may add or change headers after the ones we read: overridden outside the SDK, unseen.
_HOOKS: Final = ("_prepare_options", "_prepare_request", "_build_headers", "_build_request", "_send_request",
                 "_send_with_auth_retry", "custom_auth", "_custom_auth", "request")
_HTTP_HOOKS: Final = ("send", "build_request", "request", "_send_single_request")
_HTTP_PACKAGES: Final = ("openai", "httpx", "httpx2")


def identity(client: Any, extra_headers: object) -> str | None:
    """SHA-256 over the request's identifying headers and the client's credentials; None if unseen."""
    if not _seen(client):
        return None
    headers = _headers(client, extra_headers)
    fields = {name: value for name in _FIELDS if isinstance(value := getattr(client, name, None), str) and value}
    if not headers and not fields:
        return None  # nothing names a tenant (mTLS, a source IP?): never risk it
    http = getattr(client, "_client", None)
    jar = getattr(getattr(http, "cookies", None), "jar", ())
    material = {
        "headers": sorted(headers.items()),
        "fields": fields,
        "params": str(getattr(http, "params", "")),
        "cookies": sorted((c.name, c.value or "", c.domain) for c in jar),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _seen(client: Any) -> bool:
    """Whether every credential the request will carry is known before it is sent."""
    if any(getattr(client, name, None) is not None for name in _DYNAMIC):
        return False
    if not _sdk_made(cast(Hashable, type(client)), _HOOKS, ("openai",)):
        return False  # an app's (or a library's) subclass prepares the request its own way
    custom = client._custom_auth({"bearer_auth": True}) if hasattr(client, "_custom_auth") else None
    if custom is not None or getattr(client, "custom_auth", None) is not None:
        return False
    http = getattr(client, "_client", None)
    if http is None or getattr(http, "auth", None) is not None:
        return False
    if not _sdk_made(cast(Hashable, type(http)), _HTTP_HOOKS, _HTTP_PACKAGES):
        return False  # an http client subclass that may sign or rewrite the request as it goes
    hooks = getattr(http, "event_hooks", {}).get("request", ())
    return all(_ours(getattr(hook, "__module__", None)) for hook in hooks)  # Azure's redirect guard is the SDK's


@functools.lru_cache(maxsize=64)  # per class: a few client classes in any app
def _sdk_made(cls: Any, names: tuple[str, ...], packages: tuple[str, ...]) -> bool:
    """Whether each of `names` on `cls` is defined by one of `packages` (or not at all)."""
    for name in names:
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is not None and not _ours(owner.__module__, packages):
            return False
    return True


def _ours(module: object, packages: tuple[str, ...] = ("openai",)) -> bool:
    return isinstance(module, str) and module.split(".")[0] in packages


def _headers(client: Any, extra_headers: object) -> dict[str, str]:
    """The identifying headers the request will carry, lower-cased, in the SDK's order of precedence."""
    http = getattr(client, "_client", None)
    layers: list[object] = [getattr(http, "headers", None)]  # the httpx client's, under all others
    auth = getattr(client, "_auth_headers", None)
    layers.append(auth({"bearer_auth": True}) if callable(auth) else None)  # openai >= 2: per security scheme
    layers += [client.auth_headers, client.default_headers, extra_headers]
    merged: dict[str, str] = {}
    for layer in layers:
        if not isinstance(layer, Mapping) and not hasattr(layer, "items"):
            continue
        for name, value in layer.items():
            key = str(name).lower()
            kind = None if isinstance(value, str) else _marker(value)
            if kind == "Omit":
                merged.pop(key, None)
            elif kind is None and value is not None:
                text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                if text.strip().lower() in _EMPTY_CREDENTIALS:
                    merged.pop(key, None)  # openai 1.26 sends "Bearer " for an empty key: it names nobody
                else:
                    merged[key] = text
    return {k: v for k, v in merged.items() if k not in NEUTRAL_HEADERS and not k.startswith(_NEUTRAL_PREFIXES)}


def _marker(value: object) -> str | None:
    """"Omit" (or a subclass) removes a header; "NotGiven" leaves it to the layers below; None: a value."""
    return next((c.__name__ for c in type(value).__mro__ if c.__name__ in ("Omit", "NotGiven")), None)

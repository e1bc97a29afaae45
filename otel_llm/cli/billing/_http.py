"""GET a JSON document with headers, as one-line errors that never repeat the key sent."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from . import BillingError

__all__ = ["get_json", "pages"]

_MAX_PAGES: Final = 1000
Params = Mapping[str, str | int | Sequence[str]]


def get_json(url: str, params: Params, headers: Mapping[str, str], secret: str, what: str,
             timeout: float = 30.0) -> Any:
    """The decoded JSON object at url?params; `secret` is scrubbed from any error message."""
    full = f"{url}?{urllib.parse.urlencode(params, doseq=True)}"
    request = urllib.request.Request(full, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise BillingError(_scrub(f"{what} answered {error.code}: {_message(error)}", secret)) from None
    except (OSError, ValueError) as error:
        raise BillingError(_scrub(f"cannot read {what} at {url}: {error}", secret)) from None
    if not isinstance(body, dict):
        raise BillingError(f"{what} answered something that is not a JSON object")
    return body


def pages(url: str, params: Params, headers: Mapping[str, str], secret: str, what: str) -> Iterator[dict[str, Any]]:
    """Every page of a paginated billing API (`has_more` / `next_page`, sent back as `page`)."""
    page: str | None = None
    for _ in range(_MAX_PAGES):
        body = get_json(url, {**params, **({"page": page} if page else {})}, headers, secret, what)
        yield body
        page = body.get("next_page")
        if not body.get("has_more") or not page:
            return
    raise BillingError(f"{what}: more than {_MAX_PAGES} pages, giving up")


def _message(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read())
        message = body.get("error", {}).get("message") or body
    except (OSError, ValueError, AttributeError):
        message = error.reason
    return " ".join(str(message).split())[:300]


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text

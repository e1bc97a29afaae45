"""Key-shaped strings out of text we export: exception messages become span status descriptions.

Providers echo part of a rejected key in their 401 message (OpenAI: `Incorrect API key provided:
sk-abc12***...wxyz`), and gateways echo whole keys or bearer tokens. A fragment of a key is enough
to narrow a search for it, so anything shaped like one is replaced, masked or not.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["REDACTED", "scrub"]

REDACTED: Final = "[REDACTED]"
_SECRETS: Final = re.compile(
    r"""
    (?i:bearer|basic)\s+[^\s,;"']+            # an Authorization header's credentials
    | (?i:api[-_]?key|x-api-key|key|token|secret|password|authorization)
      (?P<sep>["']?\s*[:=]\s*["']?)(?:(?i:bearer|basic)\s+)?[^\s,;"'}]+  # key=..., "api-key": "..."
    | \b(?:sk|pk|rk|gsk|xai|fw)[-_][A-Za-z0-9*._-]{3,}  # OpenAI, gateways (sk-or-v1-, LiteLLM), Groq, xAI; masked too
    | \b[A-Fa-f0-9]{32,}\b                     # Azure keys (32 hex) and other hex secrets
    | \b[A-Za-z0-9_\-*]{40,}                  # any other long token (Azure's 84-character keys, JWTs' parts)
    """,
    re.VERBOSE,
)


def _replace(match: re.Match[str]) -> str:
    sep = match.group("sep")
    if sep is not None:  # keep the name, so the message still says what was wrong
        return match.group(0)[: match.start("sep") - match.start(0)] + sep + REDACTED
    return REDACTED


def scrub(text: str) -> str:
    """`text` with every key-shaped run replaced by [REDACTED]."""
    return _SECRETS.sub(_replace, text)

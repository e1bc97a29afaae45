"""Our own faults and warnings: logged once per place (bounded), never raised into the app.

A leaf module (it imports nothing of ours), so every other module can report through it without an
import cycle. `instrument()` starts a fresh record, so each instrumentation reports each place once.
"""

from __future__ import annotations

import logging
from typing import Any, Final

__all__ = ["report_fault", "reset", "warn_once"]

_log = logging.getLogger("otel_llm")
_LIMIT: Final = 256  # distinct places or warnings remembered; past it, the rest log at debug level
_reported: set[str] = set()
_warned: set[tuple[str, str]] = set()


def report_fault(where: str, exc: BaseException) -> None:
    """A bug of ours: logged once per place at debug level, never raised into the app."""
    if where in _reported:
        return
    if len(_reported) < _LIMIT:
        _reported.add(where)
    _log.debug("otel_llm: internal error in %s (telemetry for this call is incomplete)", where, exc_info=exc)


def warn_once(kind: str, key: str, message: str, *args: Any) -> bool:
    """A warning a caller can trigger (a model, an endpoint): once per (kind, key), and at most
    `_LIMIT` of them per instrumentation; past that, at debug level. True when it warned."""
    if (kind, key) in _warned:
        return False
    if len(_warned) >= _LIMIT:
        _log.debug(message, *args)
        return False
    _warned.add((kind, key))
    _log.warning(message, *args)
    return True


def reset() -> None:
    """Forget what was reported: called by `instrument()`."""
    _reported.clear()
    _warned.clear()

"""Where the commands find the files they read besides the user's own: the demo's rules and prices.

In a source checkout they are the repository's own files; from a wheel they are installed under
`<prefix>/share/otel-llm/` (pyproject's data-files). A missing file is a clear error naming both
places, never a misleading failure later on.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

__all__ = ["AssetMissing", "asset", "locations"]

_CHECKOUT = Path(__file__).resolve().parents[2]
_SHARE = Path("share") / "otel-llm"


class AssetMissing(FileNotFoundError):
    """A file that the package should ship is not there (a broken or partial install)."""


def locations() -> list[Path]:
    """Directories searched, in order: the source checkout (when this is one), then the install's."""
    found = []
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "otel_llm").is_dir():
        found.append(_CHECKOUT)
    found.append(Path(sysconfig.get_path("data")) / _SHARE)
    return found


def asset(relative: str) -> Path:
    """The path of a shipped file or directory, e.g. `asset("prometheus/rules")`."""
    for root in locations():
        candidate = root / relative
        if candidate.exists():
            return candidate
    where = " or ".join(str(root / relative) for root in locations())
    raise AssetMissing(f"{relative} is missing (looked in {where}); reinstall otel-llm")

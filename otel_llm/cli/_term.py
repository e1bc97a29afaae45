"""Terminal manners shared by the commands: colour only on a TTY (and never with NO_COLOR), errors on
stderr, and a progress bar that degrades to plain lines when stderr is not a terminal."""

from __future__ import annotations

import os
import sys
from typing import TextIO

__all__ = ["Progress", "colour", "error", "use_colour"]

_CODES = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}


def use_colour(stream: TextIO) -> bool:
    """https://no-color.org: any non-empty NO_COLOR disables colour; so does a non-TTY stream."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def colour(text: str, name: str, stream: TextIO | None = None) -> str:
    if not use_colour(stream or sys.stdout):
        return text
    return f"\033[{_CODES[name]}m{text}\033[0m"


def error(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)


class Progress:
    """`done/total` on stderr: a redrawn bar on a TTY, a line every 10% otherwise."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_decile = -1

    def update(self, done: int) -> None:
        fraction = min(done / self.total, 1.0)
        if self.tty:
            width = 30
            filled = int(fraction * width)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total}")
            if done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
            return
        decile = int(fraction * 10)
        if decile != self._last_decile:
            self._last_decile = decile
            print(f"{self.label}: {done}/{self.total}", file=self.stream, flush=True)

"""Locks no forked child inherits held: each is held across fork() and released on both sides after."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable

__all__ = ["hold_across_fork"]


def hold_across_fork(locks: Callable[[], Iterable[threading.Lock]], in_child: Callable[[], None] | None = None) -> None:
    """Before a fork, take every lock `locks()` names (a thread that holds one does not exist in the
    child, so the child would wait for it forever); after it, run `in_child` in the child, still
    holding them, then release them in parent and child alike."""
    held: list[threading.Lock] = []

    def before() -> None:
        for lock in list(locks()):
            lock.acquire()
            held.append(lock)

    def release() -> None:
        while held:
            held.pop().release()

    def child() -> None:
        if in_child is not None:
            in_child()
        release()

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=before, after_in_parent=release, after_in_child=child)

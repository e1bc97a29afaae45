"""The CLI suites share the stack's helpers: the replayed day (tests/stack/caseday.py) and its servers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stack"))

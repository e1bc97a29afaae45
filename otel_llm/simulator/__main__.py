"""`python -m otel_llm.simulator`: the same as `otel-llm simulate`."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())

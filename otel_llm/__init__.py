"""otel-llm: OpenTelemetry for the openai SDK, with cost in USD, attribution and budget alerts.

Loaded by `opentelemetry-instrument` through the `otel_llm` entry point, or by hand:

    from otel_llm import OpenAIInstrumentor
    OpenAIInstrumentor().instrument()
"""

from __future__ import annotations

from .attribution import attributes
from .instrumentor import OpenAIInstrumentor
from .version import __version__

__all__ = ["OpenAIInstrumentor", "__version__", "attributes"]

"""Which GenAI conventions a call follows (v1.41.0, the pinned latest, or both), and the pure
translation from the v1.41.0 shapes the recorder builds to the chosen mode's shapes.

The mode comes once from the standard `OTEL_SEMCONV_STABILITY_OPT_IN` (a comma list shared with
other categories such as `http`): unset -> `v1_41` (the default, unchanged output),
`gen_ai_latest_experimental` -> `latest` (the conventions' own opt-in value),
`gen_ai_latest_experimental/dup` -> `both` (our extension for migrations, in the `http/dup` pattern;
the GenAI conventions define no `/dup` value). The latest names are those of
open-telemetry/semantic-conventions-genai at `semconv.GENAI_PINNED_COMMIT`.

The recorder calls two things:
- `span_attributes(mode, attrs, usage)` on the finished v1.41.0 attribute dict, before
  `span.set_attributes()` (in `v1_41` it returns the very same dict);
- `StandardMetrics(meter, mode)` once per meter instead of creating the three GenAI histograms, and
  `.record(Outcome(...), standard_attributes, context)` once per call instead of recording them.
Our own `otel_llm.*` metrics and attributes are untouched in every mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from . import semconv as sc

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import Counter, Histogram, Meter

    from .pricing import Usage

__all__ = [
    "BOTH",
    "LATEST",
    "MODES",
    "OPT_IN_VARIABLE",
    "V1_41",
    "InstrumentSpec",
    "Mode",
    "Outcome",
    "Record",
    "StandardMetrics",
    "instrument_specs",
    "is_inference",
    "metric_records",
    "parse_mode",
    "parse_opt_in",
    "schema_url",
    "span_attributes",
]


Mode = Literal["v1_41", "latest", "both"]
V1_41: Final = "v1_41"
LATEST: Final = "latest"
BOTH: Final = "both"
MODES: Final[tuple[Mode, ...]] = (V1_41, LATEST, BOTH)

OPT_IN_VARIABLE: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
_LATEST_VALUE: Final = "gen_ai_latest_experimental"
_DUP_VALUE: Final = "gen_ai_latest_experimental/dup"
_COST_CURRENCY: Final = "USD"
_MERGED_LIMIT: Final = 8192
# The operations the pinned conventions call inference (gen_ai.client.inference.*). Ours without a
# conventions name (image_generation, audio_*, batch) and embeddings stay on operation.duration.
_INFERENCE: Final = frozenset({sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_GENERATE_CONTENT})


# --- the mode ----------------------------------------------------------------------------------
def parse_opt_in(text: str) -> Mode:
    """The GenAI mode named in an `OTEL_SEMCONV_STABILITY_OPT_IN` comma list. Values of other
    categories are ignored; an unknown `gen_ai...` value raises ValueError (settings warn and fall back)."""
    values = {part.strip().lower() for part in text.split(",") if part.strip()}
    genai = {value for value in values if value.startswith("gen_ai")}
    unknown = genai - {_LATEST_VALUE, _DUP_VALUE}
    if unknown:
        raise ValueError(f"unknown GenAI value {sorted(unknown)}; expected {_LATEST_VALUE} or {_DUP_VALUE}")
    if _DUP_VALUE in genai:
        return BOTH
    return LATEST if _LATEST_VALUE in genai else V1_41


def parse_mode(value: str) -> Mode:
    """A mode given by name (`v1_41`, `latest`, `both`, as an `instrument()` keyword would) or as an
    opt-in list. Raises ValueError on anything else."""
    name = value.strip().lower()
    for mode in MODES:
        if name == mode:
            return mode
    return parse_opt_in(value)


def schema_url(mode: Mode) -> str | None:
    """The schema URL for the tracer and meter: v1.41.0's, or none when latest names are emitted
    (the new repository publishes no schema for them yet)."""
    return sc.SCHEMA_URL if mode == V1_41 else None


def is_inference(operation: str) -> bool:
    return operation in _INFERENCE


# --- span attributes ---------------------------------------------------------------------------
def span_attributes(mode: Mode, attrs: dict[str, Any], usage: Usage | None = None) -> dict[str, Any]:
    """The span attributes to set in `mode`, from the v1.41.0 dict the recorder built.

    `v1_41` returns `attrs` itself. `latest` renames `cache_creation` to `cache_write`; `both` keeps
    both names. Both opt-in modes add the audio token counts of `usage` and the draft cost attributes
    (PR #443) next to our `otel_llm.cost.usd`, which stays."""
    if mode == V1_41:
        return attrs
    out = dict(attrs)
    if mode == LATEST:
        written = out.pop(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, None)
    else:
        written = out.get(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)
    if written is not None:
        out[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = written
    if usage is not None:
        if usage.input_audio:
            out[sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS] = usage.input_audio
        if usage.output_audio:
            out[sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS] = usage.output_audio
    cost = out.get(sc.COST_USD)
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        out[sc.GEN_AI_USAGE_COST_AMOUNT] = cost
        out[sc.GEN_AI_USAGE_COST_CURRENCY] = _COST_CURRENCY
        provided = out.get(sc.PRICE_SOURCE) == sc.COST_SOURCE_PROVIDER
        out[sc.GEN_AI_USAGE_COST_SOURCE] = sc.COST_SOURCE_PROVIDER if provided else sc.COST_SOURCE_LOCAL
    return out


# --- the metrics plan --------------------------------------------------------------------------
class InstrumentSpec(NamedTuple):
    """One standard instrument: what to create on the meter."""

    name: str
    kind: Literal["histogram", "counter"]
    unit: str
    description: str
    buckets: tuple[float, ...] | None = None


class Outcome(NamedTuple):
    """What the standard metrics need from one finished call."""

    operation: str
    duration: float  # seconds
    time_to_first_chunk: float | None  # seconds from the start; None when nothing streamed
    usage: Usage | None
    error_type: str | None
    metered: bool = True  # False on a response cache hit: the provider processed no tokens


class Record(NamedTuple):
    """One measurement: the instrument's name, the value, and the attributes it adds to the call's
    standard set (operation, provider, request/response model, server address/port)."""

    instrument: str
    value: float
    extra: tuple[tuple[str, Any], ...] = ()


_DURATIONS: Final = tuple(float(b) for b in sc.DURATION_BUCKETS)
_TOKENS: Final = tuple(float(b) for b in sc.TOKEN_BUCKETS)
_V1_41_SPECS: Final = (
    InstrumentSpec(sc.GEN_AI_CLIENT_OPERATION_DURATION, "histogram", "s", "GenAI operation duration", _DURATIONS),
    InstrumentSpec(sc.GEN_AI_CLIENT_TOKEN_USAGE, "histogram", "{token}", "Number of input and output tokens used",
                   _TOKENS),
    InstrumentSpec(sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, "histogram", "s",
                   "Time to receive the first chunk of a streamed response", _DURATIONS),
)
_LATEST_SPECS: Final = (
    InstrumentSpec(sc.GEN_AI_CLIENT_OPERATION_DURATION, "histogram", "s", "GenAI operation duration", _DURATIONS),
    InstrumentSpec(sc.GEN_AI_CLIENT_INFERENCE_DURATION, "histogram", "s",
                   "GenAI client inference operation duration", _DURATIONS),
    InstrumentSpec(sc.GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK, "histogram", "s",
                   "Time to receive the first chunk of a streamed response", _DURATIONS),
    InstrumentSpec(sc.GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS, "counter", "{token}",
                   "The number of input (prompt) tokens used, including cached tokens"),
    InstrumentSpec(sc.GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS, "counter", "{token}",
                   "The number of output (completion) tokens used, including reasoning tokens"),
    InstrumentSpec(sc.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS, "counter", "{token}",
                   "The number of input tokens served from a provider-managed cache"),
    InstrumentSpec(sc.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS, "counter", "{token}",
                   "The number of input tokens written to a provider-managed cache"),
    InstrumentSpec(sc.GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS, "counter", "{token}",
                   "The number of output tokens used for reasoning"),
    InstrumentSpec(sc.GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS, "histogram", "{token}",
                   "The number of input (prompt) tokens used per inference operation", _TOKENS),
    InstrumentSpec(sc.GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS, "histogram", "{token}",
                   "The number of output (completion) tokens used per inference operation", _TOKENS),
)
_SPECS: Final[dict[str, tuple[InstrumentSpec, ...]]] = {
    V1_41: _V1_41_SPECS,
    LATEST: _LATEST_SPECS,
    # operation.duration is in both sets: created once.
    BOTH: _V1_41_SPECS + tuple(s for s in _LATEST_SPECS if s.name != sc.GEN_AI_CLIENT_OPERATION_DURATION),
}
_INPUT: Final = ((sc.GEN_AI_TOKEN_TYPE, sc.TOKEN_INPUT),)
_OUTPUT: Final = ((sc.GEN_AI_TOKEN_TYPE, sc.TOKEN_OUTPUT),)
_UNKNOWN: Final = ((sc.GEN_AI_TOKEN_MODALITY, sc.MODALITY_UNKNOWN),)
_AUDIO: Final = ((sc.GEN_AI_TOKEN_MODALITY, sc.MODALITY_AUDIO),)


def instrument_specs(mode: Mode) -> tuple[InstrumentSpec, ...]:
    """The standard instruments to create in `mode` (names, units, bucket advice)."""
    return _SPECS[mode]


def _error(outcome: Outcome) -> tuple[tuple[str, Any], ...]:
    return ((sc.ERROR_TYPE, outcome.error_type),) if outcome.error_type else ()


def _v1_41_records(outcome: Outcome) -> list[Record]:
    """Exactly what the recorder recorded before the modes existed."""
    out = [Record(sc.GEN_AI_CLIENT_OPERATION_DURATION, outcome.duration, _error(outcome))]
    if outcome.time_to_first_chunk is not None:
        out.append(Record(sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, outcome.time_to_first_chunk))
    usage = outcome.usage
    if usage is not None and outcome.metered:
        out.append(Record(sc.GEN_AI_CLIENT_TOKEN_USAGE, usage.input, _INPUT))
        if outcome.operation != sc.OP_EMBEDDINGS:
            out.append(Record(sc.GEN_AI_CLIENT_TOKEN_USAGE, usage.output, _OUTPUT))
    return out


def _split(name: str, total: int, audio: int) -> list[Record]:
    """A usage counter split by modality: the provider reports audio apart; the rest is `unknown`
    (OpenAI does not tell text from image tokens), so the parts always add up to the total."""
    audio = min(max(audio, 0), total)
    if not audio:
        return [Record(name, total, _UNKNOWN)]
    return [Record(name, audio, _AUDIO), Record(name, total - audio, _UNKNOWN)]


def _latest_records(outcome: Outcome) -> list[Record]:
    inference = outcome.operation in _INFERENCE
    duration = sc.GEN_AI_CLIENT_INFERENCE_DURATION if inference else sc.GEN_AI_CLIENT_OPERATION_DURATION
    out = [Record(duration, outcome.duration, _error(outcome))]
    if not inference:
        # Embeddings have no token metric at the pinned commit (gen_ai.client.token.usage is gone).
        return out
    if outcome.time_to_first_chunk is not None:
        out.append(Record(sc.GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK, outcome.time_to_first_chunk))
    usage = outcome.usage
    if usage is None or not outcome.metered:
        # No usage (a failure, or a stream that reported none): the pinned conventions ask for token
        # metrics only "when the count is readily available", so no 0 sample pulls averages down.
        # A response cache hit: the provider processed no tokens.
        return out
    out += _split(sc.GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS, usage.input, usage.input_audio)
    out += _split(sc.GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS, usage.output, usage.output_audio)
    out.append(Record(sc.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read, _UNKNOWN))
    out.append(Record(sc.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS, usage.cache_write, _UNKNOWN))
    out.append(Record(sc.GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning, _UNKNOWN))
    # The per-operation histograms carry no error.type at the pin (only the standard set).
    out.append(Record(sc.GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS, usage.input))
    out.append(Record(sc.GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS, usage.output))
    return out


def metric_records(mode: Mode, outcome: Outcome) -> list[Record]:
    """What one call records on the standard instruments in `mode`."""
    if mode == V1_41:
        return _v1_41_records(outcome)
    if mode == LATEST:
        return _latest_records(outcome)
    # both: v1.41.0 already put every operation on operation.duration; do not count a call twice.
    latest = [r for r in _latest_records(outcome) if r.instrument != sc.GEN_AI_CLIENT_OPERATION_DURATION]
    return _v1_41_records(outcome) + latest


class StandardMetrics:
    """The standard GenAI instruments of one mode, created once per meter; `record()` is the per-call step."""

    __slots__ = ("_counters", "_histograms", "_merged", "mode")

    def __init__(self, meter: Meter, mode: Mode) -> None:
        self.mode: Mode = mode
        self._histograms: dict[str, Histogram] = {}
        self._counters: dict[str, Counter] = {}
        # (id of a standard set, extras) -> (that set, the merged dict): the recorder reuses one dict
        # per model and endpoint, so each merge is built once. Holding the set keeps its id unique.
        self._merged: dict[tuple[int, tuple[tuple[str, Any], ...]], tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
        for spec in instrument_specs(mode):
            if spec.kind == "histogram":
                self._histograms[spec.name] = meter.create_histogram(
                    spec.name, unit=spec.unit, description=spec.description,
                    explicit_bucket_boundaries_advisory=list(spec.buckets) if spec.buckets else None,
                )
            else:
                self._counters[spec.name] = meter.create_counter(spec.name, unit=spec.unit, description=spec.description)

    def names(self) -> frozenset[str]:
        return frozenset(self._histograms) | frozenset(self._counters)

    def record(self, outcome: Outcome, attributes: Mapping[str, Any], context: Context | None = None) -> None:
        """Record one call. `attributes` is the call's standard set; each record adds its own extras."""
        if self.mode == V1_41:
            self._record_v1_41(outcome, attributes, context)
            return
        for name, value, extra in metric_records(self.mode, outcome):
            attrs = self._with(attributes, extra) if extra else attributes
            histogram = self._histograms.get(name)
            if histogram is not None:
                histogram.record(value, attrs, context=context)
            else:
                self._counters[name].add(value, attrs, context=context)

    def _record_v1_41(self, outcome: Outcome, attributes: Mapping[str, Any], context: Context | None) -> None:
        """`_v1_41_records` recorded directly, without building the list: the default mode, on every call."""
        histograms = self._histograms
        error = outcome.error_type
        histograms[sc.GEN_AI_CLIENT_OPERATION_DURATION].record(
            outcome.duration, self._with(attributes, ((sc.ERROR_TYPE, error),)) if error else attributes, context=context
        )
        if outcome.time_to_first_chunk is not None:
            histograms[sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK].record(
                outcome.time_to_first_chunk, attributes, context=context
            )
        usage = outcome.usage
        if usage is not None and outcome.metered:
            tokens = histograms[sc.GEN_AI_CLIENT_TOKEN_USAGE]
            tokens.record(usage.input, self._with(attributes, _INPUT), context=context)
            if outcome.operation != sc.OP_EMBEDDINGS:
                tokens.record(usage.output, self._with(attributes, _OUTPUT), context=context)

    def _with(self, attributes: Mapping[str, Any], extra: tuple[tuple[str, Any], ...]) -> Mapping[str, Any]:
        key = (id(attributes), extra)
        found = self._merged.get(key)
        if found is not None and found[0] is attributes:
            return found[1]
        merged = {**attributes, **dict(extra)}
        if len(self._merged) < _MERGED_LIMIT:  # bounded like the recorder's own cache of standard sets
            self._merged[key] = (attributes, merged)
        return merged

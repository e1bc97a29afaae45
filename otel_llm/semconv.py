"""Every attribute and metric name that otel_llm emits, standard and ours, in one place.

Standard names follow the OpenTelemetry GenAI semantic conventions v1.41.0; a test checks them
against `opentelemetry-semantic-conventions`. Our own names live under the `otel_llm.` prefix and
never invent `gen_ai.*` keys.
"""

from __future__ import annotations

from typing import Final

SEMCONV_VERSION: Final = "1.41.0"
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.0"

# --- standard span and metric attributes -------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"
OPENAI_API_TYPE: Final = "openai.api.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"

# --- standard metrics ---------------------------------------------------------------------------
GEN_AI_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
GEN_AI_CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"

# Bucket advice from the conventions.
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)

# --- operation names and token types (values) ---------------------------------------------------
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
# The conventions name no operation for these yet; ours are plain and bounded.
OP_IMAGE: Final = "image_generation"
OP_AUDIO_TRANSCRIPTION: Final = "audio_transcription"
OP_AUDIO_TRANSLATION: Final = "audio_translation"
OP_AUDIO_SPEECH: Final = "audio_speech"
OP_BATCH: Final = "batch"
TOKEN_INPUT: Final = "input"
TOKEN_OUTPUT: Final = "output"
# Our extra token types on otel_llm.tokens (input includes cache_read; output includes reasoning).
TOKEN_CACHE_READ: Final = "cache_read"
TOKEN_CACHE_CREATION: Final = "cache_creation"
TOKEN_REASONING: Final = "reasoning"

# --- our span and metric attributes -------------------------------------------------------------
TEAM: Final = "otel_llm.team"
FEATURE: Final = "otel_llm.feature"
API_KEY_FINGERPRINT: Final = "otel_llm.api_key.fingerprint"
COST_USD: Final = "otel_llm.cost.usd"
COST_REFERENCE_USD: Final = "otel_llm.cost.reference_usd"
# What our prices computed when the provider reported the cost itself (then otel_llm.cost.usd is the
# provider's figure and otel_llm.price.source is "provider"): the drift between them stays visible.
COST_COMPUTED_USD: Final = "otel_llm.cost.computed_usd"
PRICE_SOURCE_PROVIDER: Final = "provider"
REFERENCE_MODEL: Final = "otel_llm.reference.model"
PROMPT_SIZE: Final = "otel_llm.prompt.size"  # small | medium | large
PRICE_SOURCE: Final = "otel_llm.price.source"
UNPRICED: Final = "otel_llm.unpriced"
UNMETERED: Final = "otel_llm.unmetered"  # true: the call ended with no usage (tokens and cost unknown)
USAGE_REJECTED: Final = "otel_llm.usage.rejected"  # span: why the usage or cost was not believed
REJECTED_REASON: Final = "otel_llm.rejected_reason"  # metric label of otel_llm.usage.rejected
CACHE_HIT: Final = "otel_llm.cache.hit"  # provider prompt cache served part of the input
CACHE_SAVINGS_USD: Final = "otel_llm.cache.savings_usd"
CACHE_KIND: Final = "otel_llm.cache.kind"  # prompt | response
RESPONSE_CACHE_HIT: Final = "otel_llm.response_cache.hit"
RESPONSE_CACHE_RESULT: Final = "otel_llm.response_cache.result"  # hit | miss | error
STREAM_CHUNKS: Final = "otel_llm.stream.chunks"
# Tools the provider ran for a Responses API call (hosted_tools.py): the metric's labels, and on the span
# `otel_llm.hosted_tool.calls.<tool>` (runs), the fees in the cost, and the tools whose fee is not in it.
HOSTED_TOOL: Final = "otel_llm.hosted_tool"  # web_search | file_search | code_interpreter | image_generation
HOSTED_TOOL_PRICED: Final = "otel_llm.hosted_tool.priced"  # "true": its fee is in otel_llm.cost
TOOL_FEES_USD: Final = "otel_llm.cost.tool_fees_usd"  # the part of otel_llm.cost.usd that is per-call tool fees
HOSTED_TOOL_UNPRICED: Final = "otel_llm.hosted_tool.unpriced"  # span: tools whose fee is not in the cost
BACKOFF_SECONDS: Final = "otel_llm.http.backoff_seconds"
STATUS_CLASS: Final = "otel_llm.http.status_class"  # 2xx | 401 | 403 | 429 | 4xx | 5xx | none
HTTP_ATTEMPT_FAILED: Final = "otel_llm.http.attempt_failed"  # span event, one per failed attempt
RETRY_AFTER_SECONDS: Final = "otel_llm.http.retry_after_seconds"
EXCEPTION_TYPE: Final = "exception.type"  # standard: the transport's exception on a connection error
# The SDK's own mark of the one series that sums attribute sets past a cardinality limit.
METRIC_OVERFLOW: Final = "otel.metric.overflow"

# --- our metrics (Prometheus names in the README reference table) ------------------------------
COST: Final = "otel_llm.cost"  # counter, USD -> otel_llm_cost_USD_total
COST_REFERENCE: Final = "otel_llm.cost.reference"  # counter, USD -> otel_llm_cost_reference_USD_total
# The cost counter summed per process by fewer labels, at collection (ledger.Rollup): what the exact-spend
# rules delta instead of every cost series (prometheus/rules/cost.rules.yml, docs/scaling.md, issue 20).
COST_BY_SCOPE: Final = "otel_llm.cost.by_scope"  # counter, USD -> otel_llm_cost_by_scope_USD_total
COST_BY_MODEL: Final = "otel_llm.cost.by_model"  # counter, USD -> otel_llm_cost_by_model_USD_total
TOKENS: Final = "otel_llm.tokens"  # counter, {token} -> otel_llm_tokens_total
CALLS: Final = "otel_llm.calls"  # counter, {call} -> otel_llm_calls_total
CALLS_UNPRICED: Final = "otel_llm.calls.unpriced"  # counter -> otel_llm_calls_unpriced_total
CALLS_UNMETERED: Final = "otel_llm.calls.unmetered"  # counter -> otel_llm_calls_unmetered_total
HOSTED_TOOL_CALLS: Final = "otel_llm.hosted_tool.calls"  # counter -> otel_llm_hosted_tool_calls_total
USAGE_REJECTED_CALLS: Final = "otel_llm.usage.rejected"  # counter -> otel_llm_usage_rejected_total
CACHE_SAVINGS: Final = "otel_llm.cache.savings"  # counter, USD -> otel_llm_cache_savings_USD_total
RESPONSE_CACHE_REQUESTS: Final = "otel_llm.response_cache.requests"  # -> ..._requests_total
HTTP_ATTEMPTS: Final = "otel_llm.http.attempts"  # counter -> otel_llm_http_attempts_total
HTTP_BACKOFF: Final = "otel_llm.http.backoff.duration"  # histogram, s -> ..._duration_seconds
PROCESS_START_TIME: Final = "otel_llm.process.start_time"  # gauge, s -> otel_llm_process_start_time_seconds

# --- instrumentation scope --------------------------------------------------------------------
SCOPE_NAME: Final = "otel_llm"

# --- the reconcile exporter's gauges (Prometheus-native, `otel-llm reconcile --serve`) -------------
BILLED_COST_USD: Final = "otel_llm_billed_cost_usd"  # provider, date, model
BILLED_TOKENS: Final = "otel_llm_billed_tokens"  # provider, date, model, token_type
RECONCILE_RECORDED_COST_USD: Final = "otel_llm_reconcile_recorded_cost_usd"  # provider, date, model
BILLING_SETTLED_DATE: Final = "otel_llm_billing_settled_date_timestamp_seconds"  # provider
BILLING_UP: Final = "otel_llm_billing_up"  # provider

# --- the latest GenAI conventions (OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental) -----
# open-telemetry/semantic-conventions-genai, pinned at the commit below (vendored under
# tests/data/semconv-genai/, checked by tests/test_conventions.py). conventions.py decides which
# of these a call emits; the v1.41.0 names above stay the default.
GENAI_PINNED_COMMIT: Final = "e9de14bafd9725937c6b0c219897260074a2896c"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"  # was cache_creation
GEN_AI_USAGE_AUDIO_INPUT_TOKENS: Final = "gen_ai.usage.audio.input_tokens"
GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS: Final = "gen_ai.usage.audio.output_tokens"
GEN_AI_TOKEN_MODALITY: Final = "gen_ai.token.modality"  # replaces gen_ai.token.type on metrics
MODALITY_AUDIO: Final = "audio"
MODALITY_UNKNOWN: Final = "unknown"
OP_GENERATE_CONTENT: Final = "generate_content"
GEN_AI_CLIENT_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.inference.time_to_first_chunk"
GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"
GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"
GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.cache_read.input_tokens"
GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.cache_write.input_tokens"
GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.reasoning.output_tokens"
GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"
# DRAFT, not in the pinned registry: open-telemetry/semantic-conventions-genai PR #443 (open), its
# changelog fragment at commit 972e9e2a2a58baea4b1f68257d922265e7b1ce27. Emitted in the opt-in modes only.
GENAI_COST_DRAFT_COMMIT: Final = "972e9e2a2a58baea4b1f68257d922265e7b1ce27"
GEN_AI_USAGE_COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE: Final = "gen_ai.usage.cost.source"  # provider | local
COST_SOURCE_PROVIDER: Final = "provider"
COST_SOURCE_LOCAL: Final = "local"

__all__ = sorted(name for name in dir() if name.isupper())

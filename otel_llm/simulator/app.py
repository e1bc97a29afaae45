"""Request -> reply: routing, authentication, validation, faults, limits and stats, without I/O.

Every /v1 request goes through the same pipeline: route, API key (401), JSON body (400), model (404),
the key's rate limit (429), the injected fault if any, then the endpoint's handler. The reply gets
OpenAI's response headers (`x-request-id`, `openai-*`, `x-ratelimit-*`). `/_simulator/stats` and
`POST /_simulator/reset` are the simulator's own, unauthenticated, never faulted. The organization
Costs and Usage endpoints (`GET /v1/organization/...`, admin key only) read the bill of what was
served (billing.py).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .billing import COSTS_PATH, USAGE_PATHS, BillingLedger, is_admin_key
from .cache import PromptCache
from .config import SimulatorConfig
from .faults import DROP, FaultInjector, RateLimiter
from .handlers import Context, Handler, chat_completions, completions, embeddings, responses
from .models import Kind, ModelSpec, catalog
from .replies import ApiError, DropReply, JsonReply, Reply, StreamReply
from .stats import Stats

__all__ = ["STATS_PATH", "Request", "SimulatorApp"]

STATS_PATH: Final = "/_simulator/stats"
RESET_PATH: Final = "/_simulator/reset"
_DROP_AFTER_EVENTS: Final = 3  # a dropped stream delivers its first few events, then dies


@dataclass(frozen=True)
class Request:
    """An HTTP request; header names are lower-case; `query` is the raw query string."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""
    query: str = ""


@dataclass(frozen=True)
class _Route:
    operation: str
    kind: Kind
    handler: Handler


_ROUTES: Final = {
    "/v1/chat/completions": _Route("chat.completions", "chat", chat_completions),
    "/v1/completions": _Route("completions", "chat", completions),
    "/v1/embeddings": _Route("embeddings", "embedding", embeddings),
    "/v1/responses": _Route("responses", "chat", responses),
}


class SimulatorApp:
    """The simulator's state (prompt cache, stats, faults, limits) and its request pipeline."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.models = catalog(config.extra_models)
        self.cache = PromptCache(config.cache_min_tokens, config.cache_increment, config.cache_ttl)
        self.stats = Stats()
        self.billing = BillingLedger(config.billing_lag)
        self.faults = FaultInjector(config)
        self.limiter = RateLimiter(config.rpm_limit, config.tpm_limit)
        self._created = int(time.time())

    def handle(self, request: Request) -> Reply:
        if request.path.startswith("/_simulator/"):
            return self._admin(request)
        headers = {
            "x-request-id": "req_" + uuid.uuid4().hex,
            "openai-version": "2020-10-01",
            "openai-organization": "org-simulator",
        }
        try:
            reply = self._api(request)
        except ApiError as error:
            reply = error.reply(delay=self.config.ttft_min * self.config.latency_scale)
        if isinstance(reply, JsonReply | StreamReply):
            reply = dataclasses.replace(reply, headers={**headers, **reply.headers})
        return reply

    def reset(self) -> None:
        """Forget stats, cached prompts, fail-sequence attempts and rate-limit windows."""
        self.stats.reset()
        self.billing.clear()
        self.cache.clear()
        self.faults.clear()
        self.limiter.clear()

    def _api(self, request: Request) -> Reply:
        if request.method == "GET" and request.path.startswith("/v1/models"):
            self.faults.check_auth(request.headers)
            return self._models(request.path.removeprefix("/v1/models").strip("/"))
        if request.method == "GET" and (request.path == COSTS_PATH or request.path in USAGE_PATHS):
            if not is_admin_key(self.faults.check_auth(request.headers)):
                raise ApiError(
                    403,
                    "You have insufficient permissions for this operation. Missing scopes: api.usage.read. "
                    "Use an admin key.",
                )
            return self.billing.handle(request.path, request.query)
        route = _ROUTES.get(request.path)
        if route is None or request.method != "POST":
            raise ApiError(404, f"Invalid URL ({request.method} {request.path})")
        body = _json_object(request.body)
        # Read before any check, so that even a 401 is counted under the model it asked for.
        model = body.get("model") if body is not None else None
        model_name = model if isinstance(model, str) else ""
        key: str | None = None
        try:
            key = self.faults.check_auth(request.headers)
            if body is None:
                raise ApiError(
                    400,
                    "We could not parse the JSON body of your request. The OpenAI API expects "
                    "a JSON object as the request body.",
                )
            spec = self._model(model_name, route)
            self.limiter.admit(key, spec.id)
            return self._serve(request, route, Context(body, spec, self.config, self.cache), key)
        except ApiError as error:
            self.stats.record(model_name, route.operation, str(error.status))
            if key is not None:
                # Every authenticated reply reports the key's limits; a 429 reports them spent.
                spent = {"x-ratelimit-remaining-requests": "0"} if error.status == 429 else {}
                error.headers = {**self.limiter.headers(key), **spent, **error.headers}
            raise

    def _serve(self, request: Request, route: _Route, ctx: Context, key: str) -> Reply:
        fault = self.faults.pick(request.headers)
        if fault is not None and fault != DROP:
            raise self.faults.error(fault, ctx.model.id)
        served = route.handler(ctx)
        if fault == DROP:
            self.stats.record(ctx.model.id, route.operation, "drop")
            if isinstance(served.reply, StreamReply):
                return dataclasses.replace(served.reply, drop_after=_DROP_AFTER_EVENTS)
            return DropReply(served.reply.delay)
        self.limiter.consume(key, served.usage.total_tokens)
        self.stats.record(ctx.model.id, route.operation, "200", served.usage)
        kind = "embeddings" if route.kind == "embedding" else "completions"
        self.billing.record(kind, request.headers.get("openai-project", ""), key, ctx.model.id, served.usage)
        return dataclasses.replace(served.reply, headers=self.limiter.headers(key))

    def _model(self, name: str, route: _Route) -> ModelSpec:
        if not name:
            raise ApiError(400, "you must provide a model parameter", param="model")
        model = self.models.get(name)
        if model is None:
            raise ApiError(
                404,
                f"The model `{name}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        if model.kind != route.kind:
            raise ApiError(
                404,
                f"The model `{name}` is not supported by the /v1/{route.operation.replace('.', '/')} "
                "endpoint.",
                param="model",
            )
        return model

    def _models(self, model_id: str) -> JsonReply:
        if not model_id:
            data = [self._model_object(spec) for spec in self.models.values()]
            return JsonReply(200, {"object": "list", "data": data})
        spec = self.models.get(model_id)
        if spec is None:
            raise ApiError(
                404, f"The model '{model_id}' does not exist", param="model", code="model_not_found"
            )
        return JsonReply(200, self._model_object(spec))

    def _model_object(self, spec: ModelSpec) -> dict[str, Any]:
        return {"id": spec.id, "object": "model", "created": self._created, "owned_by": spec.owned_by}

    def _admin(self, request: Request) -> JsonReply:
        if request.method == "GET" and request.path == STATS_PATH:
            return JsonReply(200, self.stats.snapshot())
        if request.method == "POST" and request.path == RESET_PATH:
            self.reset()
            return JsonReply(200, {"reset": True})
        return ApiError(404, f"Invalid URL ({request.method} {request.path})").reply()


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return body if isinstance(body, dict) else None

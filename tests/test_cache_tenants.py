"""The response cache never hands one tenant another tenant's answer: two tenants share one real
redis-server, told apart in each of the ways real deployments tell them apart (a gateway virtual key
in `default_headers`, a per-request Authorization, organization and project headers, `api-key`,
Portkey's key header, an Azure AD token), and a request whose identity cannot be seen is not cached.
The fake API answers each request with the tenant its credentials name, so a crossed entry shows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from otel_llm import semconv as sc
from otel_llm.cache import cache_key
from tests.conftest import FakeAPI, fixture_json, httpx, points
from tests.test_response_cache import CHAT, RedisServer

pytestmark = pytest.mark.redis

AZURE = {"azure_endpoint": "https://tenants.openai.azure.com", "api_version": "2024-10-21"}


class TenantAPI(FakeAPI):
    """Answers a chat request with "answer for tenantX", X read from the request's own headers."""

    def _answer(self, request: Any) -> Any:
        self.requests.append(request)
        tenants = sorted({m for value in request.headers.values() for m in re.findall(r"tenant[AB]", value)})
        body = fixture_json("chat_completion.json")
        body["choices"][0]["message"]["content"] = "answer for " + ",".join(tenants)
        return httpx.Response(200, json=body)


# setup -> (client class prefix, client kwargs for tenant t, per-request kwargs for tenant t, cached)
Setup = tuple[str, Callable[[str], dict[str, Any]], Callable[[str], dict[str, Any]], bool]
SETUPS: dict[str, Setup] = {
    "gateway_virtual_key_in_default_headers": (
        "", lambda t: {"api_key": "gateway", "default_headers": {"Authorization": f"Bearer vk-{t}"}},
        lambda t: {}, True),
    "byok_authorization_in_extra_headers": (
        "", lambda t: {"api_key": "shared"}, lambda t: {"extra_headers": {"Authorization": f"Bearer sk-{t}"}}, True),
    "openai_organization_header": (
        "", lambda t: {"api_key": "shared"}, lambda t: {"extra_headers": {"OpenAI-Organization": f"org-{t}"}}, True),
    "openai_project_header": (
        "", lambda t: {"api_key": "shared", "default_headers": {"OpenAI-Project": f"proj-{t}"}}, lambda t: {}, True),
    "api_key_header": (
        "", lambda t: {"api_key": "shared", "default_headers": {"api-key": f"key-{t}"}}, lambda t: {}, True),
    "portkey_header": (
        "", lambda t: {"api_key": "shared", "default_headers": {"x-portkey-api-key": f"pk-{t}"}}, lambda t: {}, True),
    "azure_ad_token": ("Azure", lambda t: {**AZURE, "azure_ad_token": f"aad-{t}"}, lambda t: {}, True),
    "azure_ad_token_provider": (
        "Azure", lambda t: {**AZURE, "azure_ad_token_provider": lambda: f"aad-{t}"}, lambda t: {}, False),
}


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-tenants")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(shared_redis: RedisServer) -> str:
    import redis

    client = redis.Redis.from_url(shared_redis.url)
    client.flushdb()
    client.close()
    return shared_redis.url


class Tenant:
    """One tenant's client (sync or async) on the shared fake API, and its per-request arguments."""

    def __init__(self, mode: str, fake: FakeAPI, setup: Setup, name: str) -> None:
        prefix, client_kwargs, request_kwargs, _ = setup
        self.loop: Any = None
        if mode == "async":
            import asyncio

            self.loop = asyncio.new_event_loop()
            http: Any = openai.DefaultAsyncHttpxClient(transport=httpx.MockTransport(fake.async_handler))
            cls: Any = getattr(openai, f"Async{prefix}OpenAI")
        else:
            http = openai.DefaultHttpxClient(transport=httpx.MockTransport(fake.handler))
            cls = getattr(openai, f"{prefix}OpenAI")
        kwargs = client_kwargs(name)
        if not prefix:
            kwargs.setdefault("base_url", "https://gateway.example.com/v1")
        self.client = cls(http_client=http, max_retries=0, **kwargs)
        self.request = request_kwargs(name)

    def ask(self) -> str:
        result = self.client.chat.completions.create(**CHAT, **self.request)
        if self.loop is not None:
            result = self.loop.run_until_complete(result)
        return str(result.choices[0].message.content)

    def close(self) -> None:
        closing = self.client.close()
        if self.loop is not None:
            self.loop.run_until_complete(closing)
            self.loop.close()


def _results(reader: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for point in points(reader, sc.RESPONSE_CACHE_REQUESTS):
        name = point.attributes[sc.RESPONSE_CACHE_RESULT]
        out[name] = out.get(name, 0) + point.value
    return out


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_tenant_b_never_gets_tenant_as_answer(
    instrument: Any, redis_url: str, reader: Any, tmp_path: Path, setup: str, mode: str,
) -> None:
    fake = TenantAPI()
    cached = SETUPS[setup][3]
    instrument(response_cache=redis_url, response_cache_timeout=1.0)  # a deadline a busy machine meets
    a, b = Tenant(mode, fake, SETUPS[setup], "tenantA"), Tenant(mode, fake, SETUPS[setup], "tenantB")
    try:
        assert a.ask() == "answer for tenantA"
        assert a.ask() == "answer for tenantA"  # A's own repeat: served from the cache when cacheable
        assert b.ask() == "answer for tenantB"  # the same request from B: never A's entry
        assert b.ask() == "answer for tenantB"
    finally:
        a.close()
        b.close()
    if cached:
        assert len(fake.requests) == 2
        assert _results(reader) == {"miss": 2, "hit": 2}
    else:  # identity unknown until the request is sent: not cached at all
        assert len(fake.requests) == 4
        assert _results(reader) == {}


# --- the identity part of the key, as a pure function ----------------------------------------------
def _client(**kw: Any) -> Any:
    return openai.OpenAI(**{"api_key": "sk-shared", "base_url": "https://gateway.example.com/v1", **kw})


def test_headers_that_identify_nobody_keep_the_key_and_all_others_change_it() -> None:
    base = cache_key("chat", "create", _client(), CHAT)
    assert base is not None
    same = [
        {"extra_headers": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
        {"extra_headers": {"X-Stainless-Retry-Count": "1", "User-Agent": "my-app/1.0"}},
        {"extra_headers": {"Idempotency-Key": "abc"}},
        {"timeout": 3},
    ]
    for extra in same:
        assert cache_key("chat", "create", _client(), {**CHAT, **extra}) == base, extra
    # An unknown header is hashed in: over-keying costs only hit rate, under-keying leaks answers.
    assert cache_key("chat", "create", _client(), {**CHAT, "extra_headers": {"X-Tenant": "a"}}) != base
    # The Authorization the SDK sends anyway, given again per request: the same request, the same key.
    same_auth = {"extra_headers": {"Authorization": "Bearer sk-shared"}}
    assert cache_key("chat", "create", _client(), {**CHAT, **same_auth}) == base
    # Removing a header with Omit is a different request.
    assert cache_key("chat", "create", _client(default_headers={"X-Team": "a"}),
                     {**CHAT, "extra_headers": {"X-Team": openai.omit}}) == base
    assert cache_key("chat", "create", _client(default_headers={"X-Team": "a"}), CHAT) != base


def test_requests_whose_identity_cannot_be_seen_are_not_cached() -> None:
    class Signed(httpx.Auth):
        def auth_flow(self, request: Any) -> Any:
            request.headers["Authorization"] = "Bearer signed"
            yield request

    def hook(request: Any) -> None:
        request.headers["X-Tenant"] = "set late"

    class CustomAuthClient(openai.OpenAI):
        def _prepare_options(self, options: Any) -> Any:
            options.headers = {**(options.headers or {}), "Authorization": "Bearer late"}
            return super()._prepare_options(options)

    class SigningHttpClient(openai.DefaultHttpxClient):  # type: ignore[misc]
        def send(self, request: Any, **kwargs: Any) -> Any:
            request.headers["Authorization"] = "Bearer signed late"
            return super().send(request, **kwargs)

    unseen = [
        _client(api_key=lambda: "sk-from-provider"),
        _client(http_client=SigningHttpClient()),
        _client(http_client=openai.DefaultHttpxClient(auth=Signed())),
        _client(http_client=openai.DefaultHttpxClient(event_hooks={"request": [hook]})),
        CustomAuthClient(api_key="sk-shared", base_url="https://gateway.example.com/v1"),
        openai.AzureOpenAI(**AZURE, azure_ad_token_provider=lambda: "aad"),
    ]
    for client in unseen:
        assert cache_key("chat", "create", client, CHAT) is None, type(client).__name__
    # The SDK's own Azure redirect hook is not a reason to refuse.
    assert cache_key("chat", "create", openai.AzureOpenAI(**AZURE, azure_ad_token="aad"), CHAT) is not None


def test_http_client_headers_and_azure_credentials_are_part_of_the_identity() -> None:
    base = cache_key("chat", "create", _client(), CHAT)
    with_header = _client(http_client=openai.DefaultHttpxClient(headers={"X-Api-Key": "tenantA"}))
    assert cache_key("chat", "create", with_header, CHAT) not in (None, base)
    keys = {
        cache_key("chat", "create", openai.AzureOpenAI(**AZURE, **auth), CHAT)
        for auth in ({"azure_ad_token": "a"}, {"azure_ad_token": "b"}, {"api_key": "a"}, {"api_key": "b"})
    }
    assert len(keys) == 4 and None not in keys

"""The ground-truth stats endpoint, the Python API's lifecycle, and the `otel-llm simulate` CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.request
from typing import Any

import openai
import pytest
from sim_helpers import Api, get_json, post

from otel_llm.simulator import Simulator, SimulatorConfig, main
from otel_llm.simulator.cli import build_parser, config_from_args

USER: list[Any] = [{"role": "user", "content": "Where is my refund?"}]


def test_stats_match_what_the_sdk_saw(api: Api, sim: Simulator) -> None:
    seen = [
        api.call("chat.completions.create", model="gpt-4.1", messages=USER).usage,
        api.call("chat.completions.create", model="o4-mini", messages=USER).usage,
        api.stream("chat.completions.create", model="gpt-4.1", messages=USER,
                   stream_options={"include_usage": True})[-1].usage,
    ]  # fmt: skip
    reply = api.call("responses.create", model="gpt-4.1", input="hello")
    with pytest.raises(openai.RateLimitError):
        api.call("chat.completions.create", model="gemini-2.5-flash", messages=USER,
                 extra_headers={"x-simulator-fail": "429"})  # fmt: skip
    stats = get_json(sim.url + "/_simulator/stats")
    assert stats == sim.stats()
    gpt = stats["models"]["gpt-4.1"]
    assert gpt["requests"] == 3 and gpt["status_codes"] == {"200": 3}
    assert gpt["operations"] == {"chat.completions": 2, "responses": 1}
    assert gpt["prompt_tokens"] == seen[0].prompt_tokens + seen[2].prompt_tokens + reply.usage.input_tokens
    assert (
        gpt["completion_tokens"]
        == seen[0].completion_tokens + seen[2].completion_tokens + reply.usage.output_tokens
    )
    assert (
        stats["models"]["o4-mini"]["reasoning_tokens"] == seen[1].completion_tokens_details.reasoning_tokens
    )
    assert stats["models"]["gemini-2.5-flash"] == {
        "requests": 1, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "reasoning_tokens": 0,
        "total_tokens": 0, "status_codes": {"429": 1}, "operations": {"chat.completions": 1},
    }  # fmt: skip
    assert stats["total"]["requests"] == 5

    status, _, _ = post(sim.url + "/_simulator/reset", {})
    assert status == 200 and get_json(sim.url + "/_simulator/stats")["total"]["requests"] == 0


def test_stats_count_a_401_under_the_model_it_asked_for(make_api: Any, sim: Simulator) -> None:
    with pytest.raises(openai.AuthenticationError):
        make_api(api_key="sk-invalid").call("chat.completions.create", model="deepseek-v3.2", messages=USER)
    assert sim.stats()["models"]["deepseek-v3.2"]["status_codes"] == {"401": 1}


def test_simulator_lifecycle() -> None:
    simulator = Simulator(config=SimulatorConfig(latency_scale=0))
    with pytest.raises(RuntimeError, match="not running"):
        _ = simulator.base_url
    with simulator:
        assert simulator.base_url == f"http://127.0.0.1:{simulator.port}/v1"
        stats_url = simulator.url + "/_simulator/stats"
        assert get_json(stats_url)["total"]["requests"] == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(stats_url, timeout=1)
    simulator.stop()  # idempotent


def test_stop_does_not_wait_for_slow_replies() -> None:
    simulator = Simulator(config=SimulatorConfig(ttft_min=30, ttft_max=30)).start()
    client = openai.OpenAI(base_url=simulator.base_url, api_key="sk-test", max_retries=0)
    worker = threading.Thread(target=lambda: _swallow(client), daemon=True)
    worker.start()
    worker.join(0.2)
    simulator.stop()
    worker.join(5)
    assert not worker.is_alive()
    client.close()


def _swallow(client: openai.OpenAI) -> None:
    try:
        client.chat.completions.create(model="gpt-4.1", messages=USER)
    except openai.APIConnectionError:
        pass


def test_cli_flags_build_the_config() -> None:
    args = build_parser().parse_args(
        ["--port", "0", "--rate-429", "0.05", "--rate-500", "0.01", "--ttft-ms", "100-300", "--latency-scale", "0",
         "--cache-min-tokens", "1024", "--cache-increment", "128", "--rpm", "60", "--model", "my-gateway-model"]
    )  # fmt: skip
    config = config_from_args(args)
    assert (config.rate_429, config.rate_500, config.rpm_limit) == (0.05, 0.01, 60)
    assert (config.ttft_min, config.ttft_max) == (0.1, 0.3)
    assert (config.cache_min_tokens, config.cache_increment) == (1024, 128)
    assert config.extra_models == ("my-gateway-model",)


@pytest.mark.parametrize(
    "argv", [["--rate-429", "1.5"], ["--ttft-ms", "9-1"], ["--rate-429", "0.6", "--rate-500", "0.6"]]
)
def test_cli_rejects_bad_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "error" in capsys.readouterr().err


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    assert "--rate-429" in capsys.readouterr().out


def test_cli_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otel_llm.simulator",
            "--port",
            "0",
            "--latency-scale",
            "0",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        base_url = banner.split("OPENAI_BASE_URL=")[1].split()[0]
        with openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as client:
            assert client.chat.completions.create(model="gpt-4.1", messages=USER).usage
        assert get_json(base_url.removesuffix("/v1") + "/_simulator/stats")["total"]["requests"] == 1
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        process.stdout.close()  # type: ignore[union-attr]

"""`otel-llm simulate`: run the simulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .config import SimulatorConfig
from .server import Simulator

__all__ = ["build_parser", "main"]

_DEFAULTS = SimulatorConfig()


def build_parser(prog: str = "otel-llm simulate") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Offline OpenAI-compatible API on loopback, with deterministic token usage, prompt "
        "caching, realistic latency and fault injection. Stats: GET /_simulator/stats.",
        epilog="Per-request faults: send 'x-simulator-fail: 429' (or 401, 500, 503, drop), or "
        "'x-simulator-fail-sequence: 429,500' to fail the first attempts of a call and then succeed.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--port", type=int, default=8080, help="port to bind, 0 for any free one (default: %(default)s)")
    add(
        "--latency-scale",
        type=_non_negative,
        default=_DEFAULTS.latency_scale,
        help="multiply every delay; 0 = instant, 2 = twice as slow (default: %(default)s)",
    )
    add(
        "--ttft-ms",
        type=_range,
        default=(_DEFAULTS.ttft_min * 1000, _DEFAULTS.ttft_max * 1000),
        metavar="MIN-MAX",
        help="time to first chunk before the model's latency factor (default: 20-80)",
    )
    add(
        "--chunk-delay-ms",
        type=_non_negative,
        default=_DEFAULTS.chunk_delay * 1000,
        help="delay between streamed chunks (default: %(default)s)",
    )
    add(
        "--output-tokens",
        type=_range,
        default=(_DEFAULTS.min_output_tokens, _DEFAULTS.max_output_tokens),
        metavar="MIN-MAX",
        help="visible reply length in tokens (default: 12-48)",
    )
    for status in (401, 429, 500, 503):
        add(
            f"--rate-{status}",
            type=_probability,
            default=0.0,
            metavar="P",
            help=f"probability that a request fails with {status} (default: 0)",
        )
    add(
        "--retry-after",
        type=_non_negative,
        default=_DEFAULTS.retry_after,
        help="seconds a 429 asks the client to wait (default: %(default)s)",
    )
    add("--rpm", type=int, default=0, help="requests per minute per API key, 0 = unlimited (default: 0)")
    add("--tpm", type=int, default=0, help="tokens per minute per API key, 0 = unlimited (default: 0)")
    add(
        "--cache-min-tokens",
        type=int,
        default=_DEFAULTS.cache_min_tokens,
        help="shortest cacheable prompt; OpenAI uses 1024 (default: %(default)s)",
    )
    add(
        "--cache-increment",
        type=int,
        default=_DEFAULTS.cache_increment,
        help="cache block size in tokens; OpenAI uses 128 (default: %(default)s)",
    )
    add(
        "--cache-ttl",
        type=_non_negative,
        default=_DEFAULTS.cache_ttl,
        help="seconds a cached prefix lives (default: %(default)s)",
    )
    add("--billing-lag", type=_non_negative, default=0.0, metavar="SECONDS",
        help="the organization Costs/Usage endpoints leave out the last SECONDS served (default: 0)")
    add("--seed", type=int, default=0, help="seed of the random fault draws (default: 0)")
    add(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="serve an extra chat model, e.g. a gateway's own name (repeatable)",
    )
    add(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG logs every request (default: %(default)s)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        latency_scale=args.latency_scale,
        ttft_min=args.ttft_ms[0] / 1000,
        ttft_max=args.ttft_ms[1] / 1000,
        chunk_delay=args.chunk_delay_ms / 1000,
        min_output_tokens=int(args.output_tokens[0]),
        max_output_tokens=int(args.output_tokens[1]),
        rate_401=args.rate_401,
        rate_429=args.rate_429,
        rate_500=args.rate_500,
        rate_503=args.rate_503,
        retry_after=args.retry_after,
        rpm_limit=args.rpm,
        tpm_limit=args.tpm,
        cache_min_tokens=args.cache_min_tokens,
        cache_increment=args.cache_increment,
        cache_ttl=args.cache_ttl,
        seed=args.seed,
        extra_models=tuple(args.model),
        billing_lag=args.billing_lag,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    try:
        simulator = Simulator(args.host, args.port, config).start()
    except OSError as error:
        print(f"otel-llm simulate: cannot bind {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    print(
        f"otel-llm simulator: OPENAI_BASE_URL={simulator.base_url}  stats: {simulator.url}/_simulator/stats",
        flush=True,
    )
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    return 0


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _range(text: str) -> tuple[float, float]:
    low, sep, high = text.partition("-")
    try:
        bounds = (float(low), float(high if sep else low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX, got {text!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"expected 0 <= MIN <= MAX, got {text!r}")
    return bounds

"""The `otel-llm` command: one subcommand per module (simulate, demo, report, doctor, budgets)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# subcommand -> (module, one-line help). Each module has main(argv) -> exit code.
COMMANDS = {
    "simulate": ("otel_llm.simulator", "run the offline OpenAI-compatible simulator"),
    "demo": ("otel_llm.cli.demo", "simulator + Prometheus + Alertmanager + workload, then the report"),
    "report": ("otel_llm.cli.report", "daily spend report and month-end forecast from Prometheus"),
    "doctor": ("otel_llm.cli.doctor", "explain why no LLM telemetry shows up"),
    "budgets": ("otel_llm.cli.budgets", "budget rules: `otel-llm budgets render`"),
    "reconcile": ("otel_llm.cli.reconcile", "compare the provider's bill with the recorded spend, per day and model"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-llm", description="OpenTelemetry for LLM calls made with the openai SDK.",
                                     epilog="`otel-llm COMMAND --help` for each command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, text) in COMMANDS.items():
        # add_help=False: the subcommand's own parser answers --help.
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args or args[0].startswith("-"):
        parser.parse_args(args)  # prints help / usage and exits 0 or 2
        parser.error("a command is required")
    if args[0] not in COMMANDS:
        parser.parse_args(args[:1])  # exits 2 with argparse's "invalid choice"
    module = importlib.import_module(COMMANDS[args[0]][0])
    try:
        return int(module.main(args[1:]) or 0)
    except KeyboardInterrupt:
        print("otel-llm: interrupted", file=sys.stderr)
        return 130

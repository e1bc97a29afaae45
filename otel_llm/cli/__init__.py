"""The `otel-llm` command: one subcommand per module (simulate, demo, report, doctor, budgets)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
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
# subcommand -> modules it needs beyond the core package; all come with the `cli` extra.
NEEDS = {
    "demo": ("openai", "yaml", "opentelemetry.sdk", "opentelemetry.distro", "opentelemetry.exporter.prometheus"),
    "budgets": ("yaml",),
}
EXTRA_HINT = "pip install 'otel-llm[cli]' (from a clone of the repository: pip install '.[cli]')"


def missing_modules(command: str) -> list[str]:
    """The modules `command` needs that are not installed."""
    missing = []
    for name in NEEDS.get(command, ()):
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(name)
    return missing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-llm", description="OpenTelemetry for LLM calls made with the openai SDK.",
                                     epilog="`otel-llm COMMAND --help` for each command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, text) in COMMANDS.items():
        # add_help=False: the subcommand's own parser answers --help.
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            code = _run(list(sys.argv[1:] if argv is None else argv))
        finally:  # also on argparse's SystemExit after --help
            sys.stdout.flush()  # here, where a closed pipe is caught below, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader went away (`otel-llm doctor | head`): that is not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(args: list[str]) -> int:
    parser = build_parser()
    if not args or args[0].startswith("-"):
        parser.parse_args(args)  # prints help / usage and exits 0 or 2
        parser.error("a command is required")
    if args[0] not in COMMANDS:
        parser.parse_args(args[:1])  # exits 2 with argparse's "invalid choice"
    missing = missing_modules(args[0])
    if missing and not {"-h", "--help"} & set(args[1:]):
        print(f"otel-llm {args[0]}: error: needs the `cli` extra ({', '.join(missing)} not installed): "
              f"{EXTRA_HINT}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[args[0]][0])
        return int(module.main(args[1:]) or 0)
    except ModuleNotFoundError as exc:  # a dependency NEEDS does not list yet: still say what to do
        print(f"otel-llm {args[0]}: error: {exc.name} is not installed: {EXTRA_HINT}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("otel-llm: interrupted", file=sys.stderr)
        return 130

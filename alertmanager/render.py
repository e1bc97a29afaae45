"""Render alertmanager.yml.tmpl into alertmanager.yml from the environment (stdlib only).

Alertmanager 0.25 expands no environment variables and has no `url_file` for webhooks, so the
deployment renders its config once at start (compose runs this in a one-shot container before
Alertmanager). Values are inserted as JSON strings, which are valid YAML scalars whatever they
contain; a block between `# if VAR` and `# endif` is dropped when VAR is unset or empty.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import string
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).parent
_IF: Final = re.compile(r"^# if ([A-Z_][A-Z0-9_]*)\s*$")
_ENDIF: Final = re.compile(r"^# endif\s*$")
# Optional variables and their defaults; any other ${VAR} outside a dropped block is required.
DEFAULTS: Final[Mapping[str, str]] = {"SLACK_CHANNEL": "#llm-alerts", "RUNBOOK_BASE_URL": ""}
# Variables spliced into a longer string (a URL prefix), so they cannot be JSON-quoted: inserted
# as they are, only when they are an http(s) URL made of characters that cannot end a YAML
# single-quoted string or start a new line.
PREFIXES: Final = frozenset({"RUNBOOK_BASE_URL"})
_SAFE_URL: Final = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]*")
# alertmanager.yml in the repository is the render with no integration set, under this header.
EXAMPLE_HEADER: Final = (
    "# GENERATED: alertmanager.yml.tmpl rendered with no integration configured (a test checks it is\n"
    "# fresh). It is valid and shows the routing tree; deployments render their own with secrets.\n"
)


class RenderError(ValueError):
    """The template uses a variable that is not set, or its if/endif blocks are unbalanced."""


def _keep_lines(template: str, env: Mapping[str, str]) -> list[str]:
    kept: list[str] = []
    condition: str | None = None
    for number, line in enumerate(template.splitlines(), start=1):
        if match := _IF.match(line):
            if condition is not None:
                raise RenderError(f"line {number}: nested '# if' is not supported")
            condition = match.group(1)
        elif _ENDIF.match(line):
            if condition is None:
                raise RenderError(f"line {number}: '# endif' without '# if'")
            condition = None
        elif condition is None or env.get(condition):
            kept.append(line)
    if condition is not None:
        raise RenderError(f"'# if {condition}' is never closed")
    return kept


def render(template: str, env: Mapping[str, str]) -> str:
    """The rendered configuration text for `env`."""
    values = {**DEFAULTS, **{k: v for k, v in env.items() if v}}
    text = "\n".join(_keep_lines(template, values)) + "\n"
    quoted = {name: json.dumps(value) for name, value in values.items()}
    for name in PREFIXES:
        value = values.get(name, "")
        if value and not _SAFE_URL.fullmatch(value):
            raise RenderError(f"{name} must be an http(s) URL without quotes or spaces, got {value!r}")
        quoted[name] = value
    try:
        return string.Template(text).substitute(quoted)
    except KeyError as exc:
        raise RenderError(f"environment variable {exc.args[0]} is required by the template") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=HERE / "alertmanager.yml.tmpl")
    # No default: a rendered file holds secrets and must not land in the work tree by accident.
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        text = render(args.template.read_text(encoding="utf-8"), os.environ)
    except RenderError as exc:
        print(f"error: {args.template}: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Helpers for the packaging tests: README blocks as written, fresh venvs, a copy of the checkout."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def readme_blocks(section: str, language: str = "sh") -> list[str]:
    """The fenced `language` blocks of README.md's `## section`, exactly as written."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no section {section!r}"
    return re.findall(rf"^```{language}\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL)


def fresh_venv(where: Path) -> Path:
    """A new venv with pip and nothing else; returns its bin directory."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    return where / "bin"


def copy_checkout(dest: Path) -> Path:
    """The repository's files as a fresh clone would have them (tracked and new, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def clean_env(bindir: Path, **extra: str) -> dict[str, str]:
    """This process's environment minus its venv and any OTEL_* setting, with `bindir` first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "OPENAI_", "VIRTUAL_ENV", "PYTHON"))}
    own = str(Path(sys.executable).parent)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != own]
    env["PATH"] = os.pathsep.join([str(bindir), *path])
    env["VIRTUAL_ENV"] = str(bindir.parent)
    env.update(extra)
    return env

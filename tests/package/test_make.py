"""The one-command entry points: quiet setup steps (installers' output in a log, one line per step on
the terminal), and CI running the test command the README names."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .helpers import REPO, readme_blocks

STEP = str(REPO / "scripts" / "step")


def test_a_step_prints_one_line_and_keeps_the_installer_output_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    noisy = "for i in $(seq 100); do echo Collecting package-$i; done"
    done = subprocess.run([STEP, str(log), "Installing things", "bash", "-c", noisy], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0
    assert done.stdout.splitlines() == [done.stdout.splitlines()[0]]
    assert re.fullmatch(r"Installing things: done \(\d+s\)", done.stdout.strip())
    assert done.stderr == ""
    assert log.read_text().count("\nCollecting package-") == 100


def test_a_failed_step_shows_its_own_last_lines_and_its_exit_status(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    subprocess.run([STEP, str(log), "first", "echo", "earlier step output"], check=True, capture_output=True)
    done = subprocess.run([STEP, str(log), "Installing", "bash", "-c", "echo E: Unable to locate package; exit 100"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 100
    assert "Installing: FAILED (exit 100" in done.stderr
    assert "E: Unable to locate package" in done.stderr
    assert "earlier step output" not in done.stderr


def test_make_tools_is_one_line_when_the_tools_are_there(tmp_path: Path) -> None:
    done = subprocess.run(["make", "-s", "--no-print-directory", "tools", f"LOG={tmp_path / 'setup.log'}"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1, done.stdout
    assert "apt" not in done.stderr and "Reading package lists" not in done.stdout
    assert "install-tools: ok" in (tmp_path / "setup.log").read_text()


def test_ci_runs_the_test_command_the_readme_names() -> None:
    top = (REPO / "README.md").read_text().split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in re.findall(r"```sh\n(.*?)```", top, re.DOTALL)[0].splitlines()]
    assert commands[:2] == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"for target in test\b", ci) or "\nmake test\n" in ci
    assert readme_blocks("Tests")  # the Tests section names its commands

from __future__ import annotations

import subprocess
import sys

import pytest

from otel_llm.cli import COMMANDS, main


@pytest.mark.parametrize("argv", [[], *[[name] for name in COMMANDS], ["budgets", "render"]])
def test_help_exits_zero(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["nope"], ["report", "--format", "xml"], ["budgets", "frobnicate"]])
def test_usage_errors_exit_two(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_report_without_prometheus_fails_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--prometheus", "http://127.0.0.1:9"]) == 1
    assert "cannot query Prometheus" in capsys.readouterr().err


def test_console_script_module() -> None:
    result = subprocess.run([sys.executable, "-c", "import sys; from otel_llm.cli import main; sys.exit(main(['--help']))"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "demo" in result.stdout

"""A wheel is the product: build the sdist and wheel, check them with twine, install the wheel into a
fresh venv outside the repository, and run what the README shows from there. The core alone installs
no OpenTelemetry SDK and no PyYAML, and every command names the extra it lacks."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_llm.cli.procs import find_binary

from .helpers import REPO, clean_env, fresh_venv

pytestmark = pytest.mark.package


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    yield out


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_venv(tmp_path_factory.mktemp("venv") / "v")


def _run(bindir: Path, cwd: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = clean_env(bindir, PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1")
    return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("otel_llm-*.whl")
    return wheel


def test_sdist_and_wheel_pass_twine_and_carry_the_shipped_files(dist: Path) -> None:
    files = sorted(str(p) for p in dist.iterdir())
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True,
                             text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (sdist,) = dist.glob("otel_llm-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"prometheus/rules/cost.alerts.yml", "prometheus/budgets.yaml", "examples/prices.yaml",
            "otel_llm/cli/demo.py"} <= names


def test_core_alone_has_no_sdk_no_yaml_and_commands_name_the_extra(dist: Path, venv: Path, tmp_path: Path) -> None:
    installed = _run(venv, tmp_path, str(venv / "pip"), "install", "-q", str(_wheel(dist)))
    assert installed.returncode == 0, installed.stderr
    names = _run(venv, tmp_path, str(venv / "python"), "-m", "pip", "list", "--format=freeze").stdout.lower()
    assert "opentelemetry-api" in names
    assert "opentelemetry-sdk" not in names and "pyyaml" not in names and "openai" not in names

    # The library works on the API alone (no-op providers) and imports nothing of the SDK.
    script = ("import sys, otel_llm\n"
              "otel_llm.OpenAIInstrumentor().instrument()\n"
              "assert not [m for m in sys.modules if m.startswith('opentelemetry.sdk')], 'SDK imported'\n"
              "assert 'site-packages' in otel_llm.__file__, otel_llm.__file__\n"
              "from otel_llm.pricing import PricesFileError, load_prices_file\n"
              "open('p.yaml', 'w').write('models: {}')\n"
              "try:\n    load_prices_file('p.yaml')\nexcept PricesFileError as exc:\n    print(exc)\n")
    core = _run(venv, tmp_path, str(venv / "python"), "-c", script)
    assert core.returncode == 0, core.stderr
    assert "p.yaml: (file): a YAML prices file needs PyYAML: pip install 'otel-llm[yaml]'" in core.stdout

    for command in (["demo"], ["budgets", "render"]):
        done = _run(venv, tmp_path, str(venv / "otel-llm"), *command)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert "needs the `cli` extra" in done.stderr and "pip install 'otel-llm[cli]'" in done.stderr
    # What needs no extra still works.
    for command in (["simulate", "--help"], ["doctor", "--help"], ["report", "--help"]):
        assert _run(venv, tmp_path, str(venv / "otel-llm"), *command).returncode == 0, command


@pytest.mark.prometheus
@pytest.mark.skipif(find_binary("prometheus") is None or find_binary("prometheus-alertmanager", "alertmanager") is None,
                    reason="prometheus / alertmanager not installed: run scripts/install-tools")
def test_wheel_with_cli_extra_runs_the_demo_and_budgets_outside_the_repository(dist: Path, venv: Path,
                                                                               tmp_path: Path) -> None:
    installed = _run(venv, tmp_path, str(venv / "pip"), "install", "-q", f"{_wheel(dist)}[cli]")
    assert installed.returncode == 0, installed.stderr

    demo = _run(venv, tmp_path, str(venv / "otel-llm"), "demo", "--calls", "120")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "the daily budget alert fired" in demo.stdout
    assert "Traceback" not in demo.stdout + demo.stderr

    # No budgets file here: a clear error naming --budgets and the shipped example, which then renders.
    missing = _run(venv, tmp_path, str(venv / "otel-llm"), "budgets", "render")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "pass --budgets FILE" in missing.stderr
    example = missing.stderr.split("cp ", 1)[1].split()[0]
    assert Path(example).is_file() and str(REPO) not in example
    rendered = _run(venv, tmp_path, str(venv / "otel-llm"), "budgets", "render", "--budgets", example,
                    "--out", "budgets.yml")
    assert rendered.returncode == 0, rendered.stderr
    assert "otel_llm:budget_usd:daily" in (tmp_path / "budgets.yml").read_text()

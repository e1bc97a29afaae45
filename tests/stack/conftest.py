"""Fixtures for the telemetry-stack tests: real Prometheus / Alertmanager on loopback, a webhook.

Reusable by other suites: the factories take the rule files, scrape targets and config text, and
stop their process by PID at the end of the test. Tests that need the binaries carry
`@pytest.mark.prometheus` and skip, saying so, only when a binary is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # stackservers, for suites outside tests/stack too

from stackservers import (
    ALERTMANAGER_BINARIES,
    Alertmanager,
    Prometheus,
    WebhookReceiver,
    running_alertmanager,
    running_prometheus,
    tool,
    webhook_receiver,
)

REPO = Path(__file__).resolve().parents[2]


def require(*names: str) -> str:
    """The binary's path, or skip the test naming what is missing and how to install it."""
    found = tool(*names)
    if found is None:
        pytest.skip(f"{' or '.join(names)} not installed: run scripts/install-tools (CI does)")
    return found


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture
def promtool() -> str:
    return require("promtool")


@pytest.fixture
def amtool() -> str:
    return require("amtool")


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """Factory: start_prometheus(rule_files=..., scrape_targets=..., alertmanager_url=...)."""
    require("prometheus")
    with ExitStack() as stack:
        count = 0

        def start(**kwargs: Any) -> Prometheus:
            nonlocal count
            count += 1
            workdir = tmp_path / f"prometheus-{count}"
            workdir.mkdir()
            manager: AbstractContextManager[Prometheus] = running_prometheus(workdir, **kwargs)
            return stack.enter_context(manager)

        yield start


@pytest.fixture
def start_alertmanager(tmp_path: Path) -> Iterator[Callable[[str], Alertmanager]]:
    """Factory: start_alertmanager(config_text) -> a running Alertmanager."""
    require(*ALERTMANAGER_BINARIES)
    with ExitStack() as stack:
        count = 0

        def start(config_text: str) -> Alertmanager:
            nonlocal count
            count += 1
            workdir = tmp_path / f"alertmanager-{count}"
            workdir.mkdir()
            return stack.enter_context(running_alertmanager(workdir, config_text))

        yield start


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A loopback HTTP receiver that records the alert notifications POSTed to `webhook.url`."""
    with webhook_receiver() as receiver:
        yield receiver

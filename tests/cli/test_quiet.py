"""No tracebacks when nothing is wrong: a client that resets its connection (as a pooled keep-alive
connection does when its process exits) is normal life for a server, not an error to print."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from otel_llm.cli.stack import Webhook
from otel_llm.simulator import Simulator, SimulatorConfig


def _reset_connection(port: int, partial: bytes = b"") -> None:
    """Connect, optionally send part of a request, then close with RST (SO_LINGER 0)."""
    sock = socket.create_connection(("127.0.0.1", port))
    if partial:
        sock.sendall(partial)
    time.sleep(0.1)  # the server's handler thread is now blocked reading the request
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    time.sleep(0.2)  # let the handler see the reset


@pytest.mark.parametrize("partial", [b"", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"])
def test_simulator_is_quiet_when_a_client_resets(capfd: pytest.CaptureFixture[str], partial: bytes) -> None:
    with Simulator(config=SimulatorConfig(latency_scale=0)) as sim:
        for _ in range(3):
            _reset_connection(sim.port, partial)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ConnectionResetError" not in err, err


def test_webhook_is_quiet_when_a_client_resets(capfd: pytest.CaptureFixture[str]) -> None:
    webhook = Webhook()
    try:
        for partial in (b"", b"POST /alerts HTTP/1.1\r\nContent-Length: 10\r\n\r\n{"):
            _reset_connection(webhook.port, partial)
    finally:
        webhook.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ConnectionResetError" not in err, err


@pytest.mark.parametrize("argv", [["doctor"], ["--help"], ["demo", "--help"]])
def test_output_into_a_closed_pipe_is_quiet(argv: list[str]) -> None:
    """`otel-llm doctor | head`: the reader went away before the output; no BrokenPipeError traceback."""
    import subprocess
    import sys
    from pathlib import Path

    env = {"PATH": str(Path(sys.executable).parent), "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("otel-llm")), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `head` does once it has its lines: every write now fails with EPIPE
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err

"""A hostile Redis for tests: a loopback TCP server that speaks just enough RESP to pass for one (it
parses the client's commands and answers +OK) and answers GET or SET badly: trickled a byte at a
time, never, or with a reply of the wrong type. Port 0, stopped by the test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO

__all__ = ["HostileRedis", "hang", "reply", "trickle"]

# (the client's socket, the server's stop event) -> None: writes the reply (or does not)
Answer = Callable[[socket.socket, threading.Event], None]


def reply(data: bytes) -> Answer:
    """Answer at once with `data` (a RESP reply of any type, or garbage)."""
    def answer(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(data)
    return answer


def trickle(data: bytes, interval: float = 0.03) -> Answer:
    """Answer with `data` one byte every `interval` seconds (each read gets a byte well within 50 ms)."""
    def answer(sock: socket.socket, stop: threading.Event) -> None:
        for i in range(len(data)):
            if stop.wait(interval):
                return
            sock.sendall(data[i:i + 1])
    return answer


def hang() -> Answer:
    """Never answer (the connection stays open until the client gives up or the server stops)."""
    def answer(sock: socket.socket, stop: threading.Event) -> None:
        stop.wait()
    return answer


class HostileRedis:
    """`HostileRedis(get=..., set=...)`, used as a context manager; `.url` for OTEL_LLM_RESPONSE_CACHE."""

    def __init__(self, get: Answer | None = None, set: Answer | None = None) -> None:
        self.answers = {
            b"HELLO": reply(b"%1\r\n+proto\r\n:3\r\n"),  # redis-py 5+ opens with HELLO 3 (RESP3)
            b"GET": get or reply(b"_\r\n"),  # RESP3 null: a miss
            b"SET": set or reply(b"+OK\r\n"),
        }
        self.commands: list[bytes] = []
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)  # so the accept loop sees the stop event
        self.port = int(self._listener.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._threads: list[threading.Thread] = []
        self._clients: list[socket.socket] = []

    def __enter__(self) -> HostileRedis:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._listener.close()
        for sock in list(self._clients):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            self._clients.append(sock)
            self._spawn(self._serve, sock)

    def _serve(self, sock: socket.socket) -> None:
        stream = sock.makefile("rb")
        try:
            while not self._stop.is_set():
                args = _read_command(stream)
                if args is None:
                    return
                name = args[0].upper()
                self.commands.append(name)
                self.answers.get(name, reply(b"+OK\r\n"))(sock, self._stop)
        except OSError:
            return  # the client shut the connection: what a deadline does
        finally:
            stream.close()


def _read_command(stream: BinaryIO) -> list[bytes] | None:
    """One command as the client sends it (`*N` then N bulk strings); None at the end of the stream."""
    line = stream.readline()
    if not line.startswith(b"*"):
        return None
    args = []
    for _ in range(int(line[1:])):
        size = int(stream.readline()[1:])
        args.append(stream.read(size + 2)[:-2])
    return args


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True

"""The HTTP layer: a stdlib threading server that plays out the app's replies, and `Simulator`,
which runs it on a background thread.

HTTP/1.1 with keep-alive, so the SDK's connection pool behaves as against a real API; streams use
chunked transfer encoding, so a dropped stream looks to the client exactly like a crashed upstream
(an incomplete body), not like a normal end of stream.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .app import Request, SimulatorApp
from .config import SimulatorConfig
from .replies import JsonReply, Reply, StreamReply

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Simulator"]

log = logging.getLogger(__name__)


class Simulator:
    """An OpenAI-compatible server on loopback, for tests and demos.

    >>> with Simulator(config=SimulatorConfig(latency_scale=0)) as sim:
    ...     client = openai.OpenAI(base_url=sim.base_url, api_key="sk-test")  # doctest: +SKIP
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, config: SimulatorConfig | None = None) -> None:
        self.host = host
        self.app = SimulatorApp(config or SimulatorConfig())
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> SimulatorConfig:
        return self.app.config

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port=0); only valid once started."""
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as the openai client's base_url."""
        return self.url + "/v1"

    def start(self) -> Self:
        """Bind and serve on a daemon thread; returns self so `Simulator().start()` chains."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self._requested_port), self.app)
        # A short poll interval keeps stop() fast (shutdown waits for the loop's next poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="otel-llm-simulator",
            daemon=True,
        )
        self._thread.start()
        log.info("simulator listening on %s", self.base_url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's mode)."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving and close every open connection, including idle keep-alive ones."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(5)

    def stats(self) -> dict[str, Any]:
        """What was served so far; the same JSON as GET /_simulator/stats."""
        return self.app.stats.snapshot()

    def reset(self) -> None:
        """Forget stats, cached prompts, fail-sequence attempts and rate-limit windows."""
        self.app.reset()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client must never keep the process alive

    def __init__(self, address: tuple[str, int], app: SimulatorApp) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.app = app
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a reset keep-alive connection, a stream closed early) is normal
        life for a server: logged at debug. Anything else is a fault of ours: logged with its traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s went away", client_address)
            return
        log.exception("error while serving %s", client_address)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            _shutdown(connection)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "otel-llm-simulator"
    timeout = 120  # seconds an idle keep-alive connection may hold a thread
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; with Nagle's algorithm on, the second one waits
        # for the client's delayed ACK (~40 ms) on every keep-alive request, and stream chunks bunch up.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        reply = self.server.app.handle(Request(self.command, path, headers, body, url.query))
        try:
            self._write(reply)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away (e.g. closed a stream early); nothing to tell it.
            self.close_connection = True

    def _write(self, reply: Reply) -> None:
        if isinstance(reply, JsonReply):
            self._write_json(reply)
        elif isinstance(reply, StreamReply):
            self._write_stream(reply)
        else:
            self._wait(reply.delay)
            self._drop()

    def _write_json(self, reply: JsonReply) -> None:
        payload = json.dumps(reply.body).encode()
        if not self._wait(reply.delay):
            return self._drop()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _write_stream(self, reply: StreamReply) -> None:
        self.send_response(200)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for count, (delay, payload) in enumerate(reply.events):
            if count == reply.drop_after or not self._wait(delay):
                return self._drop()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _wait(self, delay: float) -> bool:
        """Sleep, waking early if the server stops; False when it did."""
        if delay <= 0:
            return not self.server.stopping.is_set()
        return not self.server.stopping.wait(delay)

    def _drop(self) -> None:
        self.close_connection = True
        self.wfile.flush()
        _shutdown(self.connection)


def _shutdown(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer

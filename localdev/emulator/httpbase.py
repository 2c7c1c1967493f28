"""Plumbing shared by the Genesys emulator and the external-system stub.

A quiet, keep-alive (HTTP/1.1) JSON server that runs in a daemon thread, and the blocking
`serve until SIGINT/SIGTERM` loop that `python -m localdev emulator|external` uses.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Self, cast

# Reading in pieces keeps an oversized body from being held in memory just to be refused.
_DRAIN_CHUNK_BYTES = 65536


class QuietThreadingServer(ThreadingHTTPServer):
    """One daemon thread per connection; connection resets are not worth a traceback."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        # Open keep-alive connections, so that stopping the server also ends them (a stopped
        # server must look down to clients with pooled connections too).
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def connection_opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def connection_closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the other side
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return  # the client went away (e.g. it timed out during an injected delay)
        super().handle_error(request, client_address)


class JsonHandler(BaseHTTPRequestHandler):
    """Base request handler: HTTP/1.1 keep-alive, no per-request logging, JSON helpers."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    timeout = 30  # an idle keep-alive connection frees its thread after this many seconds
    server_version = "localdev"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet on purpose: thousands of requests go through during benchmarks."""

    def setup(self) -> None:
        super().setup()
        self._tracking_server().connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._tracking_server().connection_closed(self.connection)

    def _tracking_server(self) -> QuietThreadingServer:
        # JsonHandler only ever runs under a QuietThreadingServer.
        return cast(QuietThreadingServer, self.server)

    def request_path(self) -> str:
        return self.path.split("?", 1)[0]

    def read_body(self, limit: int | None = None) -> tuple[bytes, bool]:
        """The request body, and whether it was over `limit` (then it is drained, not kept).

        The body is always consumed so that the connection can serve the next request.
        """
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, _DRAIN_CHUNK_BYTES))
                if not chunk:
                    break
                remaining -= len(chunk)
            return b"", True
        return (self.rfile.read(length) if length > 0 else b""), False

    def send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_payload(status, payload, "application/json", headers)

    def send_payload(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if headers:
            for name, value in headers.items():
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def parse_json(body: bytes) -> Any:
    """The decoded JSON document; raises ValueError on anything else."""
    return json.loads(body.decode("utf-8")) if body else None


class BackgroundServer:
    """Runs a server's `serve_forever` in a daemon thread."""

    def __init__(self, server: QuietThreadingServer) -> None:
        self.server = server
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() returns within this
            name=f"{type(self.server).__name__}-{self.base_url}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server.close_connections()
        self._thread.join()
        self._thread = None


def serve_until_signalled(base_url: str, stop: Callable[[], None]) -> int:
    """Announce `base_url`, block until SIGINT or SIGTERM, then call `stop`. Returns 0."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"listening on {base_url}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def serve_main_of(name: str, host: str, port: int, build: Callable[[], LocalService]) -> int:
    """`python -m localdev emulator|external`: start, serve until signalled, stop. A port out
    of range, one in use or a host that does not resolve is one line on stderr, status 2."""
    if not 0 <= port <= 65535:
        print(f"localdev {name}: --port must be 0-65535, got {port}", file=sys.stderr)
        return 2
    try:
        service = build().start()
    except OSError as error:
        reason = error.strerror or str(error)
        print(f"localdev {name}: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        return 2
    return serve_until_signalled(service.base_url, service.stop)


class LocalService:
    """start()/stop()/`with` and `base_url` for a server that runs in a daemon thread.
    Subclasses say how to build their server and what to call themselves in errors."""

    service_name = "the service"

    def __init__(self) -> None:
        self._server: BackgroundServer | None = None

    def _build_server(self) -> QuietThreadingServer:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.service_name} is not started")
        return self._server.base_url

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{self.service_name} is already started")
        self._server = BackgroundServer(self._build_server())
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

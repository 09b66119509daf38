"""The HTTP server: bytes on a socket in, ``Router`` handlers called, bytes out.

This is the emulator's only module with threads (one per connection, from
``ThreadingHTTPServer``, plus the serving thread). It knows nothing about IoT Events: it turns
``ApiError`` into the rest-json error shape, any other exception into a 500
InternalFailureException, and honours a response's injected latency and dropped connection.
SigV4 signatures are checked only when it is given a ``RequestCheck`` (emulator/sigv4.py).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from ordered_sender.emulator.wire import ApiError, ApiRequest, ApiResponse, Router, error_response

_log = logging.getLogger(__name__)

_SHUTDOWN_POLL_SECONDS = 0.05
"""How often the serving loop checks for stop(); short so tests start and stop quickly."""

RequestCheck = Callable[[str, str, Iterable[tuple[str, str]], bytes], None]
"""Called before routing with the method, the path and query as sent, the headers and the body;
raises ``ApiError`` to refuse the request (e.g. a bad signature)."""


_CLIENT_GONE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
"""Errors that mean the client went away mid-request."""


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive the way botocore's pool expects from AWS.
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (about 40 ms on Linux), which would cap a lane at ~25 requests/s.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: object) -> None:
        """Silenced: one stderr line per request would drown test and CLI output."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        response = self._respond(url.path, dict(parse_qsl(url.query)), body)
        if response.delay_seconds > 0:
            time.sleep(response.delay_seconds)
        if response.drop_connection:
            # No status line at all: the client cannot tell whether the request was processed.
            self.close_connection = True
            return
        encoded = response.encoded_body()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            # botocore reports it as ResponseMetadata.RequestId, as it does for AWS.
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(encoded)
        except _CLIENT_GONE:
            # The client gave up first (its read timeout passed during injected latency).
            self.close_connection = True

    def _respond(self, path: str, query: dict[str, str], body: bytes) -> ApiResponse:
        response = self._handle(path, query, body)
        if self.server.after is None:
            return response
        try:
            self.server.after()
        except Exception as error:
            # What the request changed is not saved: it must not be answered as a success.
            _log.exception("emulator could not save its state after %s %s", self.command, path)
            return error_response(
                ApiError(500, "InternalFailureException", f"Emulator state not saved: {error!r}")
            )
        return response

    def _handle(self, path: str, query: dict[str, str], body: bytes) -> ApiResponse:
        try:
            if self.server.check is not None:
                self.server.check(self.command, self.path, self.headers.items(), body)
            handler, parameters = self.server.router.resolve(self.command, path)
            return handler(ApiRequest(self.command, path, parameters, query, body))
        except ApiError as error:
            return error_response(error)
        except Exception as error:
            _log.exception("emulator handler failed on %s %s", self.command, path)
            return error_response(
                ApiError(500, "InternalFailureException", f"Emulator failure: {error!r}")
            )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        router: Router,
        check: RequestCheck | None,
        after: Callable[[], None] | None,
    ) -> None:
        self.router = router
        self.check = check
        self.after = after
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that drops its connection (a reset, a closed pipe) is routine for a test
        endpoint, not worth a traceback; anything else is a bug in the emulator and is logged
        with its traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, _CLIENT_GONE):
            _log.debug("client %s dropped the connection: %r", client_address, error)
            return
        _log.exception("emulator failed serving %s", client_address)


class HttpServer:
    """Serves a ``Router`` on ``host:port`` (port 0 picks a free one) from a background thread;
    ``check`` may refuse a request before it is routed; ``after`` runs after every request is
    handled and before it is answered (the state file saves there), a failure answering 500."""

    def __init__(
        self,
        router: Router,
        host: str = "127.0.0.1",
        port: int = 0,
        check: RequestCheck | None = None,
        after: Callable[[], None] | None = None,
    ) -> None:
        self._router = router
        self._check = check
        self._after = after
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port; raises ``RuntimeError`` before ``start``."""
        if self._server is None:
            raise RuntimeError("The server is not running; call start() first")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("The server is already running")
        self._server = _Server(self._address, self._router, self._check, self._after)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name="emulator-http",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

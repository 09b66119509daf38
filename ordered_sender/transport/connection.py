"""Kept-alive HTTP/1.1 connections to one host: only what a BatchPutMessage exchange needs.

Under urllib3, http.client parses every answer's headers with ``email.parser`` and builds a
handful of objects per request: at a thousand requests a second that was half of the lean
transport's CPU. A ``ConnectionPool`` writes a request as one buffer and reads the status line,
the headers and the body (Content-Length, chunked, or up to the close) with the socket file's
``readline``/``read``, which run in C.

Not here, on purpose: proxies (``HttpTransport`` sends through urllib3's ProxyManager behind
one), redirects, retries, compression, ``Expect: 100-continue``, HTTP/2. A connection is never
sent a second request before its answer has been read whole.

Faults: an exception of the socket or ssl modules while connecting resolves through
``CONNECT_ERROR_CODES``, one while writing the request or reading its answer through
``EXCHANGE_ERROR_CODES``, to the code botocore gives the same fault, and is raised as
``ConnectionFault(code, text)``; the connection is closed. An exception in neither table (a bug)
propagates. A pool used after ``close()`` raises ``PoolClosed``: that is the caller's bug.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import BinaryIO

from ordered_sender.transport import mapped_by_class


class MalformedAnswer(Exception):
    """What came back is not an HTTP/1.x answer, or was cut short."""


class ConnectionFault(Exception):
    """A request got no (whole) answer; ``code`` is botocore's code for the same fault."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


class PoolClosed(RuntimeError):
    """A request on a pool after its ``close()``: a bug of the caller, not a fault to retry."""


CONNECT_ERROR_CODES: Mapping[type[BaseException], str] = MappingProxyType(
    {
        # No answer to the connect, or to the TLS handshake, in time.
        TimeoutError: "ConnectTimeoutError",
        # The certificate, the handshake, or a plain-HTTP server on an https URL.
        ssl.SSLError: "SSLError",
        ssl.CertificateError: "SSLError",
        # Refused, unreachable, unknown host name (socket.gaierror): nothing was sent.
        OSError: "EndpointConnectionError",
    }
)
"""Exceptions while opening a connection, by class (nearest ancestor wins), with botocore's code."""

EXCHANGE_ERROR_CODES: Mapping[type[BaseException], str] = MappingProxyType(
    {
        # Sent (perhaps), no answer read in time.
        TimeoutError: "ReadTimeoutError",
        # Closed or reset before or during the answer, an answer that is not HTTP or is cut
        # short: the request may have been processed.
        OSError: "ConnectionClosedError",
        MalformedAnswer: "ConnectionClosedError",
    }
)
"""Exceptions while writing a request or reading its answer, by class, with botocore's code."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    """Header names in lower case; a repeated header's values joined with ", "."""
    body: bytes


MAX_LINE = 65_536
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024
"""Limits on what is read of an answer; beyond them it is a MalformedAnswer, as in http.client."""

_NO_BODY = frozenset({204, 304})


class _Connection:
    __slots__ = ("file", "socket")

    def __init__(self, connected: socket.socket) -> None:
        self.socket = connected
        self.file: BinaryIO = connected.makefile("rb")

    def dropped(self) -> bool:
        """Whether an idle connection is unusable: readable means the server closed it (or
        sent something nobody asked for)."""
        if isinstance(self.socket, ssl.SSLSocket) and self.socket.pending():
            return True
        try:
            readable, _, _ = select.select([self.socket], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        self.file.close()
        self.socket.close()


class ConnectionPool:
    """Requests to ``host``:``port`` over up to ``max_idle`` kept-alive connections.

    ``timeout`` bounds the connect (with the TLS handshake when ``tls`` is given) and each read
    and write, in seconds. More concurrent requests than ``max_idle`` open their own
    connections and close them afterwards. Safe to call from several threads.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        max_idle: int,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._timeout = timeout
        self._max_idle = max_idle
        self._tls = tls
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def request(self, head: bytes, body: bytes) -> Answer:
        """Send ``head`` (request line and headers, ending with the blank line) and ``body``;
        the answer read whole. Raises ConnectionFault or PoolClosed."""
        connection = self._take_idle() or self._connect()
        try:
            connection.socket.sendall(head + body)
            answer, keep = _read_answer(connection.file)
        except BaseException as error:
            connection.close()
            code = mapped_by_class(EXCHANGE_ERROR_CODES, type(error))
            if code is None:
                raise
            raise ConnectionFault(code, _text(error)) from error
        if keep:
            self._give_back(connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        """Close the idle connections; one in use is closed when its request ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take_idle(self) -> _Connection | None:
        while True:
            with self._lock:
                if self._closed:
                    raise PoolClosed("the transport was closed; open a new one to send")
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if not connection.dropped():
                return connection
            connection.close()

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self) -> _Connection:
        opened: socket.socket | None = None
        try:
            opened = socket.create_connection((self.host, self.port), timeout=self._timeout)
            opened.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                opened = self._tls.wrap_socket(opened, server_hostname=self.host)
        except BaseException as error:
            if opened is not None:
                opened.close()
            code = mapped_by_class(CONNECT_ERROR_CODES, type(error))
            if code is None:
                raise
            where = f"{self.host}:{self.port}"
            raise ConnectionFault(code, f"could not connect to {where}: {_text(error)}") from error
        return _Connection(opened)


def _text(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _read_answer(file: BinaryIO) -> tuple[Answer, bool]:
    """The answer on ``file`` and whether the connection may carry another request."""
    while True:
        version, status = _read_status(file)
        headers = _read_headers(file)
        if not 100 <= status < 200:
            break  # an interim answer (100 Continue, 103 Early Hints) is followed by the real one
    connection = headers.get("connection", "").lower()
    keep = version == b"HTTP/1.1" and "close" not in connection
    if status in _NO_BODY:
        return Answer(status, headers, b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Answer(status, headers, _read_chunked(file)), keep
    length = headers.get("content-length")
    if length is None:
        return Answer(status, headers, _read_exactly(file, MAX_BODY, to_end=True)), False
    if not length.isdigit() or int(length) > MAX_BODY:
        raise MalformedAnswer(f"an answer with Content-Length {length[:40]!r}")
    return Answer(status, headers, _read_exactly(file, int(length))), keep


def _read_status(file: BinaryIO) -> tuple[bytes, int]:
    line = _read_line(file)
    if not line:
        raise MalformedAnswer("the connection was closed without an answer")
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3:
        raise MalformedAnswer(f"not an HTTP answer: {line[:80]!r}")
    try:
        return parts[0], int(parts[1])
    except ValueError:
        raise MalformedAnswer(f"not an HTTP answer: {line[:80]!r}") from None


def _read_headers(file: BinaryIO) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = _read_line(file)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise MalformedAnswer("the connection was closed inside the headers")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise MalformedAnswer(f"a header line without a colon: {line[:80]!r}")
        key = name.strip().lower()
        text = value.strip()
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    raise MalformedAnswer(f"an answer with more than {MAX_HEADERS} headers")


def _read_line(file: BinaryIO) -> bytes:
    line = file.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise MalformedAnswer(f"an answer line longer than {MAX_LINE} bytes")
    return line


def _read_exactly(file: BinaryIO, length: int, to_end: bool = False) -> bytes:
    data = file.read(length + 1 if to_end else length)
    if to_end and len(data) > length:
        raise MalformedAnswer(f"an answer body longer than {length} bytes")
    if not to_end and len(data) < length:
        raise MalformedAnswer(f"the answer was cut short: {len(data)} of {length} bytes")
    return data


def _read_chunked(file: BinaryIO) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = _read_line(file)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise MalformedAnswer(f"a chunk size that is not hexadecimal: {line[:40]!r}") from None
        if size < 0:
            raise MalformedAnswer(f"a negative chunk size: {line[:40]!r}")
        if size == 0:
            _read_headers(file)  # the trailer, up to its blank line
            return b"".join(chunks)
        total += size
        if total > MAX_BODY:
            raise MalformedAnswer(f"an answer body longer than {MAX_BODY} bytes")
        chunks.append(_read_exactly(file, size))
        if _read_line(file) not in (b"\r\n", b"\n"):
            raise MalformedAnswer("a chunk not followed by its line end")

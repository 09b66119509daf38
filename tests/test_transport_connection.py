"""The lean transport's own HTTP/1.1 connections, against a raw server on 127.0.0.1.

Each test scripts what the server writes back, byte for byte, and checks what the pool read and
whether it kept the connection: answers it must read (chunked, interim 100, no length, 204),
answers it must refuse as broken, faults while connecting and exchanging, and closing. TLS
faults are provoked through the transport in test_transport_http.py.
"""

from __future__ import annotations

import inspect
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from io import BufferedIOBase

import pytest

from ordered_sender.transport import mapped_by_class
from ordered_sender.transport.connection import (
    CONNECT_ERROR_CODES,
    EXCHANGE_ERROR_CODES,
    MAX_HEADERS,
    MAX_LINE,
    ConnectionFault,
    ConnectionPool,
    MalformedAnswer,
    PoolClosed,
)

HEAD = b"POST /inputs/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
BODY = b"{}"

Script = Callable[[BufferedIOBase, BufferedIOBase], bool]
"""Reads one request from the first file, writes the answer to the second; True keeps going."""


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        while _read_request(self.rfile):
            if not self.server.script(self.rfile, self.wfile):
                return
        self.server.hung_up.set()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    connections = 0
    script: Script
    lock: threading.Lock
    hung_up: threading.Event
    closed: threading.Semaphore

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        super().shutdown_request(request)
        self.closed.release()  # this server closed a connection


def _read_request(rfile: BufferedIOBase) -> bool:
    length = 0
    while (line := rfile.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    if not line:
        return False
    rfile.read(length)
    return True


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server(("127.0.0.1", 0), _Handler)
    running.lock = threading.Lock()
    running.hung_up = threading.Event()
    running.closed = threading.Semaphore(0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(timeout=5)


def pool_for(server: _Server, timeout: float = 5.0) -> ConnectionPool:
    return ConnectionPool("127.0.0.1", server.server_address[1], timeout=timeout, max_idle=2)


def writes(raw: bytes, keep: bool = True) -> Script:
    def script(_: BufferedIOBase, wfile: BufferedIOBase) -> bool:
        wfile.write(raw)
        wfile.flush()
        return keep

    return script


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def test_a_kept_alive_connection_carries_every_request(server: _Server) -> None:
    server.script = writes(OK)
    pool = pool_for(server)
    for _ in range(4):
        answer = pool.request(HEAD, BODY)
        assert (answer.status, answer.body) == (200, b"{}")
        assert answer.headers["content-type"] == "application/json"
    assert server.connections == 1


def test_a_chunked_answer_is_read_whole_with_extensions_and_trailer(server: _Server) -> None:
    server.script = writes(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;name=value\r\n{"a":\r\n3\r\n 1}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    pool = pool_for(server)
    assert pool.request(HEAD, BODY).body == b'{"a": 1}'
    assert pool.request(HEAD, BODY).body == b'{"a": 1}'
    assert server.connections == 1


def test_an_interim_answer_is_followed_by_the_real_one(server: _Server) -> None:
    server.script = writes(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    answer = pool_for(server).request(HEAD, BODY)
    assert (answer.status, answer.body) == (200, b"{}")


def test_an_answer_without_a_length_is_read_to_the_close(server: _Server) -> None:
    server.script = writes(b"HTTP/1.1 500 Oops\r\n\r\n<html>down</html>", keep=False)
    pool = pool_for(server)
    for _ in range(2):
        answer = pool.request(HEAD, BODY)
        assert (answer.status, answer.body) == (500, b"<html>down</html>")
    assert server.connections == 2


def test_repeated_headers_are_joined_and_names_are_lower_case(server: _Server) -> None:
    server.script = writes(b"HTTP/1.1 204 No Content\r\nX-Amzn-A: 1\r\nx-amzn-a: 2\r\n\r\n")
    answer = pool_for(server).request(HEAD, BODY)
    assert (answer.status, answer.body, answer.headers["x-amzn-a"]) == (204, b"", "1, 2")


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["connection close", "HTTP/1.0"],
)
def test_a_connection_the_answer_ends_is_not_used_again(server: _Server, raw: bytes) -> None:
    server.script = writes(raw)
    pool = pool_for(server)
    for _ in range(3):
        assert pool.request(HEAD, BODY).body == b"{}"
    assert server.connections == 3


def test_an_idle_connection_the_server_closed_is_replaced_before_sending(server: _Server) -> None:
    # The answer promises nothing about closing; the server closes right after it.
    server.script = writes(OK, keep=False)
    pool = pool_for(server)
    for _ in range(4):
        assert pool.request(HEAD, BODY).body == b"{}"
        assert server.closed.acquire(timeout=5)
    assert server.connections == 4


BROKEN = {
    "closed without an answer": b"",
    "not HTTP": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "status not a number": b"HTTP/1.1 2x0 OK\r\n\r\n",
    "a header without a colon": b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    "too many headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n",
    "a line too long": b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * MAX_LINE + b"\r\n\r\n",
    "closed inside the headers": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
    "cut short": b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"Batch',
    "a length that is not a number": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
    "a chunk size not hexadecimal": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "a negative chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
    "a chunk without its line end": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}xx0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("raw", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_answer_is_a_closed_connection_and_the_connection_is_dropped(
    server: _Server, raw: bytes
) -> None:
    server.script = writes(raw, keep=False)
    pool = pool_for(server)
    with pytest.raises(ConnectionFault) as fault:
        pool.request(HEAD, BODY)
    assert fault.value.code == "ConnectionClosedError"
    server.script = writes(OK)
    assert pool.request(HEAD, BODY).body == b"{}"
    assert server.connections == 2


def test_no_answer_in_time_is_a_read_timeout(server: _Server) -> None:
    release = threading.Event()

    def never_answers(_: BufferedIOBase, __: BufferedIOBase) -> bool:
        release.wait(timeout=10)
        return False

    server.script = never_answers
    try:
        with pytest.raises(ConnectionFault) as fault:
            pool_for(server, timeout=0.2).request(HEAD, BODY)
    finally:
        release.set()
    assert fault.value.code == "ReadTimeoutError"


def test_a_refused_connection_is_an_endpoint_connection_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    pool = ConnectionPool("127.0.0.1", port, timeout=5, max_idle=1)
    with pytest.raises(ConnectionFault) as fault:
        pool.request(HEAD, BODY)
    assert fault.value.code == "EndpointConnectionError"
    assert f"127.0.0.1:{port}" in fault.value.text


def test_close_ends_idle_connections_and_refuses_further_requests(server: _Server) -> None:
    server.script = writes(OK)
    pool = pool_for(server)
    pool.request(HEAD, BODY)
    pool.close()
    assert server.hung_up.wait(timeout=5)
    with pytest.raises(PoolClosed):
        pool.request(HEAD, BODY)


def test_a_connection_in_use_when_the_pool_closes_is_closed_after_its_answer(
    server: _Server,
) -> None:
    answering = threading.Event()
    release = threading.Event()

    def slow(_: BufferedIOBase, wfile: BufferedIOBase) -> bool:
        answering.set()
        release.wait(timeout=10)
        wfile.write(OK)
        wfile.flush()
        return True

    server.script = slow
    pool = pool_for(server)
    result: list[bytes] = []
    worker = threading.Thread(target=lambda: result.append(pool.request(HEAD, BODY).body))
    worker.start()
    assert answering.wait(timeout=5)
    pool.close()
    release.set()
    worker.join(timeout=5)
    assert result == [b"{}"]
    assert server.hung_up.wait(timeout=5)


def _exception_classes() -> set[type[BaseException]]:
    import builtins

    found: set[type[BaseException]] = set()
    for module in (builtins, socket, ssl):
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, OSError):
                found.add(value)
    return found


def test_every_socket_and_ssl_error_resolves_in_both_tables() -> None:
    for error in _exception_classes():
        assert mapped_by_class(CONNECT_ERROR_CODES, error) is not None, error
        assert mapped_by_class(EXCHANGE_ERROR_CODES, error) is not None, error
    assert mapped_by_class(CONNECT_ERROR_CODES, socket.gaierror) == "EndpointConnectionError"
    assert mapped_by_class(CONNECT_ERROR_CODES, ssl.SSLCertVerificationError) == "SSLError"
    assert mapped_by_class(CONNECT_ERROR_CODES, socket.timeout) == "ConnectTimeoutError"
    assert mapped_by_class(EXCHANGE_ERROR_CODES, socket.timeout) == "ReadTimeoutError"
    assert mapped_by_class(EXCHANGE_ERROR_CODES, MalformedAnswer) == "ConnectionClosedError"


def test_an_exception_outside_the_tables_is_not_mapped() -> None:
    for error in (ValueError, KeyError, RuntimeError, KeyboardInterrupt, PoolClosed):
        assert mapped_by_class(CONNECT_ERROR_CODES, error) is None
        assert mapped_by_class(EXCHANGE_ERROR_CODES, error) is None

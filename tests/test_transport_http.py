"""The lean transport reads every fault as the boto3 transport does, and sends what botocore sends.

The fault tests run each case through both transports (``transport_kind`` is "boto3" or
"http") over HTTP to 127.0.0.1: the emulator with SigV4 verification on, or a small raw server
whose behaviour the test chooses (answer something, never answer, hang up, reset, stay silent
at connect). Where the two transports differ on purpose, the test says so.
"""

from __future__ import annotations

import base64
import inspect
import ipaddress
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.credentials
import botocore.exceptions
import botocore.session
import pytest
import urllib3.exceptions
from freezegun import freeze_time

from ordered_sender import OrderedSender
from ordered_sender.emulator import Emulator, Faults
from ordered_sender.errors import NotAnOutbox
from ordered_sender.message import Message
from ordered_sender.outcomes import OutcomeKind, classify
from ordered_sender.transport import BatchResponse, RequestError, RequestErrorKind, Transport
from ordered_sender.transport.connection import PoolClosed
from ordered_sender.transport.http import (
    URLLIB3_ERROR_CODES,
    HttpTransport,
    error_code,
)
from ordered_sender.transport.http_answer import read_answer
from ordered_sender.transport.iotevents import (
    UNEXPECTED_RESPONSE,
    IotEventsTransport,
    build_client,
)

INPUT = "PressureInput"
MESSAGES = [Message(INPUT, b'{"value": 1}', "m1"), Message(INPUT, b'{"value": 2}', "m2", 7)]
SECRETS = {"testing": "testing"}
REGION = "us-east-1"


def make_transport(kind: str, url: str, timeout: float = 5.0) -> Transport:
    if kind == "boto3":
        return IotEventsTransport(
            build_client(timeout=timeout, endpoint_url=url, region_name=REGION)
        )
    return HttpTransport.from_environment(endpoint_url=url, region_name=REGION, timeout=timeout)


@pytest.fixture(params=["boto3", "http"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def verifying() -> Iterator[Emulator]:
    with Emulator(seed=1, verify_signatures=SECRETS, shuffle=False) as emu:
        emu.create_input(INPUT)
        yield emu


# A raw HTTP server on 127.0.0.1 whose behaviour each test chooses.


@dataclass
class Received:
    request_line: str
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[[socketserver.StreamRequestHandler, Received], bool]
"""Answers (or not) one request; returns True to keep the connection for another request."""


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.connections += 1
        while (received := _read_request(self)) is not None:
            self.server.received.append(received)
            if not self.server.behaviour(self, received):
                return
        self.server.hung_up.set()  # the client closed a connection the server kept open


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    connections = 0
    behaviour: Behaviour
    received: list[Received]
    release: threading.Event
    hung_up: threading.Event


def _read_request(handler: socketserver.StreamRequestHandler) -> Received | None:
    request_line = handler.rfile.readline().decode("latin-1").strip()
    if not request_line:
        return None
    headers: dict[str, str] = {}
    while (line := handler.rfile.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = handler.rfile.read(int(headers.get("content-length", "0")))
    return Received(request_line, headers, body)


@pytest.fixture
def endpoint() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.received = []
    server.release = threading.Event()
    server.hung_up = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def url_of(server: socketserver.TCPServer, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.server_address[1]}"


def answer(
    status: int, body: bytes, headers: dict[str, str] | None = None, keep_alive: bool = False
) -> Behaviour:
    def behaviour(handler: socketserver.StreamRequestHandler, _: Received) -> bool:
        lines = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(body)}"]
        lines += [] if keep_alive else ["Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        handler.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return keep_alive

    return behaviour


EMPTY_SUCCESS = answer(200, b"{}", {"Content-Type": "application/json"})
KEEP_ALIVE_SUCCESS = answer(200, b"{}", {"Content-Type": "application/json"}, keep_alive=True)


def send_to(server: _Server, kind: str, behaviour: Behaviour, timeout: float = 5.0) -> RequestError:
    server.behaviour = behaviour
    error = make_transport(kind, url_of(server), timeout).send(MESSAGES).request_error
    assert error is not None
    return error


def classify_one(error: RequestError) -> OutcomeKind:
    return classify(BatchResponse(request_error=error), ["m1", "m2"])["m1"].kind


# Faults of the network, provoked for real; both transports give botocore's code.


def test_a_refused_connection_is_a_connection_error(transport_kind: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = make_transport(transport_kind, f"http://127.0.0.1:{port}").send(MESSAGES).request_error
    assert error is not None
    assert (error.kind, error.code) == (RequestErrorKind.CONNECTION, "EndpointConnectionError")
    assert classify_one(error) is OutcomeKind.TRANSIENT


def test_a_listener_that_never_accepts_is_a_connect_timeout(transport_kind: str) -> None:
    # A backlog of 0 holds one connection; Linux drops the SYNs of the next ones.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
        try:
            url = f"http://127.0.0.1:{listener.getsockname()[1]}"
            error = make_transport(transport_kind, url, timeout=0.3).send(MESSAGES).request_error
        finally:
            for filler in fillers:
                filler.close()
    assert error is not None
    assert (error.kind, error.code) == (RequestErrorKind.CONNECTION, "ConnectTimeoutError")


def test_an_endpoint_that_never_answers_is_a_read_timeout(
    endpoint: _Server, transport_kind: str
) -> None:
    def never_answer(handler: socketserver.StreamRequestHandler, _: Received) -> bool:
        endpoint.release.wait(timeout=30)
        return False

    error = send_to(endpoint, transport_kind, never_answer, timeout=0.5)
    assert (error.kind, error.code) == (RequestErrorKind.CONNECTION, "ReadTimeoutError")


def hang_up(handler: socketserver.StreamRequestHandler, _: Received) -> bool:
    return False


def reset(handler: socketserver.StreamRequestHandler, _: Received) -> bool:
    # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
    handler.connection.close()
    return False


def garbage(handler: socketserver.StreamRequestHandler, _: Received) -> bool:
    handler.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    return False


@pytest.mark.parametrize("behaviour", [hang_up, reset, garbage], ids=lambda b: b.__name__)
def test_a_connection_closed_or_reset_without_an_answer_is_a_connection_error(
    endpoint: _Server, transport_kind: str, behaviour: Behaviour
) -> None:
    error = send_to(endpoint, transport_kind, behaviour)
    assert (error.kind, error.code) == (RequestErrorKind.CONNECTION, "ConnectionClosedError")
    assert classify_one(error) is OutcomeKind.TRANSIENT


def test_an_answer_cut_short_is_not_taken_for_success(
    endpoint: _Server, transport_kind: str
) -> None:
    def cut_short(handler: socketserver.StreamRequestHandler, _: Received) -> bool:
        handler.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"Batch'
        )
        return False

    error = send_to(endpoint, transport_kind, cut_short)
    # Both retry with the same ids. boto3 reads the cut body and our check calls it a parse
    # error; urllib3 itself says the connection broke, which is what happened.
    expected = {
        "boto3": (RequestErrorKind.UNEXPECTED, "ResponseParserError"),
        "http": (RequestErrorKind.CONNECTION, "ConnectionClosedError"),
    }
    assert (error.kind, error.code) == expected[transport_kind]
    assert classify_one(error) is OutcomeKind.TRANSIENT


def test_tls_to_a_plain_http_server_is_an_ssl_error(transport_kind: str) -> None:
    # The server answers the ClientHello with plain HTTP: the handshake fails.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def answer_in_plain_text() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer_in_plain_text, daemon=True)
        thread.start()
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        error = make_transport(transport_kind, url).send(MESSAGES).request_error
        thread.join(timeout=5)
    assert error is not None
    assert (error.kind, error.code) == (RequestErrorKind.CONNECTION, "SSLError")


# Answers that are not BatchPutMessage's, and AWS errors.


@pytest.mark.parametrize(
    ("status", "code"), [(200, "ResponseParserError"), (404, UNEXPECTED_RESPONSE)]
)
def test_an_html_page_is_not_taken_for_an_iot_events_answer(
    endpoint: _Server, transport_kind: str, status: int, code: str
) -> None:
    page = b"<html><body>Welcome to nginx</body></html>"
    error = send_to(endpoint, transport_kind, answer(status, page, {"Content-Type": "text/html"}))
    assert (error.kind, error.code) == (RequestErrorKind.UNEXPECTED, code)
    assert "endpoint_url" in error.text
    assert classify_one(error) is OutcomeKind.TRANSIENT


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1]",
        b'{"BatchPutMessageErrorEntries": "x"}',
        b'{"BatchPutMessageErrorEntries": [{"messageId": 5, "errorCode": "X"}]}',
    ],
)
def test_a_json_answer_of_another_shape_is_not_taken_for_success(
    endpoint: _Server, transport_kind: str, body: bytes
) -> None:
    behaviour = answer(200, body, {"Content-Type": "application/json"})
    error = send_to(endpoint, transport_kind, behaviour)
    assert (error.kind, error.code) == (RequestErrorKind.UNEXPECTED, "ResponseParserError")


def test_another_success_status_is_not_taken_for_success(endpoint: _Server) -> None:
    # BatchPutMessage answers 200; a 204 from something else must not mean "all delivered".
    # (botocore parses any 2xx as the operation's answer, so this is the lean transport's only.)
    error = send_to(endpoint, "http", answer(204, b""))
    assert (error.kind, error.code, error.status) == (
        RequestErrorKind.UNEXPECTED,
        "ResponseParserError",
        204,
    )


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (403, {"x-amzn-ErrorType": "AccessDeniedException:"}, b'{"message": "no"}'),
        (400, {"x-amzn-ErrorType": "UnrecognizedClientException:"}, b'{"message": "no"}'),
        (400, {"x-amzn-ErrorType": "ExpiredTokenException:"}, b'{"message": "no"}'),
        # A malformed signature is 400, like a bad message, but halts: never isolate for it.
        (400, {"x-amzn-ErrorType": "IncompleteSignatureException:"}, b'{"message": "no"}'),
        (400, {}, b'{"__type": "com.amazon#ExpiredTokenException", "message": "no"}'),
        (403, {"Content-Type": "text/html"}, b"<html>Forbidden</html>"),
    ],
)
def test_access_denied_and_bad_credentials_are_credential_errors(
    endpoint: _Server, transport_kind: str, status: int, headers: dict[str, str], body: bytes
) -> None:
    error = send_to(endpoint, transport_kind, answer(status, body, headers))
    assert (error.kind, error.status) == (RequestErrorKind.CREDENTIALS, status)
    outcomes = classify(BatchResponse(request_error=error), ["m1", "m2"])
    assert {outcome.kind for outcome in outcomes.values()} == {OutcomeKind.HALT}


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "ThrottlingException"),
        (500, "InternalFailureException"),
        (503, "ServiceUnavailableException"),
    ],
)
def test_a_service_fault_keeps_its_code_and_status_and_is_retried(
    verifying: Emulator, transport_kind: str, status: int, code: str
) -> None:
    verifying.set_faults(Faults(request_error_rate=1.0, request_error_codes=(status,)))
    error = make_transport(transport_kind, verifying.endpoint_url).send(MESSAGES).request_error
    assert error is not None
    assert (error.kind, error.code, error.status) == (RequestErrorKind.SERVICE, code, status)
    assert classify_one(error) is OutcomeKind.TRANSIENT


def test_a_bad_request_is_a_service_error_to_isolate(
    verifying: Emulator, transport_kind: str
) -> None:
    duplicate_ids = [Message(INPUT, b"{}", "same"), Message(INPUT, b"{}", "same")]
    response = make_transport(transport_kind, verifying.endpoint_url).send(duplicate_ids)
    error = response.request_error
    assert error is not None
    assert (error.kind, error.code, error.status) == (
        RequestErrorKind.SERVICE,
        "InvalidRequestException",
        400,
    )
    assert classify(response, ["same"])["same"].kind is OutcomeKind.PERMANENT


def test_a_delivered_batch_reports_only_the_emulators_error_entries(
    verifying: Emulator, transport_kind: str
) -> None:
    transport = make_transport(transport_kind, verifying.endpoint_url)
    response = transport.send([*MESSAGES, Message("NoSuchInput", b"{}", "m3")])
    assert response.request_error is None
    assert [(e.message_id, e.code) for e in response.entry_errors] == [
        ("m3", "ResourceNotFoundException")
    ]
    processed = verifying.processed()
    assert [(m.message_id, m.payload) for m in processed] == [
        ("m1", b'{"value": 1}'),
        ("m2", b'{"value": 2}'),
    ]
    assert processed[1].timestamp_ms == 7


def test_an_invalid_message_is_refused_before_sending_and_not_retried(
    endpoint: _Server, transport_kind: str
) -> None:
    endpoint.behaviour = EMPTY_SUCCESS
    response = make_transport(transport_kind, url_of(endpoint)).send([Message(INPUT, b"{}", "")])
    error = response.request_error
    assert error is not None
    assert (error.kind, error.code) == (RequestErrorKind.INVALID_REQUEST, "ParamValidationError")
    assert "messageId" in error.text
    assert classify(response, [""])[""].kind is OutcomeKind.PERMANENT
    assert endpoint.received == []


# Credentials: none, refused, refreshed, from a profile.


def test_no_credentials_at_all_is_a_credential_error(
    endpoint: _Server, transport_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    error = send_to(endpoint, transport_kind, EMPTY_SUCCESS)
    assert (error.kind, error.code) == (RequestErrorKind.CREDENTIALS, "NoCredentialsError")
    assert endpoint.received == []


def test_a_wrong_secret_is_refused_by_the_verifying_emulator_as_credentials(
    verifying: Emulator, transport_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    error = make_transport(transport_kind, verifying.endpoint_url).send(MESSAGES).request_error
    assert error is not None
    assert (error.kind, error.code, error.status) == (
        RequestErrorKind.CREDENTIALS,
        "InvalidSignatureException",
        403,
    )
    assert verifying.processed() == []


@dataclass
class _Refresher:
    """Hands out the next key of ``keys`` at each refresh; raises once they run out."""

    keys: list[str]
    handed_out: list[str] = field(default_factory=list)

    def __call__(self) -> dict[str, str]:
        if not self.keys:
            raise botocore.exceptions.CredentialRetrievalError(
                provider="test", error_msg="the role session could not be renewed"
            )
        key = self.keys.pop(0)
        self.handed_out.append(key)
        # Inside botocore's advisory window (15 min): the next read refreshes again.
        expiry = datetime.now(UTC) + timedelta(minutes=12)
        return {
            "access_key": key,
            "secret_key": key,
            "token": "",
            "expiry_time": expiry.isoformat(),
        }


def expired_credentials(refresher: _Refresher) -> Any:
    """Refreshable credentials whose first value has expired: the first read must refresh."""
    return botocore.credentials.RefreshableCredentials.create_from_metadata(
        {"access_key": "old", "secret_key": "old", "token": "", "expiry_time": "2000-01-01T00:00Z"},
        refresh_using=refresher,
        method="test",
    )


def http_transport(credentials: Any, url: str) -> HttpTransport:
    return HttpTransport(
        credentials,
        region_name=REGION,
        service_model=botocore.session.Session().get_service_model("iotevents-data"),
        endpoint_url=url,
    )


def test_refreshable_credentials_are_read_afresh_at_each_send() -> None:
    refresher = _Refresher(keys=["key-1", "key-2"])
    with Emulator(seed=1, verify_signatures={"key-1": "key-1", "key-2": "key-2"}) as emu:
        emu.create_input(INPUT)
        transport = http_transport(expired_credentials(refresher), emu.endpoint_url)
        assert transport.send(MESSAGES[:1]) == BatchResponse()
        assert transport.send(MESSAGES[1:]) == BatchResponse()
    assert refresher.handed_out == ["key-1", "key-2"]


def test_a_refresh_that_fails_is_a_credential_error() -> None:
    with Emulator(seed=1, verify_signatures=SECRETS) as emu:
        transport = http_transport(expired_credentials(_Refresher(keys=[])), emu.endpoint_url)
        failed = transport.send(MESSAGES).request_error
        assert emu.requests() == []
    assert failed is not None
    assert (failed.kind, failed.code) == (RequestErrorKind.CREDENTIALS, "CredentialRetrievalError")
    assert classify_one(failed) is OutcomeKind.HALT


def test_a_named_profile_is_read_from_the_shared_credentials_file(tmp_path: Path) -> None:
    # The conftest points AWS_SHARED_CREDENTIALS_FILE here; the environment's key is not used.
    (tmp_path / "no-aws-credentials").write_text(
        "[operator]\naws_access_key_id = profile-key\naws_secret_access_key = profile-secret\n"
    )
    with Emulator(seed=1, verify_signatures={"profile-key": "profile-secret"}) as emu:
        emu.create_input(INPUT)
        transport = HttpTransport.from_environment(
            endpoint_url=emu.endpoint_url, region_name=REGION, profile_name="operator"
        )
        assert transport.send(MESSAGES) == BatchResponse()
        assert len(emu.processed()) == 2


def test_without_a_region_the_transport_is_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(botocore.exceptions.NoRegionError):
        HttpTransport.from_environment(endpoint_url="http://127.0.0.1:1")


def test_the_default_endpoint_is_aws_for_the_region() -> None:
    transport = HttpTransport.from_environment(region_name="eu-west-1")
    assert transport.endpoint_url == "https://data.iotevents.eu-west-1.amazonaws.com"


# What goes over the wire.


def test_the_request_is_the_one_botocore_sends_byte_for_byte(endpoint: _Server) -> None:
    endpoint.behaviour = EMPTY_SUCCESS
    payloads = [b'{"a": "\xc3\xa9"}', bytes(range(256))]
    messages = [
        Message(INPUT, payload, f"m{n}", 1700000000000 + n) for n, payload in enumerate(payloads)
    ]
    with freeze_time("2026-03-01 12:00:00"):
        for kind in ("boto3", "http"):
            assert make_transport(kind, url_of(endpoint)).send(messages) == BatchResponse()
    by_boto3, by_http = endpoint.received
    assert by_http.request_line == by_boto3.request_line == "POST /inputs/messages HTTP/1.1"
    assert by_http.body == by_boto3.body
    for header in ("host", "content-type", "content-length", "x-amz-date", "authorization"):
        assert by_http.headers[header] == by_boto3.headers[header], header
    sent = json.loads(by_http.body)["messages"]
    assert [base64.b64decode(m["payload"]) for m in sent] == payloads


def test_one_connection_is_kept_alive_across_sends(endpoint: _Server) -> None:
    endpoint.behaviour = KEEP_ALIVE_SUCCESS
    with HttpTransport.from_environment(endpoint_url=url_of(endpoint), region_name=REGION) as http:
        for _ in range(5):
            assert http.send(MESSAGES) == BatchResponse()
    assert (endpoint.connections, len(endpoint.received)) == (1, 5)


def test_a_connection_the_server_closed_while_idle_is_replaced(endpoint: _Server) -> None:
    endpoint.behaviour = EMPTY_SUCCESS  # answers, then closes: the kept connection is dead
    http = HttpTransport.from_environment(endpoint_url=url_of(endpoint), region_name=REGION)
    for _ in range(3):
        assert http.send(MESSAGES) == BatchResponse()
    assert endpoint.connections == 3


def test_a_sender_given_no_transport_sends_through_this_one_and_closes_it(
    endpoint: _Server, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint.behaviour = KEEP_ALIVE_SUCCESS
    monkeypatch.setenv("AWS_ENDPOINT_URL", url_of(endpoint))
    sender = OrderedSender(outbox, autostart=False)
    sender.put(INPUT, {"value": 1})
    assert sender.deliver_due() == 1
    assert endpoint.received[0].headers["user-agent"].startswith("ordered-sender (lean transport)")
    assert not endpoint.hung_up.is_set()
    sender.close()
    assert endpoint.hung_up.wait(timeout=5)


def test_a_sender_that_fails_to_open_closes_its_transport(
    endpoint: _Server, tmp_path: Path
) -> None:
    endpoint.behaviour = EMPTY_SUCCESS
    http = HttpTransport.from_environment(endpoint_url=url_of(endpoint), region_name=REGION)
    with pytest.raises(NotAnOutbox):
        OrderedSender(tmp_path / "no-such-outbox.db", transport=http, create=False)
    with pytest.raises(PoolClosed):
        http.send(MESSAGES)


def test_an_exception_nobody_mapped_propagates_out_of_send(endpoint: _Server) -> None:
    endpoint.behaviour = EMPTY_SUCCESS
    http = HttpTransport.from_environment(endpoint_url=url_of(endpoint), region_name=REGION)
    http.close()
    # Sending after close is a bug of the caller: it is not a connection fault to retry.
    with pytest.raises(PoolClosed):
        http.send(MESSAGES)


# Reading answers (pure).


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"x-amzn-ErrorType": "ThrottlingException:http://x"}, b'{"code": "Other"}'),
        ({}, b'{"code": "ThrottlingException", "__type": "Other"}'),
        ({}, b'{"__type": "com.amazonaws.iotevents#ThrottlingException"}'),
        ({}, b'{"Code": "ThrottlingException"}'),
    ],
)
def test_the_error_code_is_read_where_botocore_reads_it(
    headers: dict[str, str], body: bytes
) -> None:
    insensitive = urllib3.HTTPHeaderDict(headers)
    error = read_answer(429, insensitive, body).request_error
    assert error is not None
    assert (error.kind, error.code, error.status) == (
        RequestErrorKind.SERVICE,
        "ThrottlingException",
        429,
    )


def test_a_5xx_without_any_code_is_unexpected() -> None:
    error = read_answer(502, urllib3.HTTPHeaderDict(), b"<html>Bad Gateway</html>").request_error
    assert error is not None
    assert (error.kind, error.code, error.status) == (
        RequestErrorKind.UNEXPECTED,
        UNEXPECTED_RESPONSE,
        502,
    )


# The exception table is complete.

NOT_RAISED_AT_SEND: dict[type[Exception], str] = {
    urllib3.exceptions.ClosedPoolError: "only after close(): a bug of the caller, propagates",
    urllib3.exceptions.EmptyPoolError: "the pool does not block (block=False)",
    urllib3.exceptions.FullPoolError: "the pool does not block: a surplus connection is closed",
    urllib3.exceptions.HostChangedError: "requests go to the pool's own host",
    urllib3.exceptions.MaxRetryError: "retries=False re-raises the error itself",
    urllib3.exceptions.ResponseError: "retries=False: no retry on statuses",
    urllib3.exceptions.UnrewindableBodyError: "retries and redirects are off",
    urllib3.exceptions.DecodeError: "decode_content=False: bodies are never decoded",
    urllib3.exceptions.IncompleteRead: "read inside urllib3, which raises it as ProtocolError",
    urllib3.exceptions.InvalidChunkLength: "read inside urllib3, raised as ProtocolError",
    urllib3.exceptions.HeaderParsingError: "urllib3 logs it and goes on",
    urllib3.exceptions.BodyNotHttplibCompatible: "streaming responses only",
    urllib3.exceptions.InvalidHeader: "headers are ours, built before sending",
    urllib3.exceptions.ProxySchemeUnknown: "the proxy URL is read in the constructor",
    urllib3.exceptions.ProxySchemeUnsupported: "TLS in TLS without the ssl module, or forwarding",
    urllib3.exceptions.LocationValueError: "the URL is parsed in the constructor",
    urllib3.exceptions.TimeoutStateError: "the Timeout is built in the constructor",
}
"""urllib3 exceptions left out of the table, each with why a send cannot raise it."""

BASES = {
    urllib3.exceptions.HTTPError,
    urllib3.exceptions.PoolError,
    urllib3.exceptions.RequestError,
    urllib3.exceptions.TimeoutError,
}
"""Never raised as themselves; their subclasses are accounted for one by one."""

EXPECTED_CODES: dict[type[Exception], str] = {
    urllib3.exceptions.NewConnectionError: "EndpointConnectionError",
    urllib3.exceptions.NameResolutionError: "EndpointConnectionError",
    urllib3.exceptions.ConnectTimeoutError: "ConnectTimeoutError",
    urllib3.exceptions.ProxyError: "ProxyConnectionError",
    urllib3.exceptions.SSLError: "SSLError",
    urllib3.exceptions.ReadTimeoutError: "ReadTimeoutError",
    urllib3.exceptions.ProtocolError: "ConnectionClosedError",
    # A ProtocolError that only streaming reads raise; it would resolve like its parent.
    urllib3.exceptions.ResponseNotChunked: "ConnectionClosedError",
}
"""What every exception a send can raise must resolve to, written independently of the table."""


def _urllib3_exceptions() -> set[type[Exception]]:
    return {
        cls
        for _, cls in inspect.getmembers(urllib3.exceptions, inspect.isclass)
        if cls.__module__ == "urllib3.exceptions"
        and issubclass(cls, Exception)
        and not issubclass(cls, Warning)
    }


def test_every_urllib3_exception_a_send_can_raise_resolves_to_its_code() -> None:
    unaccounted = []
    for cls in sorted(_urllib3_exceptions() - BASES, key=lambda c: c.__name__):
        if any(issubclass(cls, excluded) for excluded in NOT_RAISED_AT_SEND):
            assert error_code(cls) is None, f"{cls.__name__} is excluded but mapped"
        elif cls in EXPECTED_CODES:
            assert error_code(cls) == EXPECTED_CODES[cls], cls.__name__
        else:
            unaccounted.append(cls.__name__)
    assert not unaccounted, f"urllib3 exceptions neither mapped nor excluded: {unaccounted}"
    for base in BASES:
        assert error_code(base) is None, f"{base.__name__} would catch what nobody mapped"


def test_every_entry_of_the_table_decides_some_exception() -> None:
    for removed in URLLIB3_ERROR_CODES:
        rest = {cls: code for cls, code in URLLIB3_ERROR_CODES.items() if cls is not removed}
        changed = [
            cls
            for cls, code in EXPECTED_CODES.items()
            if next((rest[c] for c in cls.__mro__ if c in rest), None) != code
        ]
        assert changed, f"{removed.__name__} decides nothing: remove it or fix EXPECTED_CODES"


def test_exceptions_outside_urllib3_resolve_to_nothing() -> None:
    assert error_code(OSError) is None
    assert error_code(ssl.SSLError) is None
    assert error_code(RuntimeError) is None


# What is read from the environment and the profile, as boto3 reads it. Each case runs through
# both transports, built with no argument but the timeout, and sends for real.

CONFIGURATION_VARIABLES = (
    "AWS_ENDPOINT_URL_IOTEVENTS_DATA",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_REGION",
    "AWS_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    *(f"{name}_proxy" for name in ("http", "https", "no", "all")),
    *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "NO", "ALL")),
)


@pytest.fixture
def configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    """Clears what this machine configures; ``configuration(text)`` writes the AWS config file
    (the conftest points AWS_CONFIG_FILE at it)."""
    for name in CONFIGURATION_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def write(text: str) -> None:
        (tmp_path / "no-aws-config").write_text(text)

    return write


def transport_from_environment(kind: str) -> Transport:
    if kind == "boto3":
        return IotEventsTransport(build_client(timeout=5))
    return HttpTransport.from_environment(timeout=5)


@pytest.mark.parametrize(
    ("variables", "config_file"),
    [
        ({"AWS_ENDPOINT_URL_IOTEVENTS_DATA": "{url}", "AWS_ENDPOINT_URL": "{dead}"}, ""),
        ({"AWS_ENDPOINT_URL": "{url}"}, ""),
        ({}, "[default]\nendpoint_url = {url}\n"),
        (
            {},
            "[default]\nservices = here\n"
            "[services here]\niotevents_data =\n  endpoint_url = {url}\n",
        ),
    ],
    ids=["service variable first", "global variable", "profile", "profile services section"],
)
def test_the_endpoint_is_read_from_the_configuration(
    verifying: Emulator,
    transport_kind: str,
    configuration: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    config_file: str,
) -> None:
    places = {"url": verifying.endpoint_url, "dead": "http://127.0.0.1:1"}
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(**places))
    configuration(config_file.format(**places))
    assert transport_from_environment(transport_kind).send(MESSAGES) == BatchResponse()
    assert len(verifying.processed()) == 2


def test_an_endpoint_url_given_wins_over_the_configuration(
    verifying: Emulator, configuration: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_IOTEVENTS_DATA", "http://127.0.0.1:1")
    transport = HttpTransport.from_environment(endpoint_url=verifying.endpoint_url)
    assert transport.send(MESSAGES) == BatchResponse()


def test_configured_endpoints_can_be_ignored_as_botocore_allows(
    configuration: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    transport = HttpTransport.from_environment(region_name="eu-west-1")
    assert transport.endpoint_url == "https://data.iotevents.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("variables", "config_file", "region"),
    [
        ({"AWS_DEFAULT_REGION": "eu-west-2"}, "", "eu-west-2"),
        ({}, "[default]\nregion = ap-south-1\n", "ap-south-1"),
        ({"AWS_PROFILE": "far"}, "[profile far]\nregion = sa-east-1\n", "sa-east-1"),
    ],
    ids=["AWS_DEFAULT_REGION", "default profile", "AWS_PROFILE"],
)
def test_the_region_signed_for_is_read_from_the_configuration(
    endpoint: _Server,
    transport_kind: str,
    configuration: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    config_file: str,
    region: str,
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    configuration(config_file)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url_of(endpoint))
    endpoint.behaviour = EMPTY_SUCCESS
    assert transport_from_environment(transport_kind).send(MESSAGES) == BatchResponse()
    assert f"/{region}/ioteventsdata/aws4_request" in endpoint.received[0].headers["authorization"]


def test_aws_region_alone_is_no_region_for_botocore_so_for_neither_transport(
    transport_kind: str, configuration: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore reads AWS_DEFAULT_REGION and the profile, not AWS_REGION (other SDKs do): the
    # default transport agrees with boto3 rather than guess.
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    with pytest.raises(botocore.exceptions.NoRegionError):
        transport_from_environment(transport_kind)


# TLS: an endpoint with a self-signed certificate, trusted only through the configured bundle.


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ordered-sender test endpoint")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_endpoint(endpoint: _Server, certificate: tuple[Path, Path]) -> _Server:
    """The raw server, speaking TLS with the self-signed certificate; answers an empty success."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    endpoint.socket = context.wrap_socket(endpoint.socket, server_side=True)
    endpoint.behaviour = EMPTY_SUCCESS
    return endpoint


@pytest.mark.parametrize("source", ["AWS_CA_BUNDLE", "profile ca_bundle", "REQUESTS_CA_BUNDLE"])
def test_the_configured_ca_bundle_verifies_the_endpoint(
    tls_endpoint: _Server,
    certificate: tuple[Path, Path],
    transport_kind: str,
    configuration: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    bundle = str(certificate[0])
    if source == "profile ca_bundle":
        configuration(f"[default]\nca_bundle = {bundle}\n")
    else:
        monkeypatch.setenv(source, bundle)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url_of(tls_endpoint, "https"))
    assert transport_from_environment(transport_kind).send(MESSAGES) == BatchResponse()
    assert len(tls_endpoint.received) == 1


def test_one_tls_connection_is_kept_alive_across_sends(
    tls_endpoint: _Server, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the server sends after the handshake (TLS 1.3 session tickets) is read with the first
    # answer: the idle connection is not taken for one the server closed.
    tls_endpoint.behaviour = KEEP_ALIVE_SUCCESS
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate[0]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", url_of(tls_endpoint, "https"))
    with HttpTransport.from_environment(timeout=5) as http:
        for _ in range(4):
            assert http.send(MESSAGES) == BatchResponse()
    assert (tls_endpoint.connections, len(tls_endpoint.received)) == (1, 4)


def test_without_the_ca_bundle_a_self_signed_endpoint_is_refused(
    tls_endpoint: _Server,
    transport_kind: str,
    configuration: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", url_of(tls_endpoint, "https"))
    error = transport_from_environment(transport_kind).send(MESSAGES).request_error
    assert error is not None
    assert (error.kind, error.code) == (RequestErrorKind.CONNECTION, "SSLError")
    assert tls_endpoint.received == []


# Proxies from the environment: a small forwarding and tunnelling proxy on 127.0.0.1.


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: _Proxy

    def handle(self) -> None:
        request_line = self.rfile.readline().decode("latin-1").strip()
        lines: list[bytes] = []
        while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            lines.append(line)
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.decode("latin-1").partition(":") for line in lines)
        }
        self.server.seen.append(Received(request_line, headers, b""))
        method, target, _ = request_line.split(" ", 2)
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port))) as upstream:
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                copier = threading.Thread(
                    target=_copy, args=(upstream, self.connection), daemon=True
                )
                copier.start()
                _copy(self.connection, upstream)
                copier.join(timeout=5)
            return
        # Forwarding: the request goes on as it came (its Host and signature untouched), once.
        url = urllib3.util.parse_url(target)
        body = self.rfile.read(int(headers.get("content-length", "0")))
        kept = [line for line in lines if not line.lower().startswith((b"proxy-", b"connection"))]
        with socket.create_connection((url.host, url.port)) as upstream:
            upstream.sendall(
                f"{method} {url.request_uri} HTTP/1.1\r\n".encode()
                + b"".join(kept)
                + b"Connection: close\r\n\r\n"
                + body
            )
            while data := upstream.recv(65536):
                self.wfile.write(data)


def _copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    seen: list[Received]


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    server = _Proxy(("127.0.0.1", 0), _ProxyHandler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_requests_go_through_the_proxy_from_the_environment(
    verifying: Emulator,
    proxy: _Proxy,
    transport_kind: str,
    configuration: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", url_of(proxy))
    monkeypatch.setenv("AWS_ENDPOINT_URL", verifying.endpoint_url)
    # The signature still verifies: the proxy passes the request on unchanged.
    assert transport_from_environment(transport_kind).send(MESSAGES) == BatchResponse()
    assert [seen.request_line for seen in proxy.seen] == [
        f"POST {verifying.endpoint_url}/inputs/messages HTTP/1.1"
    ]
    assert len(verifying.processed()) == 2


@pytest.mark.parametrize("bypassed", ["127.0.0.1", "localhost,127.0.0.1", "*"])
def test_no_proxy_sends_around_the_proxy(
    verifying: Emulator,
    proxy: _Proxy,
    transport_kind: str,
    configuration: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    bypassed: str,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", url_of(proxy))
    monkeypatch.setenv("NO_PROXY", bypassed)
    monkeypatch.setenv("AWS_ENDPOINT_URL", verifying.endpoint_url)
    assert transport_from_environment(transport_kind).send(MESSAGES) == BatchResponse()
    assert proxy.seen == []
    assert len(verifying.processed()) == 2


def test_https_goes_through_a_tunnel_of_the_proxy(
    tls_endpoint: _Server,
    certificate: tuple[Path, Path],
    proxy: _Proxy,
    transport_kind: str,
    configuration: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", url_of(proxy))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate[0]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", url_of(tls_endpoint, "https"))
    transport = transport_from_environment(transport_kind)
    assert transport.send(MESSAGES) == BatchResponse()
    port = tls_endpoint.server_address[1]
    assert [seen.request_line.split(" ")[:2] for seen in proxy.seen] == [
        ["CONNECT", f"127.0.0.1:{port}"]
    ]
    assert len(tls_endpoint.received) == 1


def test_credentials_in_the_proxy_url_are_sent_to_the_proxy_only(
    verifying: Emulator,
    proxy: _Proxy,
    transport_kind: str,
    configuration: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://user:p%40ss@127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", verifying.endpoint_url)
    assert transport_from_environment(transport_kind).send(MESSAGES) == BatchResponse()
    expected = "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert proxy.seen[0].headers["proxy-authorization"] == expected


def test_a_proxy_that_refuses_is_a_connection_error(
    transport_kind: str, configuration: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    error = transport_from_environment(transport_kind).send(MESSAGES).request_error
    assert error is not None
    assert (error.kind, error.code) == (RequestErrorKind.CONNECTION, "ProxyConnectionError")
    assert classify_one(error) is OutcomeKind.TRANSIENT

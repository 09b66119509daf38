"""The boto3 transport reads every fault botocore can raise at send, through a real client.

Each test sends with ``build_client`` over HTTP to 127.0.0.1: the emulator, or a small raw server
whose behaviour the test chooses (answer something, never answer, hang up).
"""

from __future__ import annotations

import inspect
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import botocore.exceptions
import botocore.parsers
import pytest

from ordered_sender.emulator import Emulator, Faults
from ordered_sender.message import Message
from ordered_sender.outcomes import OutcomeKind, classify
from ordered_sender.transport import BatchResponse, RequestError, RequestErrorKind
from ordered_sender.transport.iotevents import (
    BOTOCORE_ERROR_KINDS,
    UNEXPECTED_RESPONSE,
    IotEventsTransport,
    build_client,
    error_kind,
)

INPUT = "PressureInput"
MESSAGES = [Message(INPUT, b'{"value": 1}', "m1"), Message(INPUT, b'{"value": 2}', "m2")]

Behaviour = Callable[[socketserver.StreamRequestHandler, threading.Event], None]


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        _read_request(self)
        self.server.requests_read += 1
        self.server.behaviour(self, self.server.release)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    requests_read = 0
    behaviour: Behaviour
    release: threading.Event


def _read_request(handler: socketserver.StreamRequestHandler) -> None:
    length = 0
    while (line := handler.rfile.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    handler.rfile.read(length)


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer once with this status, body and headers, then close."""

    def behaviour(handler: socketserver.StreamRequestHandler, release: threading.Event) -> None:
        lines = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        handler.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return behaviour


def never_answer(handler: socketserver.StreamRequestHandler, release: threading.Event) -> None:
    release.wait(timeout=30)


def hang_up(handler: socketserver.StreamRequestHandler, release: threading.Event) -> None:
    """Read the request, then close the connection without a byte of answer."""


def hang_up_mid_answer(
    handler: socketserver.StreamRequestHandler, release: threading.Event
) -> None:
    handler.wfile.write(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"Batch'
    )


@pytest.fixture
def endpoint() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def url_of(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def transport_to(url: str, timeout: float = 5.0) -> IotEventsTransport:
    return IotEventsTransport(
        build_client(timeout=timeout, endpoint_url=url, region_name="us-east-1")
    )


def send_to(server: _Server, behaviour: Behaviour, timeout: float = 5.0) -> RequestError:
    server.behaviour = behaviour
    response = transport_to(url_of(server), timeout).send(MESSAGES)
    assert response.request_error is not None
    return response.request_error


def test_a_refused_connection_is_a_connection_error_of_unknown_outcome() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = transport_to(f"http://127.0.0.1:{port}").send(MESSAGES).request_error
    assert error is not None
    assert (error.kind, error.code) == (RequestErrorKind.CONNECTION, "EndpointConnectionError")
    assert classify_one(error) is OutcomeKind.TRANSIENT


def test_an_endpoint_that_never_answers_is_a_read_timeout(endpoint: _Server) -> None:
    error = send_to(endpoint, never_answer, timeout=0.5)
    assert (error.kind, error.code) == (RequestErrorKind.CONNECTION, "ReadTimeoutError")


def test_a_connection_closed_before_any_answer_is_a_connection_error(endpoint: _Server) -> None:
    error = send_to(endpoint, hang_up)
    assert (error.kind, error.code) == (RequestErrorKind.CONNECTION, "ConnectionClosedError")


def test_an_answer_cut_short_is_not_taken_for_success(endpoint: _Server) -> None:
    # botocore does not check Content-Length on this answer; without our check the cut body
    # would read as "no error entries", i.e. every message delivered.
    error = send_to(endpoint, hang_up_mid_answer)
    assert (error.kind, error.code) == (RequestErrorKind.UNEXPECTED, "ResponseParserError")
    assert "ended after" in error.text
    assert classify_one(error) is OutcomeKind.TRANSIENT


@pytest.mark.parametrize(
    ("status", "code"), [(200, "ResponseParserError"), (404, UNEXPECTED_RESPONSE)]
)
def test_an_html_page_is_not_taken_for_an_iot_events_answer(
    endpoint: _Server, status: int, code: str
) -> None:
    page = b"<html><body>Welcome to nginx</body></html>"
    error = send_to(endpoint, answer(status, page, {"Content-Type": "text/html"}))
    assert (error.kind, error.code) == (RequestErrorKind.UNEXPECTED, code)
    assert "endpoint_url" in error.text
    outcome = classify(_response(error), ["m1", "m2"])["m1"]
    assert (outcome.kind, outcome.error_code) == (OutcomeKind.TRANSIENT, code)


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
    endpoint: _Server, body: bytes
) -> None:
    error = send_to(endpoint, answer(200, body, {"Content-Type": "application/json"}))
    assert (error.kind, error.code) == (RequestErrorKind.UNEXPECTED, "ResponseParserError")


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (403, {"x-amzn-ErrorType": "AccessDeniedException:"}),
        (400, {"x-amzn-ErrorType": "UnrecognizedClientException:"}),
        (400, {"x-amzn-ErrorType": "ExpiredTokenException:"}),
        (403, {"Content-Type": "text/html"}),
    ],
)
def test_access_denied_and_bad_credentials_are_credential_errors(
    endpoint: _Server, status: int, headers: dict[str, str]
) -> None:
    error = send_to(endpoint, answer(status, b'{"message": "no"}', headers))
    assert (error.kind, error.status) == (RequestErrorKind.CREDENTIALS, status)
    assert classify_one(error) is OutcomeKind.HALT


def test_no_credentials_at_all_is_a_credential_error(
    endpoint: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    error = send_to(endpoint, answer(200, b"{}", {"Content-Type": "application/json"}))
    assert (error.kind, error.code) == (RequestErrorKind.CREDENTIALS, "NoCredentialsError")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "ThrottlingException"),
        (500, "InternalFailureException"),
        (503, "ServiceUnavailableException"),
    ],
)
def test_a_service_fault_keeps_its_code_and_status_and_is_retried(status: int, code: str) -> None:
    faults = Faults(request_error_rate=1.0, request_error_codes=(status,))
    with Emulator(seed=1, faults=faults) as emu:
        emu.create_input(INPUT)
        error = transport_to(emu.endpoint_url).send(MESSAGES).request_error
    assert error is not None
    assert (error.kind, error.code, error.status) == (RequestErrorKind.SERVICE, code, status)
    assert classify_one(error) is OutcomeKind.TRANSIENT


def test_an_invalid_message_is_refused_before_sending_and_not_retried(endpoint: _Server) -> None:
    endpoint.behaviour = answer(200, b"{}", {"Content-Type": "application/json"})
    # botocore checks minimum lengths (not patterns) before sending: an empty messageId is refused.
    response = transport_to(url_of(endpoint)).send([Message(INPUT, b"{}", "")])
    error = response.request_error
    assert error is not None
    assert (error.kind, error.code) == (RequestErrorKind.INVALID_REQUEST, "ParamValidationError")
    assert classify(response, [""])[""].kind is OutcomeKind.PERMANENT
    assert endpoint.requests_read == 0


def test_a_delivered_batch_reports_only_the_emulators_error_entries() -> None:
    with Emulator(seed=1) as emu:
        emu.create_input(INPUT)
        response = transport_to(emu.endpoint_url).send(
            [*MESSAGES, Message("NoSuchInput", b"{}", "m3")]
        )
        assert sorted(m.message_id for m in emu.processed()) == ["m1", "m2"]
    assert response.request_error is None
    assert [(e.message_id, e.code) for e in response.entry_errors] == [
        ("m3", "ResourceNotFoundException")
    ]


def test_an_exception_nobody_mapped_propagates_out_of_send(endpoint: _Server) -> None:
    client = build_client(timeout=5, endpoint_url=url_of(endpoint), region_name="us-east-1")

    def fail(**_: Any) -> None:
        raise RuntimeError("a bug below the transport")

    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-send.{service_id}.BatchPutMessage", fail)
    with pytest.raises(RuntimeError, match="a bug below the transport"):
        IotEventsTransport(client).send(MESSAGES)


NOT_RAISED_AT_SEND: dict[type[Exception], str] = {
    # Raised while a client, session or config is built, before any send.
    botocore.exceptions.ApiVersionNotFoundError: "client creation: unknown API version",
    botocore.exceptions.ConfigNotFound: "session creation: config file",
    botocore.exceptions.ConfigParseError: "session creation: config file",
    botocore.exceptions.DataNotFoundError: "client creation: service model lookup",
    botocore.exceptions.InvalidConfigError: "client creation: Config validation",
    botocore.exceptions.InvalidRetryConfigurationError: "client creation: retries config",
    botocore.exceptions.InvalidDefaultsMode: "client creation: defaults_mode",
    botocore.exceptions.InvalidEndpointConfigurationError: "client creation: endpoint config",
    botocore.exceptions.InvalidEndpointDiscoveryConfigurationError: "client creation",
    botocore.exceptions.InvalidIMDSEndpointError: "credential provider creation: IMDS config",
    botocore.exceptions.InvalidIMDSEndpointModeError: "credential provider creation",
    botocore.exceptions.InvalidChecksumConfigError: "client creation: checksum config",
    botocore.exceptions.InvalidS3AddressingStyleError: "S3 client config only",
    botocore.exceptions.InvalidS3UsEast1RegionalEndpointConfigError: "S3 client config only",
    botocore.exceptions.InvalidSTSRegionalEndpointsConfigError: "STS client config only",
    botocore.exceptions.BaseEndpointResolverError: "client creation: NoRegionError and kin",
    botocore.exceptions.ProfileNotFound: "session creation: profile lookup",
    botocore.exceptions.UnknownCredentialError: "credential resolver configuration",
    botocore.exceptions.UnknownTokenProviderError: "token resolver configuration",
    botocore.exceptions.UnknownRegionError: "client creation: region lookup",
    botocore.exceptions.ServiceNotInRegionError: "never raised by botocore itself",
    botocore.exceptions.UnknownServiceStyle: "client creation: service model",
    botocore.exceptions.UnknownSignatureVersionError: "client creation: signature config",
    botocore.exceptions.UnsupportedSignatureVersionError: "client creation: signature config",
    botocore.exceptions.UnsupportedServiceProtocolsError: "client creation: protocol config",
    botocore.exceptions.UnknownEndpointResolutionBuiltInName: "client creation: rules",
    botocore.exceptions.MissingDependencyException: "client creation (CRT) or S3 checksums",
    botocore.exceptions.UnknownClientMethodError: "client method lookup",
    # Only other APIs or other operations than BatchPutMessage.
    botocore.exceptions.OperationNotPageableError: "paginators only",
    botocore.exceptions.PaginationError: "paginators only",
    botocore.exceptions.WaiterConfigError: "waiters only",
    botocore.exceptions.WaiterError: "waiters only",
    botocore.exceptions.StubResponseError: "botocore.stub.Stubber only",
    botocore.exceptions.InvalidExpressionError: "S3/Glacier expressions only",
    botocore.exceptions.InvalidDNSNameError: "S3 bucket names only",
    botocore.exceptions.InvalidHostLabelError: "host prefixes; BatchPutMessage has none",
    botocore.exceptions.AwsChunkedWrapperError: "S3 aws-chunked uploads only",
    botocore.exceptions.ChecksumError: "httpChecksum operations; BatchPutMessage is not one",
    botocore.exceptions.FlexibleChecksumError: "httpChecksum operations only",
    botocore.exceptions.MD5UnavailableError: "S3 Content-MD5 only",
    botocore.exceptions.IncompleteReadError: "streaming response bodies only",
    botocore.exceptions.UnseekableStreamError: "streaming request bodies only",
    botocore.exceptions.UnsupportedOutpostResourceError: "S3 ARNs only",
    botocore.exceptions.UnsupportedS3AccesspointConfigurationError: "S3 only",
    botocore.exceptions.UnsupportedS3ArnError: "S3 only",
    botocore.exceptions.UnsupportedS3ConfigurationError: "S3 only",
    botocore.exceptions.UnsupportedS3ControlArnError: "S3 Control only",
    botocore.exceptions.UnsupportedS3ControlConfigurationError: "S3 Control only",
    botocore.exceptions.ValidationError: "legacy/S3 handlers; the validator raises ParamValidation",
    botocore.exceptions.MissingParametersError: "legacy handlers of other services",
    botocore.exceptions.NoAuthTokenError: "bearer-token auth; iotevents-data signs with SigV4",
    botocore.exceptions.CapacityNotAvailableError: "adaptive retry mode; build_client: standard",
}
"""botocore exceptions left out of the table, each with why it cannot arise from a send."""

LEFT_TO_PROPAGATE: dict[type[Exception], str] = {
    # These can arise at send but mean a configuration only a person can fix: unmapped on
    # purpose, so they propagate and the sender logs them with their traceback.
    botocore.exceptions.EndpointProviderError: "endpoint rules are resolved per call",
    botocore.exceptions.InvalidProxiesConfigError: "proxy settings are read at first send",
}

EXPECTED_KINDS: dict[type[Exception], RequestErrorKind] = {
    botocore.exceptions.ClientError: RequestErrorKind.SERVICE,
    botocore.exceptions.EventStreamError: RequestErrorKind.SERVICE,
    botocore.exceptions.NoCredentialsError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.PartialCredentialsError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.CredentialRetrievalError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.MetadataRetrievalError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.RefreshWithMFAUnsupportedError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.TokenRetrievalError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.SSOError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.SSOTokenLoadError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.UnauthorizedSSOTokenError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.LoginError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.LoginRefreshRequired: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.LoginTokenLoadError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.LoginAuthorizationCodeError: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.LoginInsufficientPermissions: RequestErrorKind.CREDENTIALS,
    botocore.exceptions.ConnectionError: RequestErrorKind.CONNECTION,
    botocore.exceptions.EndpointConnectionError: RequestErrorKind.CONNECTION,
    botocore.exceptions.ConnectTimeoutError: RequestErrorKind.CONNECTION,
    botocore.exceptions.ProxyConnectionError: RequestErrorKind.CONNECTION,
    botocore.exceptions.SSLError: RequestErrorKind.CONNECTION,
    botocore.exceptions.HTTPClientError: RequestErrorKind.CONNECTION,
    botocore.exceptions.ConnectionClosedError: RequestErrorKind.CONNECTION,
    botocore.exceptions.ReadTimeoutError: RequestErrorKind.CONNECTION,
    botocore.exceptions.ResponseStreamingError: RequestErrorKind.CONNECTION,
    botocore.parsers.ResponseParserError: RequestErrorKind.UNEXPECTED,
    botocore.exceptions.ParamValidationError: RequestErrorKind.INVALID_REQUEST,
}
"""What every exception a send can raise must resolve to, written independently of the table."""


def _botocore_exceptions() -> set[type[Exception]]:
    found: set[type[Exception]] = set()
    for _, cls in inspect.getmembers(botocore.exceptions, inspect.isclass):
        if issubclass(cls, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)):
            found.add(cast("type[Exception]", cls))
    found.discard(botocore.exceptions.BotoCoreError)
    return found | {botocore.parsers.ResponseParserError}


def _excluded(cls: type[Exception], exclusions: dict[type[Exception], str]) -> bool:
    return any(issubclass(cls, excluded) for excluded in exclusions)


def test_every_botocore_exception_a_send_can_raise_resolves_to_its_kind() -> None:
    unaccounted = []
    for cls in sorted(_botocore_exceptions(), key=lambda c: c.__name__):
        if _excluded(cls, NOT_RAISED_AT_SEND) or _excluded(cls, LEFT_TO_PROPAGATE):
            assert error_kind(cls) is None, f"{cls.__name__} is excluded but mapped"
            continue
        if cls not in EXPECTED_KINDS:
            unaccounted.append(cls.__name__)
            continue
        assert error_kind(cls) is EXPECTED_KINDS[cls], cls.__name__
    assert not unaccounted, f"botocore exceptions neither mapped nor excluded: {unaccounted}"


def test_every_entry_of_the_table_decides_some_exception() -> None:
    """No entry is shadowed by another, so removing any one breaks the test above."""
    for removed in BOTOCORE_ERROR_KINDS:
        rest = {cls: kind for cls, kind in BOTOCORE_ERROR_KINDS.items() if cls is not removed}

        def without_it(
            error_type: type[Exception], rest: dict[Any, RequestErrorKind] = rest
        ) -> Any:
            return next((rest[cls] for cls in error_type.__mro__ if cls in rest), None)

        changed = [cls for cls, kind in EXPECTED_KINDS.items() if without_it(cls) is not kind]
        assert changed, f"{removed.__name__} decides nothing: remove it or fix EXPECTED_KINDS"


def test_an_exception_outside_botocore_resolves_to_nothing() -> None:
    assert error_kind(RuntimeError) is None
    assert error_kind(AttributeError) is None


def classify_one(error: RequestError) -> OutcomeKind:
    return classify(_response(error), ["m1", "m2"])["m1"].kind


def _response(error: RequestError) -> BatchResponse:
    return BatchResponse(request_error=error)

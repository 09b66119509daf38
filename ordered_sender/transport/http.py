"""The lean transport: BatchPutMessage signed by botocore, sent and read by us.

boto3 spends over a millisecond of CPU per call (its event hooks, parameter handling, endpoint
rules, parsing), which bounds every sender built on it. ``HttpTransport`` keeps only what must
stay botocore's: the credential chain (profiles, environment, refreshable credentials) and the
SigV4 signer. It builds the request from the iotevents-data service model itself, sends it over
a kept-alive connection of its own (transport/connection.py) and reads the answer
(transport/http_answer.py), giving the same RequestError as the boto3 transport for the same
answer. Behind a proxy it sends through urllib3's ProxyManager instead (forwarding, or a CONNECT
tunnel for https), at a little more CPU per call.

The faults of the network arrive as ``ConnectionFault`` with botocore's code (connection.py's
tables) or, behind a proxy, as urllib3's exceptions: ``URLLIB3_ERROR_CODES`` maps each one that a
send can raise to the code botocore gives the same fault, in the manner of httpx's
``HTTPCORE_EXC_MAP``. Credential failures (a refresh that fails) are botocore's own exceptions
and are read with the boto3 transport's table. An exception in none of the tables propagates
(see ``Transport``). This module decides nothing about retries: that is outcomes.py's job.

``from_environment`` asks botocore for everything boto3 would read from the environment and the
profile: credentials, region, the endpoint (``AWS_ENDPOINT_URL_IOTEVENTS_DATA``,
``AWS_ENDPOINT_URL``, the profile's ``endpoint_url`` and services section, FIPS and dual-stack
settings), the CA bundle (``AWS_CA_BUNDLE``, the profile's ``ca_bundle``, ``REQUESTS_CA_BUNDLE``,
else botocore's default bundle) and the proxy (``HTTPS_PROXY``/``HTTP_PROXY`` unless
``NO_PROXY`` names the host).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any

import botocore
import botocore.auth
import botocore.awsrequest
import botocore.exceptions
import botocore.httpsession
import botocore.model
import botocore.session
import botocore.utils
import botocore.validate
import urllib3
import urllib3.exceptions

from ordered_sender.message import Message
from ordered_sender.transport import (
    BatchResponse,
    RequestError,
    RequestErrorKind,
    mapped_by_class,
)
from ordered_sender.transport.connection import ConnectionFault, ConnectionPool
from ordered_sender.transport.http_answer import (
    CONTENT_TYPE,
    encode_request,
    read_answer,
    request_document,
)
from ordered_sender.transport.iotevents import error_kind

SERVICE_NAME = "iotevents-data"
OPERATION_NAME = "BatchPutMessage"

URLLIB3_ERROR_CODES: Mapping[type[Exception], str] = MappingProxyType(
    {
        # Refused, unreachable, unknown host name (NameResolutionError): may not have left.
        urllib3.exceptions.NewConnectionError: "EndpointConnectionError",
        urllib3.exceptions.ConnectTimeoutError: "ConnectTimeoutError",
        # The proxy refused, was unreachable or would not open the tunnel.
        urllib3.exceptions.ProxyError: "ProxyConnectionError",
        # The certificate or the handshake failed; a plain-HTTP server on an https URL.
        urllib3.exceptions.SSLError: "SSLError",
        # Sent, no answer read in time.
        urllib3.exceptions.ReadTimeoutError: "ReadTimeoutError",
        # Closed or reset before or during the answer, or an answer that is not HTTP: urllib3
        # wraps the OSError or http.client exception (RemoteDisconnected, IncompleteRead, ...).
        urllib3.exceptions.ProtocolError: "ConnectionClosedError",
    }
)
"""Every urllib3 exception a send can raise, by class, with botocore's code for the same fault;
subclasses resolve by their MRO. All of them are RequestErrorKind.CONNECTION: outcome unknown."""

_USER_AGENT = f"ordered-sender (lean transport) Botocore/{botocore.__version__}"


def error_code(error_type: type[BaseException]) -> str | None:
    """The code ``URLLIB3_ERROR_CODES`` gives this class (nearest mapped ancestor), or None."""
    return mapped_by_class(URLLIB3_ERROR_CODES, error_type)


def default_endpoint_url(service_model: botocore.model.ServiceModel, region_name: str) -> str:
    """AWS's endpoint of the service in a region: ``https://data.iotevents.{region}...``."""
    return f"https://{service_model.endpoint_prefix}.{region_name}.amazonaws.com"


class HttpTransport:
    """Sends BatchPutMessage requests signed with SigV4 over pooled keep-alive connections.

    ``credentials`` is a botocore ``Credentials`` (from ``Session.get_credentials()``, which may
    be refreshable) or None when there are none: each send reads its frozen value, so a refresh
    is picked up, and no credentials is a CREDENTIALS error at send, as with boto3.
    ``endpoint_url`` defaults to AWS's endpoint for ``region_name``. ``timeout`` bounds the
    connect and each read, in seconds. ``max_connections`` connections are kept alive; more
    concurrent sends open and close their own. ``ca_bundle`` is the file of certificates an
    https endpoint is checked against (default: botocore's, as boto3 uses). ``proxy_url``
    (``http://[user:password@]host:port``) sends every request through that proxy: forwarded for
    an http endpoint, tunnelled with CONNECT for https. Safe to call from several threads.
    """

    def __init__(
        self,
        credentials: Any,
        *,
        region_name: str,
        service_model: botocore.model.ServiceModel,
        endpoint_url: str | None = None,
        timeout: float = 10.0,
        max_connections: int = 10,
        ca_bundle: str | None = None,
        proxy_url: str | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got timeout={timeout!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections!r}")
        operation = service_model.operation_model(OPERATION_NAME)
        _check_model(service_model, operation)
        self._credentials = credentials
        self._region_name = region_name
        self._signing_name = service_model.signing_name
        self._method = operation.http["method"]
        self._input_shape = operation.input_shape
        self._minimums = _Minimums.of(operation.input_shape)
        url = urllib3.util.parse_url(
            endpoint_url or default_endpoint_url(service_model, region_name)
        )
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(
                f"endpoint_url must be an http:// or https:// URL with a host, got {endpoint_url!r}"
            )
        # An endpoint_url with a path is a prefix of the operation's URI, as botocore takes it.
        self._target = (url.path or "").rstrip("/") + operation.http["requestUri"]
        self._signed_url = f"{url.scheme}://{url.netloc}{self._target}"
        self.endpoint_url = f"{url.scheme}://{url.netloc}{(url.path or '').rstrip('/')}"
        self.proxy_url = proxy_url
        default_port = 443 if url.scheme == "https" else 80
        # Sent and signed as botocore would derive it: lower case, no default port.
        self._host = url.host.lower() + (
            f":{url.port}" if url.port not in (None, default_port) else ""
        )
        ca_certs = botocore.httpsession.get_cert_path(ca_bundle or True)
        self._direct: ConnectionPool | None = None
        self._proxied: urllib3.ProxyManager | None = None
        if proxy_url is None:
            tls = ssl.create_default_context(cafile=ca_certs) if url.scheme == "https" else None
            self._direct = ConnectionPool(
                url.host.strip("[]"),
                url.port or default_port,
                timeout=timeout,
                max_idle=max_connections,
                tls=tls,
            )
        else:
            pool_options: dict[str, Any] = {
                "maxsize": max_connections,
                "block": False,
                "timeout": urllib3.Timeout(connect=timeout, read=timeout),
                "retries": False,
            }
            if url.scheme == "https":
                pool_options["cert_reqs"] = "CERT_REQUIRED"
                pool_options["ca_certs"] = ca_certs
            proxies = botocore.httpsession.ProxyConfiguration()
            self._proxied = urllib3.ProxyManager(
                proxy_url,
                num_pools=1,
                proxy_headers=proxies.proxy_headers_for(proxy_url),
                **pool_options,
            )

    @classmethod
    def from_environment(
        cls,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        timeout: float = 10.0,
        profile_name: str | None = None,
        max_connections: int = 10,
    ) -> HttpTransport:
        """A transport configured as boto3's ``iotevents-data`` client would be (see the module).

        ``endpoint_url`` and ``region_name`` win over the configuration, as with boto3. Raises
        what botocore raises for a bad configuration (``ProfileNotFound``, ``NoRegionError``,
        ``UnknownServiceError`` when the iotevents-data model is missing).
        """
        session = botocore.session.Session(profile=profile_name)
        # The region and endpoint come from a client that botocore builds and we never use: its
        # resolution (environment, profile, services section, endpoint rules) is boto3's own.
        client = session.create_client(
            SERVICE_NAME, region_name=region_name, endpoint_url=endpoint_url
        )
        try:
            meta = client.meta
            resolved_url: str = meta.endpoint_url
            service_model = meta.service_model
            region: str = meta.region_name
        finally:
            client.close()
        # botocore reads REQUESTS_CA_BUNDLE from os.environ itself, after the configured one.
        ca_bundle = session.get_config_variable("ca_bundle") or os.environ.get("REQUESTS_CA_BUNDLE")
        proxies = botocore.httpsession.ProxyConfiguration(
            proxies=botocore.utils.get_environ_proxies(resolved_url)
        )
        return cls(
            session.get_credentials(),
            region_name=region,
            service_model=service_model,
            endpoint_url=resolved_url,
            timeout=timeout,
            max_connections=max_connections,
            ca_bundle=ca_bundle,
            proxy_url=proxies.proxy_url_for(resolved_url),
        )

    def send(self, messages: Sequence[Message]) -> BatchResponse:
        document = request_document(messages)
        if not self._minimums.allow(messages):
            # botocore's validator, only on this path: it costs a tenth of a call's CPU.
            report = botocore.validate.ParamValidator().validate(document, self._input_shape)
            if report.has_errors():
                return _failed(
                    RequestErrorKind.INVALID_REQUEST,
                    "ParamValidationError",
                    report.generate_report(),
                )
        if self._credentials is None:
            return _failed(
                RequestErrorKind.CREDENTIALS, "NoCredentialsError", "Unable to locate credentials"
            )
        try:
            credentials = self._credentials.get_frozen_credentials()
        except Exception as error:
            refused = _credential_error(error)
            if refused is None:
                raise
            return BatchResponse(request_error=refused)
        request = botocore.awsrequest.AWSRequest(
            method=self._method,
            url=self._signed_url,
            data=encode_request(document),
            headers={"Host": self._host, "Content-Type": CONTENT_TYPE},
        )
        botocore.auth.SigV4Auth(credentials, self._signing_name, self._region_name).add_auth(
            request
        )
        headers = dict(request.headers.items())
        headers["User-Agent"] = _USER_AGENT
        body: bytes = request.data
        if self._direct is None:
            return self._send_through_proxy(headers, body)
        lines = [f"{self._method} {self._target} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            answer = self._direct.request(head, body)
        except ConnectionFault as fault:
            return _failed(RequestErrorKind.CONNECTION, fault.code, fault.text)
        return read_answer(answer.status, answer.headers, answer.body)

    def _send_through_proxy(self, headers: dict[str, str], body: bytes) -> BatchResponse:
        assert self._proxied is not None
        try:
            answer = self._proxied.urlopen(
                self._method,
                self._signed_url,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                preload_content=True,
                decode_content=False,
            )
        except Exception as error:
            code = error_code(type(error))
            if code is None:
                raise
            return _failed(RequestErrorKind.CONNECTION, code, str(error))
        return read_answer(answer.status, answer.headers, answer.data)

    def close(self) -> None:
        """Close the kept-alive connections. Sending after this is the caller's bug: it raises
        ``PoolClosed`` (without a proxy) or opens a new connection (behind one)."""
        if self._direct is not None:
            self._direct.close()
        if self._proxied is not None:
            self._proxied.clear()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class _Minimums:
    """The constraints botocore's validator checks on a list of ``Message`` values.

    It checks minimums only (no maximum, no pattern), and a Message's fields have the types of
    the shape, so these are all it can refuse.
    """

    messages: int
    message_id: int
    input_name: int
    time_in_millis: int

    @classmethod
    def of(cls, input_shape: Any) -> _Minimums:
        messages = input_shape.members["messages"]
        fields = messages.member.members
        return cls(
            messages=messages.metadata.get("min", 0),
            message_id=fields["messageId"].metadata.get("min", 0),
            input_name=fields["inputName"].metadata.get("min", 0),
            time_in_millis=fields["timestamp"].members["timeInMillis"].metadata.get("min", 0),
        )

    def allow(self, messages: Sequence[Message]) -> bool:
        return len(messages) >= self.messages and all(
            len(message.message_id) >= self.message_id
            and len(message.input_name) >= self.input_name
            and (message.timestamp_ms is None or message.timestamp_ms >= self.time_in_millis)
            for message in messages
        )


def _check_model(
    service_model: botocore.model.ServiceModel, operation: botocore.model.OperationModel
) -> None:
    """Refuse a service model this module cannot speak, rather than send the wrong bytes."""
    message_shape = operation.input_shape.members["messages"].member
    payload_type = message_shape.members["payload"].type_name
    if service_model.protocol != "rest-json" or payload_type != "blob":
        raise ValueError(
            f"{SERVICE_NAME} {OPERATION_NAME} is {service_model.protocol} with a "
            f"{payload_type} payload; HttpTransport speaks rest-json with a blob payload"
        )


def _credential_error(error: Exception) -> RequestError | None:
    """A failed credential refresh, read with the boto3 transport's table (its client meets the
    same failures when it signs), or None for an exception that table does not know.

    One difference: when the provider's own call is refused (STS AssumeRole answers an error),
    the boto3 transport reports that answer as if IoT Events had given it, so a throttled STS
    could dead-letter messages; here no credentials is always CREDENTIALS.
    """
    kind = error_kind(type(error))
    if kind is None:
        return None
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(details.get("Code", "")) or type(error).__name__
        text = f"the credential provider was refused: {details.get('Message', '')}"
        return RequestError(RequestErrorKind.CREDENTIALS, code, text, status)
    return RequestError(kind, type(error).__name__, str(error))


def _failed(kind: RequestErrorKind, code: str, text: str) -> BatchResponse:
    return BatchResponse(request_error=RequestError(kind, code, text))

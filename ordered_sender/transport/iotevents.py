"""The boto3 transport: BatchPutMessage through an ``iotevents-data`` client.

This is the only module that knows botocore's exceptions: ``BOTOCORE_ERROR_KINDS`` maps each one
that ``batch_put_message`` can raise to a RequestErrorKind, in the manner of httpx's
``HTTPCORE_EXC_MAP``. An exception that is not in the table propagates (see ``Transport``). It
decides nothing about retries: that is outcomes.py's job.

Not in the table because they arise while the client is built, not at send: ``NoRegionError``
(no region configured), ``InvalidRegionError``, ``UnknownServiceError`` (the iotevents-data model
is not installed), ``ProfileNotFound`` and the rest of the configuration errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.parsers

from ordered_sender.message import Message
from ordered_sender.transport import (
    BatchResponse,
    EntryError,
    RequestError,
    RequestErrorKind,
    mapped_by_class,
)

_CREDENTIALS = RequestErrorKind.CREDENTIALS
_CONNECTION = RequestErrorKind.CONNECTION

BOTOCORE_ERROR_KINDS: Mapping[type[Exception], RequestErrorKind] = MappingProxyType(
    {
        # The service answered with an error; _client_error refines the kind by code and status.
        botocore.exceptions.ClientError: RequestErrorKind.SERVICE,
        # Credentials are resolved or refreshed when the request is signed, so every provider's
        # failure arrives here: nothing can be sent until they are fixed.
        botocore.exceptions.NoCredentialsError: _CREDENTIALS,
        botocore.exceptions.PartialCredentialsError: _CREDENTIALS,
        botocore.exceptions.CredentialRetrievalError: _CREDENTIALS,
        botocore.exceptions.MetadataRetrievalError: _CREDENTIALS,
        botocore.exceptions.RefreshWithMFAUnsupportedError: _CREDENTIALS,
        botocore.exceptions.TokenRetrievalError: _CREDENTIALS,
        # SSOTokenLoadError, UnauthorizedSSOTokenError.
        botocore.exceptions.SSOError: _CREDENTIALS,
        # LoginRefreshRequired, LoginTokenLoadError, LoginInsufficientPermissions, ...
        botocore.exceptions.LoginError: _CREDENTIALS,
        # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError, SSLError: the
        # request may not have left, or may have been processed; same ids again is safe.
        botocore.exceptions.ConnectionError: _CONNECTION,
        # ReadTimeoutError, ConnectionClosedError, ResponseStreamingError: sent, no answer read.
        botocore.exceptions.HTTPClientError: _CONNECTION,
        # Not a BotoCoreError: botocore could not read the answer as this API's.
        botocore.parsers.ResponseParserError: RequestErrorKind.UNEXPECTED,
        botocore.exceptions.ParamValidationError: RequestErrorKind.INVALID_REQUEST,
    }
)
"""Every exception ``batch_put_message`` can raise, by class; subclasses resolve by their MRO."""

UNEXPECTED_RESPONSE = "UnexpectedResponse"
"""The code of a RequestError for an error answer that carries no AWS error code."""

_CHECK_ID = "ordered_sender.check_batch_put_answer"

CREDENTIAL_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        # A malformed Authorization header (400): no request is signed right until the signer
        # or the credentials are fixed, so it halts the sender rather than isolating messages.
        "IncompleteSignatureException",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "MissingAuthenticationTokenException",
    }
)
"""AWS error codes that mean the request's credentials or signature were refused, whatever the
status: both transports read them as RequestErrorKind.CREDENTIALS (the sender halts)."""


def error_kind(error_type: type[BaseException]) -> RequestErrorKind | None:
    """The kind ``BOTOCORE_ERROR_KINDS`` gives this class (nearest mapped ancestor), or None."""
    return mapped_by_class(BOTOCORE_ERROR_KINDS, error_type)


def build_client(*, timeout: float, **client_kwargs: Any) -> Any:
    """An ``iotevents-data`` client from the environment, with botocore's own retries off.

    Every attempt must be seen (and stored) by the sender, so botocore may try each call only once.
    """
    config = botocore.config.Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=timeout,
        read_timeout=timeout,
    )
    # A session of its own: boto3's default session is process-wide state that caches
    # credentials, and a library should neither share nor change it.
    return boto3.session.Session().client("iotevents-data", config=config, **client_kwargs)


def request_body(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The ``messages`` parameter of BatchPutMessage for these messages."""
    body: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {
            "messageId": message.message_id,
            "inputName": message.input_name,
            "payload": message.payload,
        }
        if message.timestamp_ms is not None:
            entry["timestamp"] = {"timeInMillis": message.timestamp_ms}
        body.append(entry)
    return body


class IotEventsTransport:
    """Sends batches with a boto3 ``iotevents-data`` client (any compatible endpoint)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        # botocore reads a 200 whose body is not JSON, or is cut short, as an empty answer, which
        # would mean every message delivered; the check turns that into a ResponseParserError.
        service_id = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(
            f"before-parse.{service_id}.BatchPutMessage",
            check_batch_put_answer,
            unique_id=_CHECK_ID,
        )

    def send(self, messages: Sequence[Message]) -> BatchResponse:
        try:
            response = self.client.batch_put_message(messages=request_body(messages))
        except Exception as error:
            kind = error_kind(type(error))
            if kind is None:
                raise
            return BatchResponse(request_error=_request_error(error, kind))
        return BatchResponse(
            entry_errors=tuple(
                EntryError(
                    message_id=entry["messageId"],
                    code=entry.get("errorCode", "InternalFailureException"),
                    text=entry.get("errorMessage", ""),
                )
                for entry in response.get("BatchPutMessageErrorEntries", ())
            )
        )


def check_batch_put_answer(response_dict: Mapping[str, Any], **_: Any) -> None:
    """Raise ``ResponseParserError`` unless a 200 answer reads as BatchPutMessage's.

    A botocore ``before-parse`` handler; error answers are left to botocore (see _client_error).
    """
    if response_dict["status_code"] != 200:
        return
    headers = response_dict["headers"]
    body: bytes = response_dict["body"]
    content_type = str(headers.get("content-type", ""))
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) != len(body):
        problem = f"the body ended after {len(body)} of {declared} bytes"
    elif "json" not in content_type:
        problem = f"Content-Type is {content_type!r}"
    else:
        problem = _shape_problem(body)
    if problem:
        raise botocore.parsers.ResponseParserError(
            f"HTTP 200 is not an IoT Events BatchPutMessage answer: {problem} "
            f"(is endpoint_url right?): {body[:200]!r}"
        )


def _shape_problem(body: bytes) -> str:
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        return "the body is not JSON"
    if not isinstance(document, dict):
        return "the body is not a JSON object"
    entries = document.get("BatchPutMessageErrorEntries", [])
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("messageId"), str) for entry in entries
    ):
        return "BatchPutMessageErrorEntries is not a list of entries that name a messageId"
    return ""


def _request_error(error: Exception, kind: RequestErrorKind) -> RequestError:
    if isinstance(error, botocore.exceptions.ClientError):
        return _client_error(error)
    return RequestError(kind, type(error).__name__, str(error))


def _client_error(error: botocore.exceptions.ClientError) -> RequestError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    text = str(details.get("Message", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return judged_error(code, text, status, excerpt=text[:200])


def judged_error(code: str, text: str, status: int | None, *, excerpt: str) -> RequestError:
    """An error answer judged, for both transports: refused credentials, an answer that is not
    from IoT Events (``excerpt`` shows what came instead), or the service's own error."""
    if code in CREDENTIAL_CODES or status == 403:
        return RequestError(RequestErrorKind.CREDENTIALS, code, text, status)
    if code in ("", str(status)):
        # botocore names the error after the status when the answer carried no AWS error code
        # (no x-amzn-ErrorType, no __type): e.g. an HTML page from a proxy or a wrong endpoint.
        return RequestError(
            RequestErrorKind.UNEXPECTED,
            UNEXPECTED_RESPONSE,
            f"HTTP {status} without an AWS error code, not an IoT Events answer "
            f"(is endpoint_url right?): {excerpt}",
            status,
        )
    return RequestError(RequestErrorKind.SERVICE, code, text, status)

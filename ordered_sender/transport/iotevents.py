"""The boto3 transport: BatchPutMessage through an ``iotevents-data`` client.

This is the only module that knows botocore's exceptions; it turns each into a RequestError. It
decides nothing about retries: that is outcomes.py's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from ordered_sender.message import Message
from ordered_sender.transport import BatchResponse, EntryError, RequestError, RequestErrorKind

_CREDENTIAL_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "MissingAuthenticationTokenException",
    }
)


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

    def send(self, messages: Sequence[Message]) -> BatchResponse:
        try:
            response = self.client.batch_put_message(messages=request_body(messages))
        except botocore.exceptions.ClientError as error:
            return BatchResponse(request_error=_client_error(error))
        except (
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
            botocore.exceptions.CredentialRetrievalError,
        ) as error:
            return BatchResponse(
                request_error=RequestError(
                    RequestErrorKind.CREDENTIALS, type(error).__name__, str(error)
                )
            )
        except (
            botocore.exceptions.ConnectionError,
            botocore.exceptions.HTTPClientError,
            botocore.exceptions.ResponseParserError,
        ) as error:
            # The request may or may not have been processed: resending with the same ids is safe.
            return BatchResponse(
                request_error=RequestError(
                    RequestErrorKind.CONNECTION, type(error).__name__, str(error)
                )
            )
        entries = tuple(
            EntryError(
                message_id=entry.get("messageId", ""),
                code=entry.get("errorCode", "InternalFailureException"),
                text=entry.get("errorMessage", ""),
            )
            for entry in response.get("BatchPutMessageErrorEntries", ())
        )
        return BatchResponse(entry_errors=entries)


def _client_error(error: botocore.exceptions.ClientError) -> RequestError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    text = str(details.get("Message", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    kind = RequestErrorKind.SERVICE
    if code in _CREDENTIAL_CODES or status == 403:
        kind = RequestErrorKind.CREDENTIALS
    return RequestError(kind, code, text, status)

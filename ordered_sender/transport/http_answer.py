"""BatchPutMessage on the wire, without botocore's client: the request body and reading the answer.

Pure: bytes and headers in, a body or a ``BatchResponse`` out; no I/O. ``HttpTransport``
(transport/http.py) sends what ``request_document`` and ``encode_request`` make and hands what
came back to ``read_answer``. Every answer is read the way botocore's rest-json parser reads it,
and then judged the way the boto3 transport judges it (transport/iotevents.py), so both
transports give the same RequestError for the same answer:

| answer                                                    | result                               |
|-----------------------------------------------------------|--------------------------------------|
| 200, JSON with a list of entries that name a messageId    | entry errors (none: all delivered)   |
| 200 that is not that (HTML, not JSON, another shape)      | UNEXPECTED ``ResponseParserError``   |
| another status below 300 (BatchPutMessage answers 200)    | UNEXPECTED ``ResponseParserError``   |
| error with a credential code, or any 403                  | CREDENTIALS, with its code           |
| error with an AWS code (header, ``code``, ``__type``)     | SERVICE, with its code and status    |
| error without an AWS code (an HTML page from a proxy)     | UNEXPECTED ``UnexpectedResponse``    |

One difference from botocore, on purpose: botocore names a 5xx answer whose body is empty or
HTML after its status even when ``x-amzn-ErrorType`` names the error; here the header wins.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

import botocore.parsers

from ordered_sender.message import Message
from ordered_sender.transport import BatchResponse, EntryError, RequestError, RequestErrorKind
from ordered_sender.transport.iotevents import (
    check_batch_put_answer,
    judged_error,
    request_body,
)

CONTENT_TYPE = "application/json"
"""What a rest-json request body is sent as (botocore's RestJSONSerializer)."""


def request_document(messages: Sequence[Message]) -> dict[str, Any]:
    """The BatchPutMessage input, as boto3's ``batch_put_message`` takes it (payloads as bytes)."""
    return {"messages": request_body(messages)}


def encode_request(document: Mapping[str, Any]) -> bytes:
    """The JSON body botocore's rest-json serializer makes of ``document``, byte for byte.

    The payload shape is a blob, which JSON carries as base64 text; everything else is
    written as it is, in the same key order and with ``json.dumps``' default separators.
    """
    messages = [
        {**entry, "payload": base64.b64encode(entry["payload"]).decode("ascii")}
        for entry in document["messages"]
    ]
    return json.dumps({**document, "messages": messages}).encode("utf-8")


def read_answer(status: int, headers: Mapping[str, str], body: bytes) -> BatchResponse:
    """What a BatchPutMessage answer says; ``headers`` must look names up case-insensitively."""
    if status == 200:
        return _read_success(headers, body)
    if status < 300:
        return _unexpected(
            "ResponseParserError",
            f"HTTP {status} is not an IoT Events BatchPutMessage answer (it answers 200; is "
            f"endpoint_url right?): {body[:200]!r}",
            status,
        )
    code, text = error_code_and_text(headers, body)
    return BatchResponse(request_error=service_error(code, text, status, body))


def _read_success(headers: Mapping[str, str], body: bytes) -> BatchResponse:
    try:
        check_batch_put_answer({"status_code": 200, "headers": headers, "body": body})
    except botocore.parsers.ResponseParserError as error:
        return _unexpected("ResponseParserError", str(error), 200)
    entries = json.loads(body).get("BatchPutMessageErrorEntries", ()) if body else ()
    return BatchResponse(
        entry_errors=tuple(
            EntryError(
                message_id=entry["messageId"],
                code=entry.get("errorCode", "InternalFailureException"),
                text=entry.get("errorMessage", ""),
            )
            for entry in entries
        )
    )


def error_code_and_text(headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """The AWS error code ("" when there is none) and message of an error answer.

    In botocore's order: the ``x-amzn-ErrorType`` header, else ``code``/``Code`` in the body,
    else ``__type``; ``Code:extra`` and ``namespace#Code`` both mean ``Code``.
    """
    document = _json_object(body)
    text = document.get("message", document.get("Message", ""))
    code = headers.get("x-amzn-errortype")
    if code is None:
        code = document.get("code", document.get("Code", document.get("__type", "")))
    if not isinstance(code, str):
        code = ""
    return code.split(":", 1)[0].rsplit("#", 1)[-1], str(text)


def service_error(code: str, text: str, status: int | None, body: bytes = b"") -> RequestError:
    """The RequestError for an error answer, judged as the boto3 transport judges ClientError."""
    return judged_error(code, text, status, excerpt=repr(body[:200]))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _unexpected(code: str, text: str, status: int) -> BatchResponse:
    return BatchResponse(
        request_error=RequestError(RequestErrorKind.UNEXPECTED, code, text, status)
    )

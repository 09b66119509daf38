"""Messages as the library holds them: validation, payload encoding and message-id generation.

Everything here is pure. A Message is checked once, when it is put, against the rules IoT Events
documents for BatchPutMessage, so that nothing the service would refuse for its shape is ever
stored.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from ordered_sender.errors import InvalidMessage
from ordered_sender.limits import (
    INPUT_NAME_MAX_LENGTH,
    INPUT_NAME_PATTERN,
    MESSAGE_ID_MAX_LENGTH,
    MESSAGE_ID_PATTERN,
)

Payload = bytes | str | dict[str, Any] | list[Any]
"""What put() accepts: bytes as they are, str as UTF-8, dict or list as compact JSON."""


@dataclass(frozen=True, slots=True)
class Message:
    """One message as IoT Events receives it, already validated."""

    input_name: str
    payload: bytes
    message_id: str
    timestamp_ms: int | None = None


def new_message_id() -> str:
    """A fresh message id: 32 hex digits, unique, and valid for IoT Events' messageId pattern."""
    return uuid.uuid4().hex


def encode_payload(payload: object) -> bytes:
    """The bytes sent for a payload; the error never echoes the payload itself."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, dict | list):
        try:
            text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise InvalidMessage(
                "payload",
                f"<{type(payload).__name__}>",
                f"is not JSON-serialisable ({error}); pass bytes, str, or a JSON-compatible "
                "dict or list",
            ) from None
        return text.encode("utf-8")
    raise InvalidMessage(
        "payload",
        f"<{type(payload).__name__}>",
        "must be bytes, str, or a JSON-serialisable dict or list",
    )


def check_input_name(input_name: object) -> str:
    if not isinstance(input_name, str):
        raise InvalidMessage("input_name", input_name, "must be a str")
    if not 1 <= len(input_name) <= INPUT_NAME_MAX_LENGTH:
        raise InvalidMessage(
            "input_name",
            input_name,
            f"must be 1 to {INPUT_NAME_MAX_LENGTH} characters long, not {len(input_name)}",
        )
    if not INPUT_NAME_PATTERN.match(input_name):
        raise InvalidMessage(
            "input_name",
            input_name,
            f"must match {INPUT_NAME_PATTERN.pattern} (a letter or digit, then letters, digits, "
            "'_', '.', '-')",
        )
    return input_name


def check_message_id(message_id: object) -> str:
    if not isinstance(message_id, str):
        raise InvalidMessage("message_id", message_id, "must be a str")
    if not 1 <= len(message_id) <= MESSAGE_ID_MAX_LENGTH:
        raise InvalidMessage(
            "message_id",
            message_id,
            f"must be 1 to {MESSAGE_ID_MAX_LENGTH} characters long, not {len(message_id)}",
        )
    if not MESSAGE_ID_PATTERN.match(message_id):
        raise InvalidMessage(
            "message_id",
            message_id,
            f"must match {MESSAGE_ID_PATTERN.pattern} (letters, digits, '_' and '-')",
        )
    return message_id


def check_timestamp_ms(timestamp_ms: object) -> int:
    # bool is an int to Python but never a sensible timestamp.
    if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool):
        raise InvalidMessage(
            "timestamp_ms", timestamp_ms, "must be an int (milliseconds since the Unix epoch)"
        )
    if timestamp_ms < 1:
        raise InvalidMessage("timestamp_ms", timestamp_ms, "must be >= 1 (Unix epoch ms)")
    return timestamp_ms


def build_message(
    input_name: object,
    payload: object,
    *,
    message_id: object = None,
    timestamp_ms: object = None,
    max_payload_bytes: int,
) -> Message:
    """Validate one put() and return the Message to store, or raise InvalidMessage."""
    name = check_input_name(input_name)
    data = encode_payload(payload)
    if len(data) > max_payload_bytes:
        raise InvalidMessage(
            "payload",
            f"<{len(data)} bytes>",
            f"is larger than the {max_payload_bytes}-byte payload limit of one request",
        )
    identifier = new_message_id() if message_id is None else check_message_id(message_id)
    stamp = None if timestamp_ms is None else check_timestamp_ms(timestamp_ms)
    return Message(input_name=name, payload=data, message_id=identifier, timestamp_ms=stamp)

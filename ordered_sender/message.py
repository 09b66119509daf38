"""Messages as the library holds them: validation, payload encoding and message-id generation.

Everything here is pure. A Message is checked once, when it is put, against the rules IoT Events
documents for BatchPutMessage, so that nothing the service would refuse for its shape is ever
stored.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from ordered_sender.errors import InvalidMessage
from ordered_sender.limits import (
    INPUT_NAME_DOCUMENTED_PATTERN,
    INPUT_NAME_MAX_LENGTH,
    INPUT_NAME_PATTERN,
    MESSAGE_ID_DOCUMENTED_PATTERN,
    MESSAGE_ID_MAX_LENGTH,
    MESSAGE_ID_PATTERN,
    TIMESTAMP_MS_MAX,
    TIMESTAMP_MS_MIN,
)

Payload = bytes | str | dict[str, Any] | list[Any]
"""What put() accepts: bytes as they are, str as UTF-8, dict or list as compact JSON."""

_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""One encoder for every payload: ``json.dumps`` with options builds a new one at each call."""


@dataclass(frozen=True, slots=True)
class Message:
    """One message as IoT Events receives it, already validated."""

    input_name: str
    payload: bytes
    message_id: str
    timestamp_ms: int | None = None


_ID_SOURCE = random.Random(os.urandom(32))
"""Where message ids come from, seeded from the OS; a forked child seeds its own, so no two
processes share a stream. Drawing from it never lets go of the GIL: ``os.urandom`` (and so
``uuid4``) does at every call, and a put that lets go waits to take it back behind every busy
thread of the process (a delivery worker's, say)."""

os.register_at_fork(after_in_child=lambda: _ID_SOURCE.seed(os.urandom(32)))


def new_message_id() -> str:
    """A fresh message id: 32 hex digits, unique, and valid for IoT Events' messageId pattern:
    the milliseconds since the Unix epoch (12 digits), then 80 random bits.

    Ids made one after another sort together, so the outbox's unique index of ids takes each new
    one into the page it took the last one into: a group of puts writes one page of that index
    instead of one page each at random (with 100,000 messages in the outbox, a group of eight
    puts costs a third less CPU and time).
    """
    return f"{time.time_ns() // 1_000_000:012x}{_ID_SOURCE.getrandbits(80):020x}"


def encode_payload(payload: object) -> bytes:
    """The bytes sent for a payload; the error never echoes the payload itself."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return _utf8(payload, payload)
    if isinstance(payload, dict | list):
        try:
            text = _JSON.encode(payload)
        except RecursionError:
            raise InvalidMessage(
                "payload",
                _described(payload),
                "is nested too deeply to encode as JSON; flatten it, or pass the encoded bytes",
            ) from None
        except (TypeError, ValueError) as error:
            raise InvalidMessage(
                "payload",
                _described(payload),
                f"is not JSON-serialisable ({error}); pass bytes, str, or a JSON-compatible "
                "dict or list",
            ) from None
        return _utf8(text, payload)
    raise InvalidMessage(
        "payload",
        _described(payload),
        "must be bytes, str, or a JSON-serialisable dict or list",
    )


def _utf8(text: str, payload: object) -> bytes:
    # A lone surrogate (from "\ud800" in JSON, or a bad decode) is a str Python holds but
    # UTF-8 cannot encode.
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidMessage(
            "payload",
            _described(payload),
            f"holds a lone surrogate (U+{ord(text[error.start]):04X}) that UTF-8 cannot encode; "
            "pass valid Unicode text, or the bytes you mean to send",
        ) from None


def _described(value: object) -> str:
    """A value as an error may show it when it could be a payload: its type and size only.

    Never repr(): a payload must not be echoed, and repr of a deeply nested list raises.
    """
    name = type(value).__name__
    if isinstance(value, str | bytes | bytearray | tuple | list | dict):
        return f"<{name} of length {len(value)}>"
    return f"<{name}>"


def _safe_to_show(value: object) -> object:
    """A wrongly typed name, id or timestamp as its error shows it: scalars as they are,
    anything that might be a payload (or fail to repr) by its type and size."""
    if value is None or isinstance(value, str | float | bool):
        return value
    if isinstance(value, int):
        # repr() of an int past 4300 digits raises ValueError, and such digits help nobody.
        return value if value.bit_length() <= 256 else f"<int of {value.bit_length()} bits>"
    return _described(value)


def check_input_name(input_name: object) -> str:
    if not isinstance(input_name, str):
        raise InvalidMessage("input_name", _safe_to_show(input_name), "must be a str")
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
            f"must match {INPUT_NAME_DOCUMENTED_PATTERN} (a letter or digit, then letters, "
            "digits, '_', '.', '-'; nothing else, not even a trailing newline)",
        )
    return input_name


def check_message_id(message_id: object) -> str:
    if not isinstance(message_id, str):
        raise InvalidMessage("message_id", _safe_to_show(message_id), "must be a str")
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
            f"must match {MESSAGE_ID_DOCUMENTED_PATTERN} (letters, digits, '_' and '-'; nothing "
            "else, not even a trailing newline)",
        )
    return message_id


def check_timestamp_ms(timestamp_ms: object) -> int:
    # bool is an int to Python but never a sensible timestamp.
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int):
        raise InvalidMessage(
            "timestamp_ms",
            _safe_to_show(timestamp_ms),
            "must be an int (milliseconds since the Unix epoch)",
        )
    if timestamp_ms < TIMESTAMP_MS_MIN:
        raise InvalidMessage(
            "timestamp_ms",
            _safe_to_show(timestamp_ms),
            f"must be >= {TIMESTAMP_MS_MIN} (milliseconds since the Unix epoch)",
        )
    if timestamp_ms > TIMESTAMP_MS_MAX:
        raise InvalidMessage(
            "timestamp_ms",
            _safe_to_show(timestamp_ms),
            f"must be <= {TIMESTAMP_MS_MAX}: IoT Events' timeInMillis is a 64-bit long of "
            "milliseconds since the Unix epoch",
        )
    return timestamp_ms


def unpack_put_item(item: object) -> tuple[object, object, object, object]:
    """``(input_name, payload, message_id, timestamp_ms)`` of one put_many item, None for
    the ones left out; InvalidMessage (field "item") for anything but a tuple or list of 2 to 4.

    A str, bytes or dict item is refused although Python can index it: ``"ab"`` would otherwise
    become input "a" with payload "b".
    """
    shape = "(input_name, payload[, message_id[, timestamp_ms]])"
    if not isinstance(item, tuple | list):
        raise InvalidMessage(
            "item",
            _described(item),
            f"a put_many item must be a tuple {shape}; for one payload, pass "
            '[("InputName", payload)]',
        )
    if not 2 <= len(item) <= 4:
        raise InvalidMessage(
            "item",
            _described(item),
            f"a put_many item holds 2 to 4 values {shape}, not {len(item)}",
        )
    padded = (*item, None, None)
    return padded[0], padded[1], padded[2], padded[3]


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

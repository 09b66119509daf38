"""JSON-lines input of ``ordered-sender send``: one message a line, all checked before any put.

A file is read and every line validated (JSON shape, then the same rules ``put`` applies, lane
included) before the first message is stored, so a bad line is reported with its file, line
number, field and value while nothing of that file reaches the outbox. No I/O beyond reading the
stream it is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ordered_sender.errors import InvalidMessage
from ordered_sender.message import Message, build_message

ENVELOPE_FIELDS = ("inputName", "payload", "messageId", "timestamp")
"""Keys of a line that wraps its payload; ``inputName`` and ``payload`` are required."""

SMALLEST_MILLISECONDS = 100_000_000_000
"""Timestamps below this (1973-03-03 in milliseconds; the year 5138 in seconds) are refused: a
timestamp in seconds since the epoch would be taken as a moment in January 1970."""

LINE_FIELD_NAMES = {
    "input_name": "inputName",
    "message_id": "messageId",
    "timestamp_ms": "timestamp",
}
"""Errors name a field as the line spells it, not as the library does."""


@dataclass(frozen=True, slots=True)
class Line:
    """One validated line, ready for ``put``."""

    number: int
    """1-based line number in its file."""
    message: Message
    """As ``put`` would store it; a line without ``messageId`` already has its generated id."""


class BadLine(ValueError):
    """A line that cannot be put: names the file, the line, the field and its value."""

    def __init__(self, source: str, number: int, reason: InvalidMessage) -> None:
        self.source = source
        self.number = number
        self.reason = reason
        super().__init__(f"{source}:{number}: {reason}")


def decoded_lines(source: str, raw_lines: Iterable[bytes]) -> Iterator[str]:
    """Each line of ``source`` decoded as UTF-8, or ``BadLine`` naming the line and the byte
    that is not UTF-8 (a file saved as Latin-1, say) instead of a ``UnicodeDecodeError``."""
    for number, raw in enumerate(raw_lines, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            bad_byte = raw[error.start]
            raise BadLine(
                source,
                number,
                InvalidMessage(
                    "line",
                    raw.decode("utf-8", errors="backslashreplace").strip(),
                    f"is not UTF-8 (byte 0x{bad_byte:02x} at column {error.start + 1}); "
                    "save the file as UTF-8",
                ),
            ) from None


def read_lines(
    source: str,
    lines: Iterable[str],
    *,
    input_name: str | None,
    check: Callable[[Message], object],
    max_payload_bytes: int,
) -> list[Line]:
    """Every non-blank line of ``source`` as a ``Line``, or ``BadLine`` for the first bad one.

    Without ``input_name`` each line is an envelope ``{"inputName", "payload", "messageId"?,
    "timestamp"?}``; with it, each line is the bare payload object sent to that input.
    ``check`` runs on each built message (the lane function), so a missing lane key is refused
    here too.
    """
    parsed: list[Line] = []
    line_of_id: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            fields = _fields(text, input_name)
            message = build_message(
                fields.get("inputName"),
                fields.get("payload"),
                message_id=fields.get("messageId"),
                timestamp_ms=fields.get("timestamp"),
                max_payload_bytes=max_payload_bytes,
            )
            check(message)
            if message.message_id in line_of_id:
                # The outbox would refuse the whole file for it, without naming the line.
                raise InvalidMessage(
                    "messageId",
                    message.message_id,
                    f"is already used on line {line_of_id[message.message_id]}; "
                    "message ids must be unique",
                )
        except InvalidMessage as error:
            named = InvalidMessage(
                LINE_FIELD_NAMES.get(error.field, error.field), error.value, error.problem
            )
            raise BadLine(source, number, named) from None
        line_of_id[message.message_id] = number
        parsed.append(Line(number, message))
    return parsed


def _fields(text: str, input_name: str | None) -> dict[str, object]:
    """The envelope fields of one line (InvalidMessage naming the field when the shape is
    wrong)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidMessage("line", text.strip(), f"is not JSON ({error.msg})") from None
    except RecursionError:
        raise InvalidMessage(
            "line", f"<{len(text)} characters>", "is nested too deeply to read as JSON; flatten it"
        ) from None
    if not isinstance(document, dict):
        raise InvalidMessage("line", document, "must be a JSON object")
    if input_name is not None:
        return {"inputName": input_name, "payload": document}
    unknown = sorted(set(document) - set(ENVELOPE_FIELDS))
    if unknown:
        raise InvalidMessage(
            unknown[0],
            document[unknown[0]],
            f"is not a message field (fields: {', '.join(ENVELOPE_FIELDS)}); "
            "for lines that are bare payloads pass --input-name",
        )
    for required in ("inputName", "payload"):
        if required not in document:
            raise InvalidMessage(
                required,
                "<missing>",
                "is required (or pass --input-name when every line is a bare payload)",
            )
    payload = document["payload"]
    if not isinstance(payload, dict):
        raise InvalidMessage(
            "payload",
            payload,
            "must be a JSON object: IoT Events inputs read the attributes of an object",
        )
    timestamp = document.get("timestamp")
    # The service's own {"timeInMillis": n} shape is accepted besides plain milliseconds.
    if isinstance(timestamp, dict) and set(timestamp) == {"timeInMillis"}:
        timestamp = document["timestamp"] = timestamp["timeInMillis"]
    if (
        isinstance(timestamp, int)
        and not isinstance(timestamp, bool)
        and 0 < timestamp < SMALLEST_MILLISECONDS
    ):
        raise InvalidMessage(
            "timestamp",
            timestamp,
            "is too small for milliseconds since the Unix epoch (before 1973): it looks like "
            f"seconds; give milliseconds ({timestamp * 1000})",
        )
    return document

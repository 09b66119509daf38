"""Validate request documents against the botocore service models, the way AWS's front end does.

The shapes (required members, lengths, patterns, enums, ranges) come from the installed service
models of ``iotevents`` and ``iotevents-data``, so the emulator refuses exactly what the service
model says AWS refuses, with AWS's wording: ``1 validation error detected: Value 'x' at
'messages.1.member.messageId' failed to satisfy constraint: ...``. Limits that are documented but
not in the model (ten messages per BatchPutMessage, 1 KiB of payload) are checked by the handlers.

Any module of the emulator may use ``validate_input(service, operation, document)``. Nothing here
does I/O beyond botocore reading its bundled model files once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any

import botocore.session

from ordered_sender.emulator.wire import ApiError

_SHOWN_VALUE_LENGTH = 200
"""Long values are cut in messages so an error never echoes a whole payload."""


@functools.cache
def service_model(service: str) -> Any:
    """The botocore ``ServiceModel`` of ``service`` (``"iotevents"`` or ``"iotevents-data"``)."""
    return botocore.session.get_session().get_service_model(service)


def input_shape(service: str, operation: str) -> Any:
    return service_model(service).operation_model(operation).input_shape


def validate_input(service: str, operation: str, document: dict[str, Any]) -> None:
    """Raise ``ApiError`` (InvalidRequestException) listing every violation in ``document``."""
    problems = violations(input_shape(service, operation), document, "")
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ApiError.invalid_request(
            f"{count} validation {noun} detected: " + "; ".join(problems)
        )


def violations(shape: Any, value: Any, where: str) -> list[str]:
    """Every constraint of ``shape`` that ``value`` breaks; ``where`` is its dotted path."""
    check = _CHECKS.get(shape.type_name, _no_check)
    return check(shape, value, where)


def _show(value: Any) -> str:
    text = str(value)
    if len(text) > _SHOWN_VALUE_LENGTH:
        text = text[:_SHOWN_VALUE_LENGTH] + "..."
    return f"Value '{text}'"


def _failed(value: Any, where: str, constraint: str) -> str:
    return f"{_show(value)} at '{where or 'request'}' failed to satisfy constraint: {constraint}"


def _type_error(value: Any, where: str, expected: str) -> list[str]:
    return [_failed(value, where, f"Member must be {expected}, got {type(value).__name__}")]


def _check_structure(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return _type_error(value, where, "an object")
    problems: list[str] = []
    for name in shape.required_members:
        if value.get(name) is None:
            problems.append(_failed("null", _join(where, name), "Member must not be null"))
    for name, member in shape.members.items():
        if value.get(name) is not None:
            problems.extend(violations(member, value[name], _join(where, name)))
    return problems


def _check_list(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, list):
        return _type_error(value, where, "a list")
    problems = _length_problems(shape, value, len(value), where)
    for index, item in enumerate(value, start=1):
        problems.extend(violations(shape.member, item, f"{where}.{index}.member"))
    return problems


def _check_map(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return _type_error(value, where, "an object")
    problems = _length_problems(shape, value, len(value), where)
    for key, item in value.items():
        problems.extend(violations(shape.key, key, where))
        problems.extend(violations(shape.value, item, f"{where}.{key}"))
    return problems


def _check_string(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, str):
        return _type_error(value, where, "a string")
    problems = _length_problems(shape, value, len(value), where)
    pattern = shape.metadata.get("pattern")
    # The whole value must match: with search(), "^...$" would accept a trailing newline.
    if pattern is not None and not _compiled(pattern).fullmatch(value):
        problems.append(
            _failed(value, where, f"Member must satisfy regular expression pattern: {pattern}")
        )
    allowed = shape.metadata.get("enum")
    if allowed and value not in allowed:
        problems.append(_failed(value, where, f"Member must satisfy enum value set: {allowed}"))
    return problems


def _check_integer(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, int) or isinstance(value, bool):
        return _type_error(value, where, "an integer")
    return _range_problems(shape, value, where)


def _check_number(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _type_error(value, where, "a number")
    return _range_problems(shape, value, where)


def _check_boolean(shape: Any, value: Any, where: str) -> list[str]:
    return [] if isinstance(value, bool) else _type_error(value, where, "a boolean")


def _check_blob(shape: Any, value: Any, where: str) -> list[str]:
    """Blobs travel base64-encoded inside the JSON document."""
    if not isinstance(value, str):
        return _type_error(value, where, "a base64 string")
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        return [_failed(value, where, "Member must be base64-encoded")]
    return []


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """AWS writes Java regular expressions, where ``[\\w- ]`` is a literal hyphen after a class
    escape; Python reads it as a bad range, so that hyphen is escaped first.
    """
    return re.compile(_CLASS_ESCAPE_THEN_HYPHEN.sub(r"\1\\-", pattern))


_CLASS_ESCAPE_THEN_HYPHEN = re.compile(r"(\\[wdsWDS])-")


def _no_check(shape: Any, value: Any, where: str) -> list[str]:
    return []


def _length_problems(shape: Any, value: Any, length: int, where: str) -> list[str]:
    problems = []
    minimum = shape.metadata.get("min")
    maximum = shape.metadata.get("max")
    shown = f"length {length}" if isinstance(value, list | dict) else value
    if minimum is not None and length < minimum:
        problems.append(
            _failed(shown, where, f"Member must have length greater than or equal to {minimum}")
        )
    if maximum is not None and length > maximum:
        problems.append(
            _failed(shown, where, f"Member must have length less than or equal to {maximum}")
        )
    return problems


def _range_problems(shape: Any, value: float, where: str) -> list[str]:
    problems = []
    minimum = shape.metadata.get("min")
    maximum = shape.metadata.get("max")
    if minimum is not None and value < minimum:
        problems.append(_failed(value, where, f"Member must be greater than or equal to {minimum}"))
    if maximum is not None and value > maximum:
        problems.append(_failed(value, where, f"Member must be less than or equal to {maximum}"))
    return problems


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


_CHECKS = {
    "structure": _check_structure,
    "list": _check_list,
    "map": _check_map,
    "string": _check_string,
    "integer": _check_integer,
    "long": _check_integer,
    "float": _check_number,
    "double": _check_number,
    "boolean": _check_boolean,
    "blob": _check_blob,
    "timestamp": _check_number,
}

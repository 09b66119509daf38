"""Lane functions: which messages must keep their order relative to each other.

A lane is the unit of ordering. The lane function runs once, when a message is put, and the lane it
returns is stored with the message, so changing the configuration later never reorders what is
already queued. Lane functions are pure and must not do I/O.

- ``ByInput()`` (default): one lane per inputName. Always safe.
- ``ByInputAndKey("motorid")``: one lane per inputName and payload attribute value. More lanes move
  in parallel; safe when every detector model on that input is keyed by that attribute.
- ``ByInputGroup({"hvac": ("TemperatureInput", "DoorInput")})``: the inputs of a group share one
  lane, for a detector fed by several inputs; optionally split further by a key attribute.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ordered_sender.errors import InvalidConfig, InvalidMessage
from ordered_sender.limits import INPUT_NAME_PATTERN
from ordered_sender.message import Message


class LaneFunction(Protocol):
    """Maps a validated message to the name of its lane."""

    def __call__(self, message: Message) -> str: ...


@dataclass(frozen=True, slots=True)
class ByInput:
    """One lane per inputName: the lane is the input's name."""

    def __call__(self, message: Message) -> str:
        return message.input_name


@dataclass(frozen=True, slots=True)
class ByInputAndKey:
    """One lane per inputName and value of a payload attribute (a dotted path, e.g. ``motor.id``).

    The payload must be a JSON object holding a string or integer at that path, as IoT Events needs
    for a keyed detector model; otherwise put() refuses the message.
    """

    key: str

    def __post_init__(self) -> None:
        _check_key_path(self.key)

    def __call__(self, message: Message) -> str:
        return f"{message.input_name}/{key_value(message, self.key)}"


@dataclass(frozen=True, slots=True)
class ByInputGroup:
    """Inputs of one group share a lane named after the group; other inputs get their own lane.

    ``groups`` maps a group name to the input names that feed one detector model. With ``key``,
    each group (and each other input) is split further by that payload attribute.
    """

    groups: Mapping[str, tuple[str, ...]]
    key: str | None = None
    _group_of_input: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        group_of_input: dict[str, str] = {}
        for group, inputs in self.groups.items():
            if not isinstance(group, str) or not group:
                raise InvalidConfig("lane.groups", group, "group names must be non-empty strings")
            if isinstance(inputs, str) or not inputs:
                raise InvalidConfig(
                    f"lane.groups[{group!r}]", inputs, "must be a non-empty tuple of input names"
                )
            for input_name in inputs:
                if not isinstance(input_name, str) or not INPUT_NAME_PATTERN.match(input_name):
                    raise InvalidConfig(
                        f"lane.groups[{group!r}]", input_name, "is not a valid input name"
                    )
                if input_name in group_of_input:
                    raise InvalidConfig(
                        f"lane.groups[{group!r}]",
                        input_name,
                        f"is already in group {group_of_input[input_name]!r}; "
                        "an input belongs to one group at most",
                    )
                group_of_input[input_name] = group
        if self.key is not None:
            _check_key_path(self.key)
        object.__setattr__(self, "_group_of_input", group_of_input)

    def __call__(self, message: Message) -> str:
        lane = self._group_of_input.get(message.input_name, message.input_name)
        if self.key is None:
            return lane
        return f"{lane}/{key_value(message, self.key)}"


def key_value(message: Message, path: str) -> str:
    """The key attribute of a JSON payload as text, or InvalidMessage naming the path."""
    field_name = f"payload.{path}"
    try:
        node: object = json.loads(message.payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidMessage(
            field_name, "<not JSON>", "a keyed lane needs a JSON object payload"
        ) from None
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise InvalidMessage(field_name, "<missing>", "a keyed lane needs this attribute")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, str | int):
        raise InvalidMessage(field_name, node, "a lane key must be a string or an integer")
    return str(node)


def _check_key_path(path: object) -> None:
    if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
        raise InvalidConfig("lane.key", path, "must be a dotted attribute path such as 'motorid'")

"""What an expression can see when it is evaluated: the message, the variables and the timers.

A context is a plain frozen value built by the detector runtime for one evaluation; this module
only validates it and must not read clocks, stores or anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

VariableValue = bool | int | float | str
"""What ``setVariable`` can store: IoT Events variables hold Boolean, Integer, Decimal or String."""

Value = bool | int | float | str | None | dict[str, Any] | list[Any]
"""What an expression evaluates to; ``None``, dicts and lists only come from JSON payloads."""


class TriggerType(StrEnum):
    """Why the detector is evaluating: the names are those of ``triggerType("...")``."""

    MESSAGE = "Message"
    TIMER = "Timer"


_TRIGGER_TYPES = frozenset(TriggerType)


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """Everything one evaluation of an expression may read."""

    variables: Mapping[str, VariableValue] = field(default_factory=dict)
    """Current detector variables by name; a name missing here is undefined (never set)."""
    input_name: str | None = None
    """Input of the message being evaluated, or ``None`` when a timer expiry triggered this."""
    payload: Any = None
    """Decoded JSON payload of that message; ``$input.<input_name>...`` reads it."""
    trigger_type: TriggerType | str = TriggerType.MESSAGE
    """``"Message"`` or ``"Timer"``: what ``triggerType(...)`` and ``currentInput(...)`` see."""
    expired_timers: frozenset[str] = frozenset()
    """Timers that expired and were not checked since: ``timeout(name)`` is true for them.

    IoT Events makes ``timeout()`` true only the first time it is checked after expiry; the
    runtime keeps that bookkeeping and passes the names here."""
    checked_timers: set[str] = field(default_factory=set)
    """Where ``timeout(name)`` writes the name of each timer it actually checked.

    Only a ``timeout()`` that is evaluated counts as a check: one that ``&&`` or ``||``
    short-circuits past is not, so ``triggerType("MESSAGE") && timeout("t")`` (the form AWS's
    analyser recommends) leaves the expiry for the next message. The one mutable member: the
    runtime hands in a set it owns and reads it after the evaluation."""
    previous_payloads: Mapping[str, Any] = field(default_factory=dict)
    """Last payload this detector received on each other input, by input name.

    IoT Events lets a condition read an input attribute when a timer expired, i.e. without a
    message of that input in hand; references to an input other than ``input_name`` read here.
    Leave it empty to make such references undefined."""

    def __post_init__(self) -> None:
        if self.trigger_type not in _TRIGGER_TYPES:
            raise ValueError(
                f"trigger_type must be one of {sorted(_TRIGGER_TYPES)}, got {self.trigger_type!r}"
            )

    def input_payload(self, input_name: str) -> tuple[bool, Any]:
        """The payload an ``$input.<input_name>`` reference reads, and whether there is one."""
        if input_name == self.input_name:
            return True, self.payload
        if input_name in self.previous_payloads:
            return True, self.previous_payloads[input_name]
        return False, None

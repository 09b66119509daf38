"""The values of the detector runtime: models ready to run, triggers, detectors, actions.

All are frozen; ``runtime`` computes new ones from old ones. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ordered_sender.emulator.detectors.models import CompiledDefinition, EvaluationMethod
from ordered_sender.emulator.expressions.context import TriggerType, VariableValue


@dataclass(frozen=True, slots=True)
class RunnableModel:
    """What evaluation needs of one detector model version."""

    name: str
    version: str
    definition: CompiledDefinition
    evaluation_method: EvaluationMethod


@dataclass(frozen=True, slots=True)
class Timer:
    name: str
    expires_at: float
    """Seconds since the epoch on the runtime's clock."""
    duration_seconds: int
    """The last evaluated duration, which ``resetTimer`` reuses."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """Why a detector is evaluated now."""

    trigger_type: TriggerType
    time: float
    input_name: str | None = None
    message_id: str | None = None
    payload: Any = None
    """The decoded JSON payload of the message."""
    timer_name: str | None = None


@dataclass(frozen=True, slots=True)
class Detector:
    """One detector instance; each evaluation returns a new value."""

    model_name: str
    model_version: str
    key_value: str | None
    state_name: str
    variables: Mapping[str, VariableValue]
    timers: Mapping[str, Timer]
    expired_timers: frozenset[str]
    """Timers that expired and whose ``timeout()`` has not been checked yet."""
    last_payloads: Mapping[str, Any]
    """Last payload per input, which ``$input`` references to other inputs read."""
    creation_time: float
    last_update_time: float

    @classmethod
    def initial(cls, model: RunnableModel, key_value: str | None, now: float) -> Detector:
        """A detector just created: the initial state, no variables, no timers, no events run."""
        return cls(
            model_name=model.name,
            model_version=model.version,
            key_value=key_value,
            state_name=model.definition.initial_state_name,
            variables={},
            timers={},
            expired_timers=frozenset(),
            last_payloads={},
            creation_time=now,
            last_update_time=now,
        )

    def next_expiry(self) -> Timer | None:
        """The timer that expires first (ties broken by name), if any."""
        return min(self.timers.values(), key=lambda t: (t.expires_at, t.name), default=None)


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """An action aimed at another service, with its evaluated payload; never performed."""

    model_name: str
    model_version: str
    key_value: str | None
    state_name: str
    event_name: str
    action_type: str
    parameters: Mapping[str, Any]
    payload: str
    """The evaluated ``contentExpression``, or the default JSON payload of IoT Events."""
    time: float
    trigger_type: TriggerType
    input_name: str | None
    message_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "detectorModelName": self.model_name,
            "detectorModelVersion": self.model_version,
            "keyValue": self.key_value,
            "stateName": self.state_name,
            "eventName": self.event_name,
            "actionType": self.action_type,
            "action": dict(self.parameters),
            "payload": self.payload,
            "time": self.time,
            "triggerType": str(self.trigger_type),
            "inputName": self.input_name,
            "messageId": self.message_id,
        }


def variable_text(value: VariableValue) -> str:
    """A variable as DescribeDetector shows it: JSON text, so strings keep their quotes."""
    return json.dumps(value)


def variable_value(text: str) -> VariableValue:
    """A variable from its text in BatchUpdateDetector: JSON when it is a JSON scalar, else text.

    The inverse of ``variable_text``; a bare word such as ``on`` is the string ``"on"``.
    """
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, bool | int | float | str) else text

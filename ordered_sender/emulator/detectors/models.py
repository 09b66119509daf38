"""Detector models as checked, immutable objects: what CreateDetectorModel accepts and why not.

``compile_definition`` turns a request's ``detectorModelDefinition`` (already checked against the
service model's shapes) into ``State`` objects whose expressions are parsed, and refuses what the
service refuses beyond the shapes: an expression that does not parse, a duplicate or unknown state
(``initialStateName``, a transition's ``nextState``), an action object with no action or more
than one, a ``setTimer`` without a duration, and a reference to an input that does not exist.
Every refusal names where it is: state, lifecycle, event, field. The errors of AWS's detector
model analysis that block publishing are checked on the compiled definition by ``analysis``.

This module only describes models; running them is ``runtime``'s job. No I/O.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ordered_sender.emulator.expressions import Expression, ExpressionSyntaxError, parse


class EvaluationMethod(enum.Enum):
    """When a variable set by one event becomes visible to the conditions of the others."""

    BATCH = "BATCH"
    """Conditions of one group see the variables as they were when the group started."""
    SERIAL = "SERIAL"
    """Events run in definition order; each update is visible to the next condition."""


class DetectorModelError(ValueError):
    """A detector model the service refuses with InvalidRequestException; names the place."""

    def __init__(self, location: str, problem: str, names: str = "") -> None:
        where = f"{location} ({names})" if names else location
        super().__init__(f"{where}: {problem}")
        self.location = location
        """The member's path, e.g. ``detectorModelDefinition.states[1].onInput.events[0]``."""
        self.names = names
        """The same place by name, e.g. ``state 'Dangerous', event 'Pressure Okay'``."""
        self.problem = problem


@dataclass(frozen=True, slots=True)
class SetVariable:
    variable_name: str
    value: Expression


@dataclass(frozen=True, slots=True)
class SetTimer:
    timer_name: str
    seconds: int | None
    """A fixed duration; exactly one of ``seconds`` and ``duration`` is set."""
    duration: Expression | None


@dataclass(frozen=True, slots=True)
class ResetTimer:
    timer_name: str


@dataclass(frozen=True, slots=True)
class ClearTimer:
    timer_name: str


@dataclass(frozen=True, slots=True)
class ExternalAction:
    """An action aimed at another service (sns, lambda, sqs, ...): recorded, never performed."""

    action_type: str
    """The member name of the action object, e.g. ``"sns"`` or ``"iotTopicPublish"``."""
    parameters: Mapping[str, Any]
    """The action object's fields as the model gave them (target ARN, topic, queue URL...)."""
    content: Expression | None
    """The parsed ``payload.contentExpression``; ``None`` means the default JSON payload."""
    payload_type: str | None
    """``"STRING"`` or ``"JSON"`` when a payload is configured."""
    templates: Mapping[str, Expression]
    """Fields evaluated when the action runs, by name: ``iotTopicPublish.mqttTopic`` is text
    that may hold ``${...}`` substitutions of variables and input values."""


Action = SetVariable | SetTimer | ResetTimer | ClearTimer | ExternalAction


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    condition: Expression | None
    """``None`` when the model gives none: the documented meaning is ``true``."""
    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class TransitionEvent:
    name: str
    condition: Expression
    actions: tuple[Action, ...]
    next_state: str


@dataclass(frozen=True, slots=True)
class State:
    name: str
    on_enter: tuple[Event, ...]
    on_input: tuple[Event, ...]
    transitions: tuple[TransitionEvent, ...]
    on_exit: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class CompiledDefinition:
    """A definition ready to run: states by name and the inputs its expressions read."""

    states: Mapping[str, State]
    initial_state_name: str
    input_names: frozenset[str]
    """Inputs the model's expressions reference with ``$input.<name>`` or
    ``currentInput("<name>")``; their messages are routed to the model."""


def compile_definition(
    definition: Mapping[str, Any], input_exists: Callable[[str], bool]
) -> CompiledDefinition:
    """Parse every expression and check the references of a shape-valid definition."""
    compiler = _Compiler()
    states: dict[str, State] = {}
    for index, document in enumerate(definition["states"]):
        state = compiler.state(document, f"detectorModelDefinition.states[{index}]")
        if state.name in states:
            raise DetectorModelError(
                f"detectorModelDefinition.states[{index}].stateName",
                f"state name {state.name!r} is used by more than one state; names must be unique",
            )
        states[state.name] = state
    initial_state_name = definition["initialStateName"]
    if initial_state_name not in states:
        raise DetectorModelError(
            "detectorModelDefinition.initialStateName",
            f"no state is named {initial_state_name!r}; states are {sorted(states)}",
        )
    for location, names, next_state in compiler.next_states:
        if next_state not in states:
            raise DetectorModelError(
                location, f"no state is named {next_state!r}; states are {sorted(states)}", names
            )
    for location, names, input_name in compiler.input_references:
        if not input_exists(input_name):
            raise DetectorModelError(
                location,
                f"input {input_name!r} does not exist; create it with CreateInput first",
                names,
            )
    return CompiledDefinition(
        states=states,
        initial_state_name=initial_state_name,
        input_names=frozenset(name for _, _, name in compiler.input_references),
    )


class _Compiler:
    """Walks one definition, remembering references that can only be checked at the end."""

    def __init__(self) -> None:
        self.next_states: list[tuple[str, str, str]] = []
        """(location, names, state name) of every transition's ``nextState``."""
        self.input_references: list[tuple[str, str, str]] = []
        """(location, names, input name) of every ``$input`` reference."""
        self.state_name = ""
        self.event_name = ""

    @property
    def names(self) -> str:
        """Where the walk is, by name, for error messages."""
        return f"state {self.state_name!r}, event {self.event_name!r}"

    def state(self, document: Mapping[str, Any], location: str) -> State:
        self.state_name = document["stateName"]
        on_input = document.get("onInput") or {}
        return State(
            name=document["stateName"],
            on_enter=self.events(document.get("onEnter") or {}, f"{location}.onEnter"),
            on_input=self.events(on_input, f"{location}.onInput"),
            transitions=tuple(
                self.transition(event, f"{location}.onInput.transitionEvents[{index}]")
                for index, event in enumerate(on_input.get("transitionEvents") or ())
            ),
            on_exit=self.events(document.get("onExit") or {}, f"{location}.onExit"),
        )

    def events(self, lifecycle: Mapping[str, Any], location: str) -> tuple[Event, ...]:
        return tuple(
            self.event(event, f"{location}.events[{index}]")
            for index, event in enumerate(lifecycle.get("events") or ())
        )

    def event(self, document: Mapping[str, Any], location: str) -> Event:
        self.event_name = document["eventName"]
        condition = document.get("condition")
        return Event(
            name=document["eventName"],
            condition=None
            if condition is None
            else self.expression(condition, f"{location}.condition"),
            actions=self.actions(document.get("actions") or (), location),
        )

    def transition(self, document: Mapping[str, Any], location: str) -> TransitionEvent:
        self.event_name = document["eventName"]
        self.next_states.append((f"{location}.nextState", self.names, document["nextState"]))
        return TransitionEvent(
            name=document["eventName"],
            condition=self.expression(document["condition"], f"{location}.condition"),
            actions=self.actions(document.get("actions") or (), location),
            next_state=document["nextState"],
        )

    def actions(self, documents: Iterable[Mapping[str, Any]], location: str) -> tuple[Action, ...]:
        return tuple(
            self.action(document, f"{location}.actions[{index}]")
            for index, document in enumerate(documents)
        )

    def action(self, document: Mapping[str, Any], location: str) -> Action:
        present = [name for name, value in document.items() if value is not None]
        if len(present) != 1:
            raise DetectorModelError(
                location,
                f"an action object holds exactly one action, this one holds {present or 'none'};"
                " put each action in its own object of the actions list",
                self.names,
            )
        action_type = present[0]
        body: Mapping[str, Any] = document[action_type]
        where = f"{location}.{action_type}"
        if action_type == "setVariable":
            return SetVariable(
                body["variableName"], self.expression(body["value"], f"{where}.value")
            )
        if action_type == "setTimer":
            return self.set_timer(body, where)
        if action_type == "resetTimer":
            return ResetTimer(body["timerName"])
        if action_type == "clearTimer":
            return ClearTimer(body["timerName"])
        payload = body.get("payload")
        content = None
        if payload is not None:
            content = self.content(payload, f"{where}.payload")
        templates = {}
        if action_type == "iotTopicPublish":
            templates["mqttTopic"] = self.template(body["mqttTopic"], f"{where}.mqttTopic")
        return ExternalAction(
            action_type=action_type,
            parameters=dict(body),
            content=content,
            payload_type=None if payload is None else payload["type"],
            templates=templates,
        )

    def content(self, payload: Mapping[str, Any], location: str) -> Expression:
        return self.expression(payload["contentExpression"], f"{location}.contentExpression")

    def template(self, text: str, location: str) -> Expression:
        """Text with ``${...}`` substitutions, parsed as the single-quoted template it is."""
        escaped = text.replace("\\", "\\\\").replace("'", "\\'")
        return self.expression(f"'{escaped}'", location)

    def set_timer(self, body: Mapping[str, Any], location: str) -> SetTimer:
        seconds = body.get("seconds")
        duration_text = body.get("durationExpression")
        if (seconds is None) == (duration_text is None):
            raise DetectorModelError(
                location,
                "give exactly one of seconds and durationExpression for the timer",
                self.names,
            )
        return SetTimer(
            timer_name=body["timerName"],
            seconds=seconds,
            duration=None
            if duration_text is None
            else self.expression(duration_text, f"{location}.durationExpression"),
        )

    def expression(self, text: str, location: str) -> Expression:
        try:
            expression = parse(text)
        except ExpressionSyntaxError as error:
            raise DetectorModelError(
                location, f"expression {text!r} does not parse: {error}", self.names
            ) from error
        self.input_references.extend(
            (location, self.names, name)
            for name in expression.input_references() | expression.current_input_references()
        )
        return expression


_KEY_SEGMENT = re.compile(r"`([^`]*)`|([^.`]+)")


def key_path(key: str) -> tuple[str, ...]:
    """The attribute names of a detector model ``key``, e.g. ``a.`b c``` -> ``("a", "b c")``."""
    return tuple(quoted or plain for quoted, plain in _KEY_SEGMENT.findall(key))


@dataclass(frozen=True, slots=True)
class DetectorModelVersion:
    """One version of a detector model as the control plane stores and describes it."""

    name: str
    version: str
    """"1" at creation; every UpdateDetectorModel adds one."""
    arn: str
    definition: Mapping[str, Any]
    """The ``detectorModelDefinition`` exactly as the request gave it, for DescribeDetectorModel."""
    compiled: CompiledDefinition
    description: str | None
    role_arn: str
    key: str | None
    evaluation_method: EvaluationMethod
    creation_time: float
    last_update_time: float

    def configuration(self, status: str = "ACTIVE") -> dict[str, Any]:
        """The ``detectorModelConfiguration`` member of the API's responses.

        Create and Update answer ``ACTIVATING``, as the developer guide's CreateDetectorModel
        responses show ("Example: HVAC temperature control", "Use detector model commands");
        a model runs the moment it is stored, so Describe and List show ``ACTIVE``.
        """
        configuration: dict[str, Any] = {
            "detectorModelName": self.name,
            "detectorModelVersion": self.version,
            "detectorModelArn": self.arn,
            "roleArn": self.role_arn,
            "creationTime": self.creation_time,
            "lastUpdateTime": self.last_update_time,
            "status": status,
            "evaluationMethod": self.evaluation_method.value,
        }
        if self.description is not None:
            configuration["detectorModelDescription"] = self.description
        if self.key is not None:
            configuration["key"] = self.key
        return configuration


def key_value_of(document: Any, key: str) -> str | None:
    """The key's value as text (numbers too, as IoT Events routes them), ``None`` if absent."""
    value = document
    for name in key_path(key):
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    return value if isinstance(value, str) else json.dumps(value)


def declared_view(document: Any, json_paths: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """What detectors see of a payload: only the attributes its input declares.

    API reference, Attribute: "The attributes from the JSON payload that are made available by
    the input ... Those attributes (and their paired values) specified here are available for
    use in the condition expressions used by detectors." Each declared ``jsonPath`` present in
    ``document`` is copied with its whole value (an object stays whole) at the same place; the
    rest of the payload is not there. Returns the view and the declared paths that were absent.
    """
    view: dict[str, Any] = {}
    missing: list[str] = []
    for json_path in json_paths:
        names = key_path(json_path)
        value = document
        for name in names:
            if not isinstance(value, dict) or name not in value:
                missing.append(json_path)
                break
            value = value[name]
        else:
            target = view
            for name in names[:-1]:
                target = target.setdefault(name, {})
            target[names[-1]] = value
    return view, missing

"""The errors of AWS's detector model analysis that block publishing a model.

Developer guide, "Detector model analysis and diagnostic information": "An error result
notifies you about a problem found in your detector model. AWS IoT Events automatically
performs this set of analyses when you try to publish the detector model. You must fix all
errors before you can publish the detector model." So CreateDetectorModel and
UpdateDetectorModel refuse a model with any of these errors (InvalidRequestException), naming
the place as the analysis does (state, lifecycle, event, action, field). Checked here, on a
compiled definition (structure and syntax were checked by ``models``):

- ``structure``: "Detector Model Definition must use at least one Input in a condition"
  (``$input.<name>`` or ``currentInput("<name>")`` in some condition);
- ``service-limits``: more than 20 states; more than 20 events in a state (counted over its
  ``onEnter``, ``onInput`` and ``onExit`` events: the guide says "events per state"); more than
  20 transition events in a state; more than 10 actions in an event; a content expression over
  1024 bytes; a timer shorter than 60 seconds ("The duration for timer ... should be at least 60
  seconds long"), when the duration is a number written in the model;
- ``referenced-data``: "Detected broken Timer: timer ... is used in an expression but is never
  set" and "Detected broken Variable: variable ... is used in an expression but is never set";
- ``expression-syntax`` and ``data-type``: a JSON payload whose content expression cannot
  evaluate to a string ("The evaluated result can't be a Boolean or number"), judged from its
  form (``Expression.is_never_a_string``).

The analysis's warnings are not refusals. One is computed here for the registry to log
(``undeclared_attributes``): a ``$input`` reference to an attribute the input does not declare,
which reads nothing (API reference, Attribute: only the declared attributes "are available for
use in the condition expressions used by detectors"). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ordered_sender.emulator.detectors.models import (
    Action,
    CompiledDefinition,
    DetectorModelError,
    Event,
    ExternalAction,
    SetTimer,
    SetVariable,
    State,
    TransitionEvent,
    key_path,
)
from ordered_sender.emulator.expressions import Expression
from ordered_sender.emulator.expressions.nodes import Literal

MAX_STATES = 20
MAX_EVENTS_PER_STATE = 20
MAX_TRANSITION_EVENTS_PER_STATE = 20
MAX_ACTIONS_PER_EVENT = 10
MAX_CONTENT_EXPRESSION_BYTES = 1024
MIN_TIMER_SECONDS = 60

_DEFINITION = "detectorModelDefinition"


@dataclass(frozen=True, slots=True)
class _Place:
    """Where an expression or an action is, by member path and by name."""

    location: str
    names: str


def check_publishable(compiled: CompiledDefinition) -> None:
    """Raise ``DetectorModelError`` for the first publish-blocking analysis error, if any."""
    states = list(compiled.states.values())
    if len(states) > MAX_STATES:
        raise DetectorModelError(
            f"{_DEFINITION}.states",
            f"the model has {len(states)} states; at most {MAX_STATES} are allowed",
        )
    for index, state in enumerate(states):
        _check_state_limits(state, f"{_DEFINITION}.states[{index}]")
    places = list(_places(states))
    _check_actions(places)
    _check_references(places)
    if not any(
        expression.input_references() or expression.current_input_references()
        for _, expression in _conditions(states)
    ):
        raise DetectorModelError(
            f"{_DEFINITION}.states",
            'no condition uses an input ($input.<name>... or currentInput("<name>")); at '
            "least one condition must, or no message is ever evaluated",
        )


def _check_state_limits(state: State, location: str) -> None:
    names = f"state {state.name!r}"
    events = len(state.on_enter) + len(state.on_input) + len(state.on_exit)
    if events > MAX_EVENTS_PER_STATE:
        raise DetectorModelError(
            location,
            f"the state has {events} events (onEnter, onInput and onExit together); at most "
            f"{MAX_EVENTS_PER_STATE} are allowed",
            names,
        )
    if len(state.transitions) > MAX_TRANSITION_EVENTS_PER_STATE:
        raise DetectorModelError(
            f"{location}.onInput.transitionEvents",
            f"the state has {len(state.transitions)} transition events; at most "
            f"{MAX_TRANSITION_EVENTS_PER_STATE} are allowed",
            names,
        )


_Entry = tuple[_Place, Event | TransitionEvent]


def _places(states: list[State]) -> Iterator[_Entry]:
    """Every event and transition event with its place."""
    for index, state in enumerate(states):
        location = f"{_DEFINITION}.states[{index}]"
        groups: tuple[tuple[str, tuple[Event | TransitionEvent, ...]], ...] = (
            ("onEnter.events", state.on_enter),
            ("onInput.events", state.on_input),
            ("onInput.transitionEvents", state.transitions),
            ("onExit.events", state.on_exit),
        )
        for group, events in groups:
            for position, event in enumerate(events):
                place = _Place(
                    f"{location}.{group}[{position}]",
                    f"state {state.name!r}, event {event.name!r}",
                )
                yield place, event


def _conditions(states: list[State]) -> Iterator[tuple[_Place, Expression]]:
    for place, event in _places(states):
        if event.condition is not None:
            yield _Place(f"{place.location}.condition", place.names), event.condition


def _check_actions(places: list[_Entry]) -> None:
    for place, event in places:
        if len(event.actions) > MAX_ACTIONS_PER_EVENT:
            raise DetectorModelError(
                f"{place.location}.actions",
                f"the event has {len(event.actions)} actions; at most "
                f"{MAX_ACTIONS_PER_EVENT} are allowed",
                place.names,
            )
        for index, action in enumerate(event.actions):
            _check_action(action, f"{place.location}.actions[{index}]", place.names)


def _check_action(action: Action, location: str, names: str) -> None:
    if isinstance(action, SetTimer):
        seconds = action.seconds
        if action.duration is not None and isinstance(action.duration.tree, Literal):
            constant = action.duration.tree.value
            seconds = None if isinstance(constant, bool | str) else int(constant)
        if seconds is not None and seconds < MIN_TIMER_SECONDS:
            field = "seconds" if action.duration is None else "durationExpression"
            raise DetectorModelError(
                f"{location}.setTimer.{field}",
                f"the duration for timer {action.timer_name!r} is {seconds} seconds; it must "
                f"be at least {MIN_TIMER_SECONDS} seconds long",
                names,
            )
    if not isinstance(action, ExternalAction) or action.content is None:
        return
    where = f"{location}.{action.action_type}.payload.contentExpression"
    size = len(action.content.text.encode())
    if size > MAX_CONTENT_EXPRESSION_BYTES:
        raise DetectorModelError(
            where,
            f"the content expression is {size} bytes; at most "
            f"{MAX_CONTENT_EXPRESSION_BYTES} are allowed",
            names,
        )
    if action.payload_type == "JSON" and action.content.is_never_a_string():
        raise DetectorModelError(
            where,
            f"the payload type is JSON, so the content expression must evaluate to a string; "
            f"{action.content.text!r} evaluates to a number or a Boolean",
            names,
        )


def _expressions(event: Event | TransitionEvent) -> Iterator[Expression]:
    if event.condition is not None:
        yield event.condition
    for action in event.actions:
        if isinstance(action, SetVariable):
            yield action.value
        elif isinstance(action, SetTimer) and action.duration is not None:
            yield action.duration
        elif isinstance(action, ExternalAction):
            if action.content is not None:
                yield action.content
            yield from action.templates.values()


def _check_references(places: list[_Entry]) -> None:
    variables_set = {
        action.variable_name
        for _, event in places
        for action in event.actions
        if isinstance(action, SetVariable)
    }
    timers_set = {
        action.timer_name
        for _, event in places
        for action in event.actions
        if isinstance(action, SetTimer)
    }
    for place, event in places:
        for expression in _expressions(event):
            for variable in sorted(expression.variable_references() - variables_set):
                raise DetectorModelError(
                    place.location,
                    f"variable {variable!r} is used in {expression.text!r} but is never set; "
                    "set it with a setVariable action",
                    place.names,
                )
            for timer in sorted(expression.timer_references() - timers_set):
                raise DetectorModelError(
                    place.location,
                    f"timer {timer!r} is used in {expression.text!r} but is never set; set it "
                    "with a setTimer action",
                    place.names,
                )


def undeclared_attributes(
    compiled: CompiledDefinition, declared: Callable[[str], Sequence[str] | None]
) -> list[tuple[str, str, str]]:
    """``(location, names, reference)`` of every ``$input`` reference to an undeclared attribute.

    A reference is covered when a declared ``jsonPath`` is a prefix of its path (declaring
    ``sensorData`` makes ``sensorData.pressure`` available: the whole object is there).
    """
    found: list[tuple[str, str, str]] = []
    for place, event in _places(list(compiled.states.values())):
        for expression in _expressions(event):
            for input_name, path in sorted(expression.input_paths(), key=str):
                names = tuple(_keys(path))
                paths = [key_path(json_path) for json_path in declared(input_name) or ()]
                if not any(names[: len(covered)] == covered for covered in paths):
                    reference = ".".join(str(step) for step in (input_name, *path))
                    found.append((place.location, place.names, f"$input.{reference}"))
    return found


def _keys(path: tuple[str | int, ...]) -> Iterator[str]:
    """The object keys of a reference's path, up to its first array index."""
    for step in path:
        if isinstance(step, int):
            return
        yield step

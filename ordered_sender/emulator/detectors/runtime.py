"""One detector instance evaluated against one trigger (a message or an expired timer).

A ``Detector`` is a frozen value: ``start_detector`` and ``evaluate`` return a new one together
with the ``ActionRecord``s of the actions aimed at other services. They take the time as an
argument and do no I/O, take no locks and start no threads, so every documented rule is tested
by calling them.

The rules, from the IoT Events developer guide ("Detector model restrictions and limitations",
"Expressions", "Using built-in actions"):

- a new detector enters the initial state and runs its ``onEnter`` events; the message that
  created it is then evaluated like any other;
- per trigger: ``onInput`` events, then the first ``transitionEvents`` entry whose condition
  holds; a transition runs its own actions, then ``onExit`` of the old state, then ``onEnter``
  of the new state (also when the new state is the old one). The order of the transition's
  actions and ``onExit`` is not stated in prose; the HVAC example ("Example: HVAC temperature
  control", its Amazon SNS messages) shows the ``onExit`` event ``resetHeatCool`` of state
  ``start`` sending variables (``rangeHigh`` 30.0, ``sensorCount`` 10) that only the
  ``initialize`` transition's actions set, so the transition's actions run first;
- a missing condition holds; a condition that is not Boolean, or has no valid value, does not;
- BATCH (the default): within one group (``onEnter``, ``onInput`` with its transitions,
  ``onExit``) every condition sees the variables as they were when the group started; the
  actions of the events that fired then run in definition order. The guide's motor example
  relies on it: ``BackToNormal`` tests ``<= 1`` because it cannot see the decrement made by
  ``Pressure Okay`` for the same message. SERIAL: events run in definition order, each update
  visible to the next condition; transitions come after the ``onInput`` events, so they see
  those updates;
- an action whose expression has no valid value is skipped; the others still run;
- ``timeout("t")`` is true only the first time it is checked after ``t`` expired; a check is a
  ``timeout()`` actually evaluated, so one that ``&&`` short-circuits past is not (the analyser
  recommends ``triggerType("MESSAGE") && timeout("awake")``: the expiry waits for a message);
- a timer lasts 60 to 31,622,400 seconds: an evaluated duration is rounded down and one below
  60 sets no timer (troubleshooting, "Amazon CloudWatch Logs action.setTimer errors": "less
  than 60 ... Failed to set the timer");
- ``resetTimer`` restarts a timer with its last evaluated duration; ``clearTimer`` deletes it; a
  detector holds at most five timers;
- ``iotTopicPublish.mqttTopic`` may hold ``${...}`` templates of variables and input values
  (API reference, IotTopicPublishAction): the action log records the evaluated topic.

Choices where the guide is silent: the actions of one event (and of the events that fired in
one group) run one after the other, each seeing the variables the previous ones set; the
expiries checked during one trigger are consumed when it ends, so all the conditions of one
trigger see the same expiries; an expired timer fires its own evaluation, with the expiry time
as the time; ``resetTimer`` of a timer that is not running does nothing.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from ordered_sender.emulator.detectors.models import (
    Action,
    ClearTimer,
    EvaluationMethod,
    Event,
    ExternalAction,
    ResetTimer,
    SetTimer,
    SetVariable,
    State,
    TransitionEvent,
)
from ordered_sender.emulator.detectors.state import (
    ActionRecord,
    Detector,
    RunnableModel,
    Timer,
    Trigger,
)
from ordered_sender.emulator.expressions import EvaluationContext, Expression, ExpressionError
from ordered_sender.emulator.expressions.context import TriggerType, Value, VariableValue

TIMERS_PER_DETECTOR = 5
"""Developer guide quota: a detector holds at most five timers at a time."""

TIMER_SECONDS_RANGE = range(60, 31_622_400 + 1)
"""Durations a ``setTimer`` may have: API reference, SetTimerAction: "The minimum value is 60
seconds to ensure accuracy. The maximum value is 31622400 seconds." """

BATCH_UPDATE_TIMER_SECONDS_RANGE = range(1, 31_622_400 + 1)
"""What BatchUpdateDetector's TimerDefinition.seconds accepts: the service model documents no
60-second minimum there, only the integer range of the shape it shares."""

_ACTION_EXECUTION_NAMESPACE = uuid.UUID("5d7444df-a655-3587-a609-dbd7a0f55267")
"""Any fixed namespace makes ``actionExecutionId`` reproducible; this is the guide's example id."""

_log = structlog.get_logger(__name__)


def start_detector(
    model: RunnableModel, key_value: str | None, trigger: Trigger
) -> tuple[Detector, tuple[ActionRecord, ...]]:
    """A new detector in the initial state after its ``onEnter`` events, then the trigger."""
    detector = Detector.initial(model, key_value, trigger.time)
    evaluation = _Evaluation(model, detector, trigger)
    evaluation.run_group(evaluation.state.on_enter)
    entered = evaluation.result()
    detector, records = evaluate(model, entered, trigger)
    return detector, evaluation.records + records


def evaluate(
    model: RunnableModel, detector: Detector, trigger: Trigger
) -> tuple[Detector, tuple[ActionRecord, ...]]:
    """The detector after ``onInput`` and at most one transition for ``trigger``."""
    evaluation = _Evaluation(model, detector, trigger)
    evaluation.on_input()
    return evaluation.result(), evaluation.records


def expire_timer(
    model: RunnableModel, detector: Detector, timer_name: str, now: float
) -> tuple[Detector, tuple[ActionRecord, ...]]:
    """The detector after timer ``timer_name`` expired, evaluated with ``triggerType("Timer")``."""
    expired = replace(
        detector,
        timers={name: t for name, t in detector.timers.items() if name != timer_name},
        expired_timers=detector.expired_timers | {timer_name},
    )
    return evaluate(model, expired, Trigger(TriggerType.TIMER, now, timer_name=timer_name))


def fixed_timers(timer_seconds: Mapping[str, int], now: float) -> dict[str, Timer]:
    """Timers set to expire ``seconds`` after ``now`` (BatchUpdateDetector); checks the limits."""
    if len(timer_seconds) > TIMERS_PER_DETECTOR:
        raise ValueError(
            f"timers: a detector holds at most {TIMERS_PER_DETECTOR} timers, "
            f"got {len(timer_seconds)}: {sorted(timer_seconds)}"
        )
    for name, seconds in timer_seconds.items():
        if seconds not in BATCH_UPDATE_TIMER_SECONDS_RANGE:
            raise ValueError(f"timer {name!r}: seconds must be 1 to 31622400, got {seconds!r}")
    return {name: Timer(name, now + seconds, seconds) for name, seconds in timer_seconds.items()}


class _Evaluation:
    """The working copy of one detector during one trigger; ``result()`` freezes it again."""

    def __init__(self, model: RunnableModel, detector: Detector, trigger: Trigger) -> None:
        self.model = model
        self.detector = detector
        self.trigger = trigger
        self.state_name = detector.state_name
        self.variables: dict[str, VariableValue] = dict(detector.variables)
        self.timers: dict[str, Timer] = dict(detector.timers)
        self.expired_timers = set(detector.expired_timers)
        self.checked_timers: set[str] = set()
        self.records: tuple[ActionRecord, ...] = ()
        self.event_name = ""

    def result(self) -> Detector:
        last_payloads = dict(self.detector.last_payloads)
        if self.trigger.input_name is not None:
            last_payloads[self.trigger.input_name] = self.trigger.payload
        return replace(
            self.detector,
            state_name=self.state_name,
            variables=self.variables,
            timers=self.timers,
            expired_timers=frozenset(self.expired_timers - self.checked_timers),
            last_payloads=last_payloads,
            last_update_time=self.trigger.time,
        )

    @property
    def state(self) -> State:
        return self.model.definition.states[self.state_name]

    def on_input(self) -> None:
        state = self.state
        if self.model.evaluation_method is EvaluationMethod.SERIAL:
            self.run_group(state.on_input)
            transition = self.first_transition(state)
        else:
            # BATCH: transitions, too, are decided on the variables as the message found them.
            fired = [event for event in state.on_input if self.holds(event)]
            transition = self.first_transition(state)
            for event in fired:
                self.perform(event.name, event.actions)
        if transition is None:
            return
        self.perform(transition.name, transition.actions)
        self.run_group(state.on_exit)
        self.state_name = transition.next_state
        self.run_group(self.state.on_enter)

    def first_transition(self, state: State) -> TransitionEvent | None:
        return next((t for t in state.transitions if self.holds(t)), None)

    def run_group(self, events: Iterable[Event]) -> None:
        if self.model.evaluation_method is EvaluationMethod.SERIAL:
            for event in events:
                if self.holds(event):
                    self.perform(event.name, event.actions)
            return
        # BATCH: decide every condition on the variables as the group found them, then act.
        fired = [event for event in events if self.holds(event)]
        for event in fired:
            self.perform(event.name, event.actions)

    def holds(self, event: Event | TransitionEvent) -> bool:
        if event.condition is None:
            return True
        self.event_name = event.name
        return self.value_of(event.condition, "condition") is True

    def value_of(self, expression: Expression, field: str) -> Value | None:
        """The expression's value; ``None`` (and a log event) when it has no valid value."""
        context = EvaluationContext(
            variables=dict(self.variables),
            input_name=self.trigger.input_name,
            payload=self.trigger.payload,
            trigger_type=self.trigger.trigger_type,
            expired_timers=frozenset(self.expired_timers),
            checked_timers=self.checked_timers,
            previous_payloads={
                name: payload
                for name, payload in self.detector.last_payloads.items()
                if name != self.trigger.input_name
            },
        )
        try:
            return expression.evaluate(context)
        except ExpressionError as error:
            self.report("detector.expression_failed", field=field, error=str(error))
            return None

    def perform(self, event_name: str, actions: Iterable[Action]) -> None:
        self.event_name = event_name
        for action in actions:
            match action:
                case SetVariable():
                    self.set_variable(action)
                case SetTimer():
                    self.set_timer(action)
                case ResetTimer():
                    self.reset_timer(action)
                case ClearTimer():
                    self.timers.pop(action.timer_name, None)
                    self.expired_timers.discard(action.timer_name)
                case ExternalAction():
                    self.record(action)

    def set_variable(self, action: SetVariable) -> None:
        value = self.value_of(action.value, f"setVariable {action.variable_name}")
        if isinstance(value, bool | int | float | str):
            self.variables[action.variable_name] = value
        elif value is not None:
            self.report(
                "detector.variable_not_set",
                variable=action.variable_name,
                error=f"a variable holds Integer, Decimal, String or Boolean, got {value!r}",
            )

    def set_timer(self, action: SetTimer) -> None:
        seconds: Value | None = action.seconds
        if action.duration is not None:
            seconds = self.value_of(action.duration, f"setTimer {action.timer_name}")
            if isinstance(seconds, float):
                # Documented: the evaluated duration is rounded down to a whole second.
                seconds = math.floor(seconds)
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            self.report(
                "detector.timer_not_set",
                timer=action.timer_name,
                error=f"the duration must be a number of seconds, got {seconds!r}",
            )
            return
        if seconds not in TIMER_SECONDS_RANGE:
            self.report(
                "detector.timer_not_set",
                timer=action.timer_name,
                error=f"the duration must be 60 to 31622400 seconds, got {seconds!r}",
            )
            return
        if action.timer_name not in self.timers and len(self.timers) >= TIMERS_PER_DETECTOR:
            self.report(
                "detector.timer_not_set",
                timer=action.timer_name,
                error=f"a detector holds at most {TIMERS_PER_DETECTOR} timers",
            )
            return
        self.start_timer(action.timer_name, seconds)

    def reset_timer(self, action: ResetTimer) -> None:
        timer = self.timers.get(action.timer_name)
        if timer is None:
            self.report("detector.timer_not_reset", timer=action.timer_name, error="no such timer")
            return
        self.start_timer(timer.name, timer.duration_seconds)

    def start_timer(self, name: str, seconds: int) -> None:
        self.timers[name] = Timer(name, self.trigger.time + seconds, seconds)
        self.expired_timers.discard(name)

    def record(self, action: ExternalAction) -> None:
        if action.content is None:
            payload = json.dumps(self.default_payload(len(self.records)))
        else:
            value = self.value_of(action.content, f"{action.action_type} payload")
            if value is None:
                return
            payload = value if isinstance(value, str) else json.dumps(value)
        parameters = dict(action.parameters)
        for name, template in action.templates.items():
            text = self.value_of(template, f"{action.action_type} {name}")
            if not isinstance(text, str):
                return
            parameters[name] = text
        self.records += (
            ActionRecord(
                model_name=self.model.name,
                model_version=self.model.version,
                key_value=self.detector.key_value,
                state_name=self.state_name,
                event_name=self.event_name,
                action_type=action.action_type,
                parameters=parameters,
                payload=payload,
                time=self.trigger.time,
                trigger_type=self.trigger.trigger_type,
                input_name=self.trigger.input_name,
                message_id=self.trigger.message_id,
            ),
        )

    def default_payload(self, position: int) -> dict[str, Any]:
        """The payload IoT Events sends when an action configures none (developer guide)."""
        trigger_details: dict[str, Any] = {"triggerType": str(self.trigger.trigger_type)}
        if self.trigger.input_name is not None:
            trigger_details["inputName"] = self.trigger.input_name
            trigger_details["messageId"] = self.trigger.message_id
        else:
            trigger_details["timerName"] = self.trigger.timer_name
        detector: dict[str, Any] = {
            "detectorModelName": self.model.name,
            "detectorModelVersion": self.model.version,
        }
        if self.detector.key_value is not None:
            detector["keyValue"] = self.detector.key_value
        # A name-based UUID keeps payloads reproducible from run to run.
        execution_id = uuid.uuid5(
            _ACTION_EXECUTION_NAMESPACE,
            f"{self.model.name}/{self.detector.key_value}/{self.trigger.time}/"
            f"{self.event_name}/{position}",
        )
        return {
            "eventTime": round(self.trigger.time * 1000),
            "payload": {
                "actionExecutionId": str(execution_id),
                "detector": detector,
                "eventTriggerDetails": trigger_details,
                "state": {
                    "stateName": self.state_name,
                    "variables": dict(self.variables),
                    "timers": {
                        name: round(timer.expires_at * 1000) for name, timer in self.timers.items()
                    },
                },
            },
            "eventName": self.event_name,
        }

    def report(self, event: str, **details: Any) -> None:
        _log.warning(
            event,
            detector_model_name=self.model.name,
            key_value=self.detector.key_value,
            state_name=self.state_name,
            event_name=self.event_name,
            **details,
        )

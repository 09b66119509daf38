"""Why order matters for timers: an HVAC overrun alarm fed the same on/off events two ways.

The detector model (one detector per ``unitid``) raises an alarm when heating runs too long:
"on" moves Idle to Heating and sets the timer ``overrun``; "off" clears it and goes back to
Idle; when the timer expires, Heating moves to Alarm. Each unit's gateway uploads the events of
the last minute once a minute, for a seeded trace of heating cycles, some of them short. Sent:

(a) naively, in BatchPutMessage requests: when a short cycle's "on" and "off" share an upload,
    IoT Events may process "off" first; then "on" leaves a timer running (a false alarm), and
    an "off" then "on" turned around leaves a running heater without a timer (a missed alarm);
(b) through ``OrderedSender`` with one lane per unit (``ByInputAndKey("unitid")``).

The endpoint's clock is the embedded ``ManualClock``, advanced through the trace, so an hour
takes a second; with ``--endpoint-url`` time is real and the run takes as long as the trace.
Alarms are observed with ListDetectors and compared with the alarms the trace implies, computed
here in plain Python. Exit status 0 means the ordered run raised exactly the expected alarms.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from example_command import command_line

from ordered_sender import ByInputAndKey
from ordered_sender.demos.endpoint import (
    Endpoint,
    NaiveAgainstOrdered,
    NaiveSender,
    Sender,
    open_endpoint,
    ordered_run,
)

INPUT_NAME = "HvacInput"
MODEL_NAME = "hvacOverrunModel"
UPLOAD_SECONDS = 60
"""Gateways upload the events of the last minute, on the minute."""
OVERRUN_SECONDS = 630
"""Heating longer than this raises the alarm. Not a whole number of minutes, so a timer never
expires at the instant of an upload, which would make the outcome depend on a tie."""
OBSERVE_AFTER_UPLOAD_SECONDS = 45
"""When the detectors are read, each minute: after that minute's timers expired (at :30), before
the next upload. An alarm is reported at the time it was first seen."""

HVAC_INPUT: dict[str, Any] = {
    "inputName": INPUT_NAME,
    "inputDescription": "Heating switched on or off in an HVAC unit",
    "inputDefinition": {"attributes": [{"jsonPath": "unitid"}, {"jsonPath": "heating"}]},
}


class UnitState(Enum):
    """The detector model's states; the values are the state names."""

    IDLE = "Idle"
    HEATING = "Heating"
    ALARM = "Alarm"


def _switch(heating: str, next_state: UnitState, actions: Sequence[Any] = ()) -> dict[str, Any]:
    return {
        "eventName": f"heating {heating}",
        "condition": f'$input.{INPUT_NAME}.heating == "{heating}"',
        "actions": list(actions),
        "nextState": next_state.value,
    }


HVAC_MODEL: dict[str, Any] = {
    "detectorModelName": MODEL_NAME,
    "detectorModelDescription": "Alarm when heating runs longer than the overrun timer",
    "key": "unitid",
    "roleArn": "arn:aws:iam::123456789012:role/IoTEventsRole",
    "detectorModelDefinition": {
        "initialStateName": UnitState.IDLE.value,
        "states": [
            {
                "stateName": UnitState.IDLE.value,
                "onInput": {"transitionEvents": [_switch("on", UnitState.HEATING)]},
            },
            {
                "stateName": UnitState.HEATING.value,
                "onEnter": {
                    "events": [
                        {
                            "eventName": "start overrun timer",
                            "condition": "true",
                            "actions": [
                                {
                                    "setTimer": {
                                        "timerName": "overrun",
                                        "seconds": OVERRUN_SECONDS,
                                    }
                                }
                            ],
                        }
                    ]
                },
                "onInput": {
                    "transitionEvents": [
                        _switch("off", UnitState.IDLE, [{"clearTimer": {"timerName": "overrun"}}]),
                        {
                            "eventName": "overrun",
                            "condition": 'timeout("overrun")',
                            "nextState": UnitState.ALARM.value,
                        },
                    ]
                },
            },
            {
                "stateName": UnitState.ALARM.value,
                "onEnter": {
                    "events": [
                        {
                            "eventName": "raise alarm",
                            "condition": "true",
                            "actions": [
                                {"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:hvac"}}
                            ],
                        }
                    ]
                },
                "onInput": {"transitionEvents": [_switch("off", UnitState.IDLE)]},
            },
        ],
    },
}


class Heating(Enum):
    ON = "on"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class HeatingEvent:
    """Heating of ``unit_id`` switched on or off ``at`` seconds into the trace."""

    unit_id: str
    at: int
    heating: Heating

    @property
    def upload_at(self) -> int:
        """When the unit's gateway uploads it: at the end of its minute."""
        return (self.at // UPLOAD_SECONDS + 1) * UPLOAD_SECONDS


@dataclass(frozen=True, slots=True)
class UnitOutcome:
    """One unit: the alarms (seconds into the trace) expected, and those each run raised."""

    unit_id: str
    events: tuple[HeatingEvent, ...]
    expected: tuple[int, ...]
    naive: tuple[int, ...]
    ordered: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Result(NaiveAgainstOrdered):
    """Both runs, unit by unit; ``minutes`` is the length of the trace."""

    endpoint_url: str
    accelerated: bool
    minutes: int
    outcomes: tuple[UnitOutcome, ...]

    def report(self) -> str:
        return render(self)


def heating_events(units: int, minutes: int, seed: int) -> list[HeatingEvent]:
    """Seeded heating cycles of every unit, in time order: many normal, some short, some long."""
    rng = random.Random(seed)
    end = minutes * UPLOAD_SECONDS
    events: list[HeatingEvent] = []
    for number in range(1, units + 1):
        unit_id = f"hvac-{number:02d}"
        at, heating = rng.randint(0, 120), Heating.ON
        while at < end:
            events.append(HeatingEvent(unit_id, at, heating))
            if heating is Heating.ON:
                # Short runs (a thermostat flicking) share an upload with the "off" that ends them.
                at += rng.choice(
                    (rng.randint(5, 40), rng.randint(120, 420), rng.randint(700, 1100))
                )
            else:
                # Mostly normal pauses, one in three a quick restart.
                at += rng.choice((rng.randint(5, 40), rng.randint(60, 300), rng.randint(60, 300)))
            heating = Heating.OFF if heating is Heating.ON else Heating.ON
    return sorted(events, key=lambda event: (event.at, event.unit_id))


def expected_alarms(events: Sequence[HeatingEvent], minutes: int) -> tuple[int, ...]:
    """The alarms of one unit when every upload is processed in order, at its upload time."""
    state: UnitState = UnitState.IDLE
    expires_at: int | None = None
    alarms: list[int] = []
    for upload_at in range(UPLOAD_SECONDS, (minutes + 1) * UPLOAD_SECONDS, UPLOAD_SECONDS):
        for event in (e for e in events if e.upload_at == upload_at):
            if state is UnitState.IDLE and event.heating is Heating.ON:
                state, expires_at = UnitState.HEATING, upload_at + OVERRUN_SECONDS
            elif state is not UnitState.IDLE and event.heating is Heating.OFF:
                state, expires_at = UnitState.IDLE, None
        if expires_at is not None and expires_at <= upload_at + OBSERVE_AFTER_UPLOAD_SECONDS:
            state, expires_at = UnitState.ALARM, None
            alarms.append(upload_at + OBSERVE_AFTER_UPLOAD_SECONDS)
    return tuple(alarms)


def drive(
    endpoint: Endpoint, sender: Sender, events: Sequence[HeatingEvent], minutes: int
) -> dict[str, tuple[int, ...]]:
    """Upload every minute's events to a fresh model; the alarms seen, by unit."""
    endpoint.install_detector_model([HVAC_INPUT], HVAC_MODEL)
    timeline = endpoint.timeline()
    alarms: dict[str, list[int]] = {}
    alarming: set[str] = set()
    for upload_at in range(UPLOAD_SECONDS, (minutes + 1) * UPLOAD_SECONDS, UPLOAD_SECONDS):
        timeline.wait_until(upload_at)
        upload = [e for e in events if e.upload_at == upload_at]
        if upload:
            sender.send(
                [(INPUT_NAME, {"unitid": e.unit_id, "heating": e.heating.value}) for e in upload]
            )
        timeline.wait_until(upload_at + OBSERVE_AFTER_UPLOAD_SECONDS)
        states = endpoint.states(MODEL_NAME)
        now_alarming = {u for u, state in states.items() if state == UnitState.ALARM.value}
        for unit_id in sorted(now_alarming - alarming):
            alarms.setdefault(unit_id, []).append(upload_at + OBSERVE_AFTER_UPLOAD_SECONDS)
        alarming = now_alarming
    return {unit_id: tuple(times) for unit_id, times in alarms.items()}


def run(
    endpoint_url: str | None = None,
    *,
    units: int = 6,
    minutes: int = 45,
    seed: int = 7,
    region: str = "us-east-1",
) -> Result:
    """Both runs on one endpoint (the embedded one unless ``endpoint_url``); nothing printed."""
    events = heating_events(units, minutes, seed)
    with open_endpoint(endpoint_url, seed=seed, region=region) as endpoint:
        naive = drive(endpoint, NaiveSender(endpoint), events, minutes)
        with ordered_run(endpoint, ByInputAndKey("unitid")) as ordered_sender:
            ordered = drive(endpoint, ordered_sender, events, minutes)
    unit_ids = sorted({event.unit_id for event in events})
    outcomes = []
    for unit_id in unit_ids:
        unit_events = tuple(e for e in events if e.unit_id == unit_id)
        outcomes.append(
            UnitOutcome(
                unit_id,
                unit_events,
                expected_alarms(unit_events, minutes),
                naive.get(unit_id, ()),
                ordered.get(unit_id, ()),
            )
        )
    return Result(endpoint.url, endpoint.accelerated, minutes, tuple(outcomes))


def _clock_time(seconds: int) -> str:
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _alarms(times: Sequence[int], expected: Sequence[int] | None = None) -> str:
    text = " ".join(_clock_time(t) for t in times) or "-"
    if expected is None:
        return text
    missed, false = set(expected) - set(times), set(times) - set(expected)
    verdicts = [f"{len(false)} false"] if false else []
    verdicts += [f"{len(missed)} missed"] if missed else []
    if not verdicts:
        return f"{text}  ok"
    return f"{text}  WRONG ({', '.join(verdicts)})"


def _shared_uploads(events: Sequence[HeatingEvent]) -> list[str]:
    """Uploads holding more than one event of a unit: the ones whose order a request may flip."""
    lines = []
    for upload_at in sorted({e.upload_at for e in events}):
        together = [e for e in events if e.upload_at == upload_at]
        if len(together) > 1:
            switches = ", ".join(f"{e.heating.value} at {_clock_time(e.at)}" for e in together)
            lines.append(f"{switches}: uploaded together at {_clock_time(upload_at)}")
    return lines


def render(result: Result) -> str:
    minutes = result.minutes
    units = len(result.outcomes)
    clock = "the embedded ManualClock, accelerated" if result.accelerated else "real time"
    lines = [
        f"{units} HVAC units, {minutes} minutes of heating on/off events, sent to "
        f"{result.endpoint_url} ({clock})",
        f"detector model {MODEL_NAME!r}: on -> Heating + setTimer overrun {OVERRUN_SECONDS} s, "
        "off -> Idle + clearTimer, timeout -> Alarm",
        "every unit's gateway uploads the last minute's events on the minute:",
        "(a) naive: BatchPutMessage requests of up to 10 (any order inside a request)",
        '(b) ordered: OrderedSender with ByInputAndKey("unitid"), one lane per unit',
        "",
        "alarms as first seen by ListDetectors, mm:ss into the trace",
        f"{'unit':<9}{'expected':<20}{'naive':<40}ordered",
    ]
    for outcome in result.outcomes:
        lines.append(
            f"{outcome.unit_id:<9}{_alarms(outcome.expected):<20}"
            f"{_alarms(outcome.naive, outcome.expected):<40}"
            f"{_alarms(outcome.ordered, outcome.expected)}"
        )
    for outcome in result.outcomes:
        if outcome.naive != outcome.expected:
            lines += [
                "",
                f"{outcome.unit_id}, naive run wrong; uploads it depended on the order of:",
            ]
            lines += [f"  {line}" for line in _shared_uploads(outcome.events)]
    lines += [
        "",
        f"naive run:   {result.naive_wrong} of {units} units with wrong alarms",
        f"ordered run: {result.ordered_wrong} of {units} units with wrong alarms",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return command_line(
        __doc__,
        {"units": (6, "how many HVAC units"), "minutes": (45, "length of the trace in minutes")},
        run,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())

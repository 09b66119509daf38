"""Why a detector fed by two inputs needs them in one lane: a room's door and its temperature.

One detector per ``roomid`` reads two inputs: ``DoorInput`` (the door opened or closed) and
``TemperatureInput`` (a reading every minute). A temperature below 16 degrees with the door
closed means the heating failed: the detector counts it in ``heatingFaults`` and stays in
HeatingFault until the room is back at 18. A cold reading while the door is open is expected.

The building's gateway was offline for an hour and now uploads its backlog, through
``OrderedSender`` both times, to a fresh model each time:

(a) with the default lanes, one per input (``ByInput()``): each input keeps its own order, but
    the few door events race ahead of the sixty temperature readings per room, so the detector
    sees the door closed again before the cold readings taken while it stood open;
(b) with both inputs of a room in one lane
    (``ByInputGroup({"room": ("DoorInput", "TemperatureInput")}, key="roomid")``).

Every room's detector is read with DescribeDetector and compared with the state the events
imply, computed here in plain Python. Exit status 0 means the grouped lanes got every room right.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from example_command import command_line

from ordered_sender import ByInput, ByInputGroup, LaneFunction
from ordered_sender.demos.endpoint import (
    DetectorReading,
    Endpoint,
    Outgoing,
    open_endpoint,
    ordered_run,
)

DOOR_INPUT = "DoorInput"
TEMPERATURE_INPUT = "TemperatureInput"
MODEL_NAME = "roomHeatingModel"
COLD = 16.0
"""Below this with the door closed, the heating has failed."""
WARM = 18.0
"""At or above this, a failed heating has recovered."""
GROUPED_LANES = ByInputGroup({"room": (DOOR_INPUT, TEMPERATURE_INPUT)}, key="roomid")

ROOM_INPUTS: list[dict[str, Any]] = [
    {
        "inputName": DOOR_INPUT,
        "inputDefinition": {"attributes": [{"jsonPath": "roomid"}, {"jsonPath": "door"}]},
    },
    {
        "inputName": TEMPERATURE_INPUT,
        "inputDefinition": {"attributes": [{"jsonPath": "roomid"}, {"jsonPath": "temperature"}]},
    },
]


class RoomState(Enum):
    """The detector model's states; the values are the state names."""

    COMFORTABLE = "Comfortable"
    HEATING_FAULT = "HeatingFault"


def _door_events() -> list[dict[str, Any]]:
    """Both states track the door the same way."""
    return [
        {
            "eventName": f"door {door}",
            "condition": f'currentInput("{DOOR_INPUT}") && $input.{DOOR_INPUT}.door == "{door}"',
            "actions": [{"setVariable": {"variableName": "doorOpen", "value": str(value)}}],
        }
        for door, value in (("open", 1), ("closed", 0))
    ]


ROOM_MODEL: dict[str, Any] = {
    "detectorModelName": MODEL_NAME,
    "detectorModelDescription": "Heating failure: cold with the door closed",
    "key": "roomid",
    "roleArn": "arn:aws:iam::123456789012:role/IoTEventsRole",
    "detectorModelDefinition": {
        "initialStateName": RoomState.COMFORTABLE.value,
        "states": [
            {
                "stateName": RoomState.COMFORTABLE.value,
                "onEnter": {
                    "events": [
                        {
                            # Only when the detector starts: coming back from HeatingFault
                            # must keep the count.
                            "eventName": "start",
                            "condition": "isUndefined($variable.heatingFaults)",
                            "actions": [
                                {"setVariable": {"variableName": "heatingFaults", "value": "0"}},
                                {"setVariable": {"variableName": "doorOpen", "value": "0"}},
                            ],
                        }
                    ]
                },
                "onInput": {
                    "events": _door_events(),
                    "transitionEvents": [
                        {
                            "eventName": "heating failed",
                            "condition": (
                                f'currentInput("{TEMPERATURE_INPUT}") && '
                                f"$input.{TEMPERATURE_INPUT}.temperature < {COLD} && "
                                "$variable.doorOpen == 0"
                            ),
                            "actions": [
                                {
                                    "setVariable": {
                                        "variableName": "heatingFaults",
                                        "value": "$variable.heatingFaults + 1",
                                    }
                                }
                            ],
                            "nextState": RoomState.HEATING_FAULT.value,
                        }
                    ],
                },
            },
            {
                "stateName": RoomState.HEATING_FAULT.value,
                "onEnter": {
                    "events": [
                        {
                            "eventName": "call maintenance",
                            "condition": "true",
                            "actions": [
                                {"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:heat"}}
                            ],
                        }
                    ]
                },
                "onInput": {
                    "events": _door_events(),
                    "transitionEvents": [
                        {
                            "eventName": "recovered",
                            "condition": (
                                f'currentInput("{TEMPERATURE_INPUT}") && '
                                f"$input.{TEMPERATURE_INPUT}.temperature >= {WARM}"
                            ),
                            "nextState": RoomState.COMFORTABLE.value,
                        }
                    ],
                },
            },
        ],
    },
}


class RoomStory(Enum):
    """What happens in a room during the hour."""

    AIRED = "aired: door open, cools, warms up"
    HEATING_FAILS = "heating fails, door closed"
    QUIET = "quiet"


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """A door event or a temperature reading, ``at`` seconds into the hour."""

    room_id: str
    at: int
    door: str | None = None
    temperature: float | None = None

    def outgoing(self) -> Outgoing:
        if self.door is not None:
            return DOOR_INPUT, {"roomid": self.room_id, "door": self.door}
        return TEMPERATURE_INPUT, {"roomid": self.room_id, "temperature": self.temperature}


@dataclass(frozen=True, slots=True)
class RoomOutcome:
    room_id: str
    story: RoomStory
    expected: DetectorReading
    per_input: DetectorReading
    grouped: DetectorReading


@dataclass(frozen=True, slots=True)
class Result:
    """Both runs, room by room; ``minutes`` is the length of the backlog."""

    endpoint_url: str
    minutes: int
    outcomes: tuple[RoomOutcome, ...]

    @property
    def as_expected(self) -> bool:
        return self.grouped_wrong == 0

    def report(self) -> str:
        return render(self)

    @property
    def per_input_wrong(self) -> int:
        return sum(outcome.per_input != outcome.expected for outcome in self.outcomes)

    @property
    def grouped_wrong(self) -> int:
        return sum(outcome.grouped != outcome.expected for outcome in self.outcomes)


def room_story(number: int) -> RoomStory:
    """Mostly aired rooms, every third room's heating fails, every fourth is quiet."""
    if number % 4 == 0:
        return RoomStory.QUIET
    return RoomStory.HEATING_FAILS if number % 3 == 0 else RoomStory.AIRED


def room_events(
    room_id: str, story: RoomStory, minutes: int, rng: random.Random
) -> list[RoomEvent]:
    """One room's hour: a temperature reading every minute, door events when the story has them."""
    events: list[RoomEvent] = []
    # When the door opens or the heating fails, and when the door closes again.
    starts = rng.randint(minutes // 6, minutes // 2)
    ends = starts + rng.randint(minutes // 8, minutes // 4) + 1
    temperature = rng.uniform(20.5, 21.5)
    for minute in range(minutes):
        if story is RoomStory.AIRED and minute in (starts, ends):
            door = "open" if minute == starts else "closed"
            events.append(RoomEvent(room_id, minute * 60 + rng.randint(0, 25), door=door))
        if story is RoomStory.AIRED and starts <= minute < ends:
            temperature -= rng.uniform(0.6, 1.2)
        elif story is RoomStory.AIRED and minute == ends:
            # The radiator is right under the window: closing it brings warmth back at once.
            temperature = max(temperature + 3.0, COLD + 0.5)
        elif story is RoomStory.HEATING_FAILS and minute >= starts:
            temperature = max(temperature - rng.uniform(0.3, 0.7), 12.0)
        else:
            temperature = min(temperature + rng.uniform(0.0, 0.8), 21.5)
        events.append(RoomEvent(room_id, minute * 60 + 30, temperature=round(temperature, 1)))
    return events


def expected_reading(events: Sequence[RoomEvent]) -> DetectorReading:
    """The detector after these events in this order (BATCH evaluation, as the model's)."""
    state, door_open, faults = RoomState.COMFORTABLE, 0, 0
    for event in events:
        if event.door is not None:
            door_open = 1 if event.door == "open" else 0
        elif event.temperature is None:
            continue
        elif state is RoomState.COMFORTABLE and event.temperature < COLD and door_open == 0:
            state, faults = RoomState.HEATING_FAULT, faults + 1
        elif state is RoomState.HEATING_FAULT and event.temperature >= WARM:
            state = RoomState.COMFORTABLE
    return DetectorReading(
        state.value, (("doorOpen", str(door_open)), ("heatingFaults", str(faults)))
    )


def run_once(
    endpoint: Endpoint, lane: LaneFunction, events: Sequence[RoomEvent], room_ids: Sequence[str]
) -> dict[str, DetectorReading]:
    """Send the backlog through an OrderedSender with these lanes to a fresh model; read back."""
    endpoint.install_detector_model(ROOM_INPUTS, ROOM_MODEL)
    with ordered_run(endpoint, lane) as sender:
        sender.send([event.outgoing() for event in events])
    return {room_id: endpoint.reading(MODEL_NAME, room_id) for room_id in room_ids}


def run(
    endpoint_url: str | None = None,
    *,
    rooms: int = 8,
    minutes: int = 60,
    seed: int = 7,
    region: str = "us-east-1",
) -> Result:
    """Both runs on one endpoint (the embedded one unless ``endpoint_url``); nothing printed."""
    rng = random.Random(seed)
    stories = {f"room-{number:02d}": room_story(number) for number in range(1, rooms + 1)}
    by_room = {
        room_id: room_events(room_id, story, minutes, rng) for room_id, story in stories.items()
    }
    backlog = sorted(
        (event for events in by_room.values() for event in events),
        key=lambda event: (event.at, event.room_id),
    )
    with open_endpoint(endpoint_url, seed=seed, region=region) as endpoint:
        per_input = run_once(endpoint, ByInput(), backlog, list(stories))
        grouped = run_once(endpoint, GROUPED_LANES, backlog, list(stories))
    return Result(
        endpoint.url,
        minutes,
        tuple(
            RoomOutcome(
                room_id,
                story,
                expected_reading(by_room[room_id]),
                per_input[room_id],
                grouped[room_id],
            )
            for room_id, story in stories.items()
        ),
    )


def _cell(reading: DetectorReading, expected: DetectorReading | None = None) -> str:
    faults = dict(reading.variables).get("heatingFaults", "-")
    text = f"{reading.state_name:<12} {faults:>2}"
    if expected is None:
        return text
    return f"{text}  {'ok' if reading == expected else 'WRONG'}"


def render(result: Result) -> str:
    minutes = result.minutes
    rooms = len(result.outcomes)
    lines = [
        f"{rooms} rooms, a backlog of {minutes} minutes of door events and temperatures, "
        f"sent to {result.endpoint_url}",
        f"detector model {MODEL_NAME!r}, key roomid, inputs {DOOR_INPUT} and {TEMPERATURE_INPUT}",
        f"below {COLD:g} degrees with the door closed -> HeatingFault and heatingFaults + 1",
        "(a) per-input lanes: ByInput() (the default), each input in order, not across inputs",
        f"(b) grouped lanes: ByInputGroup({{'room': ({DOOR_INPUT!r}, {TEMPERATURE_INPUT!r})}}, "
        "key='roomid')",
        "",
        "each cell: final stateName and heatingFaults, from DescribeDetector",
        f"{'room':<9}{'story':<36}{'expected':<17}{'per-input lanes':<24}grouped lane",
    ]
    for outcome in result.outcomes:
        lines.append(
            f"{outcome.room_id:<9}{outcome.story.value:<36}{_cell(outcome.expected):<17}"
            f"{_cell(outcome.per_input, outcome.expected):<24}"
            f"{_cell(outcome.grouped, outcome.expected)}"
        )
    lines += [
        "",
        f"per-input lanes: {result.per_input_wrong} of {rooms} rooms wrong",
        f"grouped lane:    {result.grouped_wrong} of {rooms} rooms wrong",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return command_line(
        __doc__, {"rooms": (8, "how many rooms"), "minutes": (60, "minutes of backlog")}, run, argv
    )


if __name__ == "__main__":
    sys.exit(main())

"""Two inputs, one detector: a room's door and its temperature must share one lane.

The model (detector_models/two_inputs.json), one detector per ``roomid``, reads ``DoorInput``
(the door opened or closed) and ``TemperatureInput`` (a reading a minute). Below 16 degrees with
the door closed, the heating has failed: HeatingFault, counted in ``heatingFaults``, until the
room is back at 18. Cold while the door is open is no fault. The building's gateway was offline
for an hour and uploads its backlog through an OrderedSender twice, each time to a fresh detector
model: with a lane per input, then with each room's two inputs in one lane.
"""

import argparse
import json
import random
import sys
import tempfile
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from ordered_sender import ByInput, ByInputGroup, LaneFunction, OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator

SETUP = json.loads((Path(__file__).parent / "detector_models" / "two_inputs.json").read_text())
MODEL = SETUP["detectorModel"]["detectorModelName"]
# What each story leaves in a room's detector, as "stateName heatingFaults".
EXPECTED = {"aired": "Comfortable 0", "heating fails": "HeatingFault 1", "quiet": "Comfortable 0"}
Event = tuple[int, str, dict[str, Any]]  # second of the hour, input name, payload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url", help="IoT Events endpoint (default: an embedded one)")
    args = parser.parse_args()
    rng = random.Random(7)
    stories = {f"room-{n:02d}": rng.choice(list(EXPECTED)) for n in range(1, 9)}
    events = [event for room, story in stories.items() for event in hour(room, story, rng)]
    backlog = sorted(events, key=lambda event: event[0])  # as they happened, room after room
    url = args.endpoint_url or "the embedded endpoint"
    with ExitStack() as stack:
        try:
            iotevents, data = connect(stack, args.endpoint_url)
            print(f"{len(stories)} rooms, to IoT Events at {data.meta.endpoint_url}")
            # The default lanes, one per input: each input stays in order, but nothing orders a
            # room's door events against its temperatures, and the door lane, short, runs ahead.
            per_input = send_backlog(stack, iotevents, data, ByInput(), backlog, stories)
            # The detector reads both inputs, so both go in one lane; one per room (key roomid),
            # as rooms need no order between them and a request then carries the heads of ten.
            lanes = ByInputGroup({"room": ("DoorInput", "TemperatureInput")}, key="roomid")
            grouped = send_backlog(stack, iotevents, data, lanes, backlog, stories)
        except (NoCredentialsError, NoRegionError) as error:
            sys.exit(f"error: {error} (for a local endpoint, any region and credentials will do)")
        except (BotoCoreError, ClientError) as error:
            sys.exit(f"error: IoT Events at {url}: {error}")

    print(f"\n{'room':<9}{'story':<15}{'expected':<16}{'ByInput()':<23}ByInputGroup")
    for room, story in stories.items():
        want = EXPECTED[story]
        cells = [
            f"{r[room]:<16}{'ok' if r[room] == want else 'WRONG'}" for r in (per_input, grouped)
        ]
        print(f"{room:<9}{story:<15}{want:<16}{cells[0]:<23}{cells[1]}")
    for lane, found in (("ByInput()", per_input), ("ByInputGroup", grouped)):
        wrong = sum(found[room] != EXPECTED[story] for room, story in stories.items())
        print(f"{lane + ':':<14}{wrong} of {len(stories)} rooms wrong")
    return 0 if all(grouped[room] == EXPECTED[story] for room, story in stories.items()) else 1


def hour(room: str, story: str, rng: random.Random) -> list[Event]:
    """A room's hour: a temperature each minute, and the door opened and closed if aired."""
    events: list[Event] = []
    start = rng.randint(10, 30)  # the minute the door opens or the heating fails
    end = start + rng.randint(5, 15)  # the minute the door closes again
    for minute in range(60):
        if story == "aired" and minute in (start, end):
            door = "open" if minute == start else "closed"
            events.append((minute * 60 + 10, "DoorInput", {"roomid": room, "door": door}))
        if story == "aired":
            # Winter: cold at once with the door open; the radiator under it warms up fast.
            temperature = 14.0 if start <= minute < end else 20.5
        elif story == "heating fails":
            temperature = max(21.0 - 0.5 * max(minute - start, 0), 12.0)
        else:
            temperature = 21.0
        payload = {"roomid": room, "temperature": temperature}
        events.append((minute * 60 + 30, "TemperatureInput", payload))
    return events


def connect(stack: ExitStack, endpoint_url: str | None) -> tuple[Any, Any]:
    """boto3 clients of the control plane (inputs, detector models) and of the data plane."""
    if endpoint_url is None:
        # The embedded local endpoint, in this process; its clients carry dummy credentials.
        emulator = stack.enter_context(Emulator(seed=7))
        return emulator.client("iotevents"), emulator.client("iotevents-data")
    # Short timeouts and two attempts: an endpoint that does not answer fails within seconds.
    config = Config(connect_timeout=3, read_timeout=5, retries={"total_max_attempts": 2})
    try:
        control = boto3.client("iotevents", endpoint_url=endpoint_url, config=config)
        data = boto3.client("iotevents-data", endpoint_url=endpoint_url, config=config)
    except ValueError as error:  # boto3's "Invalid endpoint"
        sys.exit(f"error: --endpoint-url: {error}")
    return control, data


def send_backlog(
    stack: ExitStack,
    iotevents: Any,
    data: Any,
    lane: LaneFunction,
    backlog: list[Event],
    stories: dict[str, str],
) -> dict[str, str]:
    """The backlog through an OrderedSender with these lanes, to a fresh detector model; every
    room's detector as DescribeDetector then shows it: state and heatingFaults."""
    for request in SETUP["inputs"]:
        with suppress(iotevents.exceptions.ResourceAlreadyExistsException):
            iotevents.create_input(**request)
    with suppress(iotevents.exceptions.ResourceNotFoundException):
        iotevents.delete_detector_model(detectorModelName=MODEL)
    iotevents.create_detector_model(**SETUP["detectorModel"])
    # A real program keeps its outbox where it lasts: undelivered messages survive a restart
    # there. This example starts afresh each time.
    directory = stack.enter_context(tempfile.TemporaryDirectory())
    with OrderedSender(Path(directory) / "outbox.db", data, SenderConfig(lane=lane)) as sender:
        sender.put_many((input_name, payload) for _, input_name, payload in backlog)
        if not sender.flush(timeout=60):
            sys.exit(f"error: not delivered within 60 s: {sender.counts()}")
    found = {}
    for room in stories:
        state = data.describe_detector(detectorModelName=MODEL, keyValue=room)["detector"]["state"]
        variables = {variable["name"]: variable["value"] for variable in state["variables"]}
        found[room] = f"{state['stateName']} {variables['heatingFaults']}"
    return found


if __name__ == "__main__":
    sys.exit(main())

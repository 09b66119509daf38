"""Motor pressure: a stateful detector needs each motor's readings in the order they were taken.

The model is the AWS IoT Events developer guide's (detector_models/motor_pressure.json): a motor's
detector goes Dangerous on a pressure above 70, Normal again after three readings of 70 or less,
counted down in ``pressureThresholdBreached``. Each motor's gateway uploads ten readings at a
time, sent naively (an upload per BatchPutMessage request, whose messages IoT Events processes in
no guaranteed order), then through an OrderedSender, each time to a fresh detector model.
"""

import argparse
import json
import random
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from ordered_sender import ByInputAndKey, OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator

SETUP = json.loads((Path(__file__).parent / "detector_models" / "motor_pressure.json").read_text())
MODEL = SETUP["detectorModel"]["detectorModelName"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url", help="IoT Events endpoint (default: an embedded one)")
    args = parser.parse_args()
    rng = random.Random(7)
    # Each motor's pump struggles: its pressure keeps crossing the threshold of 70.
    readings = {f"motor-{n:02d}": [rng.randint(55, 85) for _ in range(30)] for n in range(1, 21)}
    url = args.endpoint_url or "the embedded endpoint"
    with ExitStack() as stack:
        try:
            iotevents, data = connect(stack, args.endpoint_url)
            print(f"20 motors, 30 readings each, to IoT Events at {data.meta.endpoint_url}")
            create_fresh_detector_model(iotevents)
            for upload in uploads(readings):
                # What a client without ordered_sender does: the whole upload in one request.
                data.batch_put_message(messages=[message(*reading) for reading in upload])
            naive = read_detectors(data, readings)

            create_fresh_detector_model(iotevents)
            # One lane per motor: a detector (key motorid) needs only its own readings in order.
            # One lane for the input (ByInput(), the default) would be right too, but one reading
            # at a time; with a lane per motor, a request carries the next reading of ten motors.
            config = SenderConfig(lane=ByInputAndKey("motorid"))
            # A real program keeps its outbox where it lasts: undelivered readings survive a
            # restart there. This example starts afresh each time.
            directory = stack.enter_context(tempfile.TemporaryDirectory())
            with OrderedSender(Path(directory) / "outbox.db", data, config) as sender:
                for upload in uploads(readings):
                    sender.put_many(upload)
                if not sender.flush(timeout=60):
                    sys.exit(f"error: not delivered within 60 s: {sender.counts()}")
            ordered = read_detectors(data, readings)
        except (NoCredentialsError, NoRegionError) as error:
            sys.exit(f"error: {error} (for a local endpoint, any region and credentials will do)")
        except (BotoCoreError, ClientError) as error:
            sys.exit(f"error: IoT Events at {url}: {error}")

    print(f"\n{'motor':<10}{'expected':<14}{'naive':<20}ordered")
    wanted = {motor: expected(pressures) for motor, pressures in readings.items()}
    for motor, want in wanted.items():
        cells = [f"{r[motor]:<13}{'ok' if r[motor] == want else 'WRONG'}" for r in (naive, ordered)]
        print(f"{motor:<10}{want:<14}{cells[0]:<20}{cells[1]}")
    for run, found in (("naive", naive), ("ordered", ordered)):
        wrong = sum(found[motor] != want for motor, want in wanted.items())
        print(f"{run + ':':<9}{wrong} of {len(wanted)} motors wrong")
    return 0 if ordered == wanted else 1


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


def create_fresh_detector_model(iotevents: Any) -> None:
    """The input if missing, and the detector model anew: no detector remembers an earlier run."""
    for request in SETUP["inputs"]:
        with suppress(iotevents.exceptions.ResourceAlreadyExistsException):
            iotevents.create_input(**request)
    with suppress(iotevents.exceptions.ResourceNotFoundException):
        iotevents.delete_detector_model(detectorModelName=MODEL)
    iotevents.create_detector_model(**SETUP["detectorModel"])


def uploads(readings: dict[str, list[int]]) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """What the gateways upload, oldest first: each motor's next ten (input name, payload)."""
    for start in range(0, len(next(iter(readings.values()))), 10):
        for motor, pressures in readings.items():
            yield [
                ("PressureInput", {"motorid": motor, "sensorData": {"pressure": pressure}})
                for pressure in pressures[start : start + 10]
            ]


def message(input_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    # A fresh id: IoT Events ignores a message whose id it saw in the last five minutes.
    encoded = json.dumps(payload).encode()
    return {"messageId": uuid.uuid4().hex, "inputName": input_name, "payload": encoded}


def read_detectors(data: Any, readings: dict[str, list[int]]) -> dict[str, str]:
    """Every motor's detector as DescribeDetector shows it: state and pressureThresholdBreached."""
    found = {}
    for motor in readings:
        state = data.describe_detector(detectorModelName=MODEL, keyValue=motor)["detector"]["state"]
        variables = {variable["name"]: variable["value"] for variable in state["variables"]}
        found[motor] = f"{state['stateName']} {variables['pressureThresholdBreached']}"
    return found


def expected(pressures: list[int]) -> str:
    """What the model makes of the readings in order. It evaluates BATCH: every condition sees
    the variables as they were before the reading."""
    state, breached = "Normal", 0
    for pressure in pressures:
        if pressure > 70:
            state, breached = "Dangerous", 3
        elif state == "Dangerous":
            # Normal again once the count before this reading is 1 or less; Normal resets it.
            state, breached = ("Normal", 0) if breached <= 1 else ("Dangerous", breached - 1)
    return f"{state} {breached}"


if __name__ == "__main__":
    sys.exit(main())

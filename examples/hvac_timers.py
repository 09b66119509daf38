"""HVAC timers: events processed out of order leave a timer running, or a heater without one.

The model (detector_models/hvac_timers.json), one detector per ``unitid``: heating "on" moves
Idle to Heating and starts a two-minute ``overrun`` timer; "off" clears it, back to Idle; when
the timer expires, Heating moves to Alarm. Each unit's gateway uploads the last minute's on/off
events at once, sent naively (one BatchPutMessage request per upload, whose messages IoT Events
processes in no guaranteed order), then through an OrderedSender, each time to a fresh detector
model. After the timers' two minutes, ListDetectors shows which units are in Alarm.
"""

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from ordered_sender import ByInputAndKey, OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator

SETUP = json.loads((Path(__file__).parent / "detector_models" / "hvac_timers.json").read_text())
MODEL = SETUP["detectorModel"]["detectorModelName"]
TIMERS_DONE = 150  # seconds after an upload by which the 120-second overrun timers expired


class SkippingClock:
    """The embedded endpoint's clock: real time plus the time skipped, so timers need no wait."""

    skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url", help="IoT Events endpoint (default: an embedded one)")
    args = parser.parse_args()
    rng = random.Random(7)
    # Each unit's minute: heating switched on and left on, on and off (a thermostat flicking),
    # or on, off and on again.
    kinds = ["on", "on off", "on off on"]
    uploads = {f"hvac-{n:02d}": rng.choice(kinds).split() for n in range(1, 11)}
    url = args.endpoint_url or "the embedded endpoint"
    clock = None if args.endpoint_url else SkippingClock()
    with ExitStack() as stack:
        try:
            iotevents, data = connect(stack, args.endpoint_url, clock)
            print(f"{len(uploads)} HVAC units, to IoT Events at {data.meta.endpoint_url}")
            create_fresh_detector_model(iotevents)
            for unit, switches in uploads.items():
                # What a client without ordered_sender does: the whole upload in one request.
                messages = [message({"unitid": unit, "heating": on_off}) for on_off in switches]
                data.batch_put_message(messages=messages)
            wait_for_timers(clock)
            naive = read_detectors(data)

            create_fresh_detector_model(iotevents)
            # One lane per unit: each detector (key unitid) needs its own events in order, and
            # units need no order between them, so a request carries the next event of ten units.
            config = SenderConfig(lane=ByInputAndKey("unitid"))
            # A real program keeps its outbox where it lasts: undelivered events survive a
            # restart there. This example starts afresh each time.
            directory = stack.enter_context(tempfile.TemporaryDirectory())
            with OrderedSender(Path(directory) / "outbox.db", data, config) as sender:
                for unit, switches in uploads.items():
                    sender.put_many(("HvacInput", {"unitid": unit, "heating": h}) for h in switches)
                if not sender.flush(timeout=60):
                    sys.exit(f"error: not delivered within 60 s: {sender.counts()}")
            wait_for_timers(clock)
            ordered = read_detectors(data)
        except (NoCredentialsError, NoRegionError) as error:
            sys.exit(f"error: {error} (for a local endpoint, any region and credentials will do)")
        except (BotoCoreError, ClientError) as error:
            sys.exit(f"error: IoT Events at {url}: {error}")

    print(f"\n{'unit':<9}{'upload':<12}{'expected':<10}{'naive':<16}ordered")
    # Heating that is on at the end of the upload overruns; heating switched off does not.
    wanted = {unit: "Alarm" if on_off[-1] == "on" else "Idle" for unit, on_off in uploads.items()}
    for unit, want in wanted.items():
        cells = [f"{r[unit]:<9}{'ok' if r[unit] == want else 'WRONG'}" for r in (naive, ordered)]
        print(f"{unit:<9}{' '.join(uploads[unit]):<12}{want:<10}{cells[0]:<16}{cells[1]}")
    for run, found in (("naive", naive), ("ordered", ordered)):
        wrong = sum(found[unit] != want for unit, want in wanted.items())
        print(f"{run + ':':<9}{wrong} of {len(wanted)} units wrong")
    return 0 if ordered == wanted else 1


def connect(
    stack: ExitStack, endpoint_url: str | None, clock: SkippingClock | None
) -> tuple[Any, Any]:
    """boto3 clients of the control plane (inputs, detector models) and of the data plane."""
    if endpoint_url is None:
        # The embedded local endpoint, in this process; its clients carry dummy credentials.
        emulator = stack.enter_context(Emulator(seed=7, clock=clock or time.time))
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


def message(payload: dict[str, Any]) -> dict[str, Any]:
    # A fresh id: IoT Events ignores a message whose id it saw in the last five minutes.
    encoded = json.dumps(payload).encode()
    return {"messageId": uuid.uuid4().hex, "inputName": "HvacInput", "payload": encoded}


def wait_for_timers(clock: SkippingClock | None) -> None:
    """Skip the embedded endpoint's clock past the timers; another endpoint runs in real time."""
    if clock is not None:
        clock.skipped += TIMERS_DONE
        return
    print(f"waiting {TIMERS_DONE} s of real time for the overrun timers", flush=True)
    time.sleep(TIMERS_DONE)


def read_detectors(data: Any) -> dict[str, str]:
    """Every unit's state, through ListDetectors (up to 250 in one page, more than enough here)."""
    page = data.list_detectors(detectorModelName=MODEL, maxResults=250)
    return {
        summary["keyValue"]: summary["state"]["stateName"] for summary in page["detectorSummaries"]
    }


if __name__ == "__main__":
    sys.exit(main())

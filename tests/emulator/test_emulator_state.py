"""``ordered-sender emulator --state PATH``: killed with SIGKILL between messages, restarted on
the same file, it has every input, model, detector and timer, and the de-duplication window."""

from __future__ import annotations

import copy
import json
import select
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from click.testing import CliRunner

from ordered_sender.emulator import Emulator
from ordered_sender.emulator.cli import emulator_command
from ordered_sender.emulator.detectors.examples import (
    MOTOR_DETECTOR_MODEL,
    MOTOR_INPUT,
    motor_payload,
)
from ordered_sender.testing import ManualClock

START = "from ordered_sender.emulator.cli import emulator_command; emulator_command()"
MODEL = MOTOR_DETECTOR_MODEL["detectorModelName"]


class Running:
    """One emulator process on ``state``; ``kill()`` is SIGKILL."""

    def __init__(self, state: Path) -> None:
        self.process = subprocess.Popen(
            # --input Extra on every start: restored from the file, not created again.
            [sys.executable, "-c", START, "--port", "0", "--state", str(state), "--input", "Extra"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        assert ready, "the emulator printed no endpoint URL within 30 s"
        self.url = self.process.stdout.readline().strip()

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}),
        )

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.kill()


def put(data: Any, message_id: str, pressure: int) -> None:
    payload = json.dumps(motor_payload("A32", pressure)).encode()
    response = data.batch_put_message(
        messages=[{"messageId": message_id, "inputName": "PressureInput", "payload": payload}]
    )
    assert response["BatchPutMessageErrorEntries"] == []


def described(data: Any) -> dict[str, Any]:
    detector: dict[str, Any] = data.describe_detector(detectorModelName=MODEL, keyValue="A32")[
        "detector"
    ]
    return detector


def stats(running: Running) -> dict[str, int]:
    with urllib.request.urlopen(f"{running.url}/_emulator/stats", timeout=5) as response:
        document: dict[str, int] = json.load(response)
    return document


def test_a_restart_after_sigkill_resumes_detectors_timers_and_deduplication(
    tmp_path: Path, processes: list[Running]
) -> None:
    state = tmp_path / "endpoint.sqlite"
    model = copy.deepcopy(MOTOR_DETECTOR_MODEL)
    dangerous = model["detectorModelDefinition"]["states"][1]
    dangerous["onEnter"]["events"][0]["actions"].append(
        {"setTimer": {"timerName": "recheck", "seconds": 600}}
    )
    first = Running(state)
    processes.append(first)
    first.client("iotevents").create_input(**MOTOR_INPUT)
    first.client("iotevents").create_detector_model(**model)
    put(first.client("iotevents-data"), "m1", 80)
    put(first.client("iotevents-data"), "m2", 60)
    before = described(first.client("iotevents-data"))

    first.kill()
    second = Running(state)
    processes.append(second)
    data = second.client("iotevents-data")
    after = described(data)
    put(data, "m2", 60)  # within five minutes of its first processing: ignored
    duplicates = stats(second)["duplicates_ignored"]
    put(data, "m3", 60)

    assert before["state"]["stateName"] == "Dangerous"
    assert [t["name"] for t in before["state"]["timers"]] == ["recheck"]
    assert after == before
    assert duplicates == 1
    assert described(data)["state"]["variables"] == [
        {"name": "pressureThresholdBreached", "value": "1"}
    ]
    control = second.client("iotevents")
    assert [i["inputName"] for i in control.list_inputs()["inputSummaries"]] == [
        "Extra",
        "PressureInput",
    ]
    assert (
        control.describe_detector_model(detectorModelName=MODEL)["detectorModel"][
            "detectorModelDefinition"
        ]
        == model["detectorModelDefinition"]
    )


def test_a_restored_timer_that_came_due_while_stopped_fires_on_the_next_read(
    tmp_path: Path,
) -> None:
    state = tmp_path / "endpoint.sqlite"
    clock = ManualClock()
    model = copy.deepcopy(MOTOR_DETECTOR_MODEL)
    dangerous = model["detectorModelDefinition"]["states"][1]
    dangerous["onEnter"]["events"][0]["actions"].append(
        {"setTimer": {"timerName": "recheck", "seconds": 600}}
    )
    dangerous["onInput"]["transitionEvents"].append(
        {"eventName": "recheck", "condition": 'timeout("recheck")', "nextState": "Normal"}
    )
    with Emulator(clock=clock, state_path=state) as first:
        first.client("iotevents").create_input(**MOTOR_INPUT)
        first.client("iotevents").create_detector_model(**model)
        put(first.client("iotevents-data"), "m1", 80)

    clock.advance(600)
    with Emulator(clock=clock, state_path=state) as second:
        state_name = described(second.client("iotevents-data"))["state"]["stateName"]

    assert state_name == "Normal"


def test_a_file_that_is_not_a_state_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    not_state = tmp_path / "notes.txt"
    not_state.write_text("these are notes, not a database\n" * 100)

    result = CliRunner().invoke(emulator_command, ["--state", str(not_state)])

    assert result.exit_code == 2
    assert "--state" in result.output
    assert "notes.txt" in result.output
    assert "Traceback" not in result.output


def test_what_is_deleted_or_forgotten_is_gone_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "endpoint.sqlite"
    clock = ManualClock()
    with Emulator(clock=clock, state_path=state) as first:
        first.client("iotevents").create_input(**MOTOR_INPUT)
        first.client("iotevents").create_detector_model(**MOTOR_DETECTOR_MODEL)
        data = first.client("iotevents-data")
        for message_id, motor in (("a", "A32"), ("b", "B7")):
            payload = json.dumps(motor_payload(motor, 80)).encode()
            data.batch_put_message(
                messages=[
                    {"messageId": message_id, "inputName": "PressureInput", "payload": payload}
                ]
            )
        data.batch_delete_detector(
            detectors=[{"messageId": "d", "detectorModelName": MODEL, "keyValue": "B7"}]
        )
        clock.advance(301)  # past the de-duplication window of "a" and "b"
        put(data, "c", 80)

    with Emulator(clock=clock, state_path=state) as second:
        data = second.client("iotevents-data")
        keys = [
            d["keyValue"] for d in data.list_detectors(detectorModelName=MODEL)["detectorSummaries"]
        ]
        put(data, "a", 60)

    assert keys == ["A32"]
    assert [m.message_id for m in second.processed()] == ["a"]

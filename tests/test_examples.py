"""The example scripts, run as a user runs them: ``python examples/<name>.py``, in a subprocess.

Each example sends the same messages naively (or with per-input lanes) and in order, to fresh
detectors, and compares what the detectors hold with what a plain-Python replay of the model
expects. These tests pin down that the in-order run matches the replay, that the naive run does
not for the seeds the examples use, and that the replays follow the detector models' rules.
"""

from __future__ import annotations

import importlib
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from ordered_sender.demos import motors
from ordered_sender.emulator import Emulator

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *arguments: str, status: int = 0) -> str:
    """Run ``examples/<name>.py``, check its exit status; its standard output, or its standard
    error when the status is not 0."""
    finished = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == status, finished.stdout + finished.stderr
    return finished.stdout if status == 0 else finished.stderr


def wrong_count(output: str, label: str) -> tuple[int, int]:
    """``(wrong, total)`` from a summary line such as ``naive run:   3 of 20 motors wrong``."""
    found = re.search(rf"^{re.escape(label)}:\s+(\d+) of (\d+) ", output, re.MULTILINE)
    assert found is not None, f"no summary line {label!r} in:\n{output}"
    return int(found[1]), int(found[2])


def table_rows(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


@pytest.fixture
def import_example(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Imports an example by name, finding its neighbours as ``python examples/x.py`` does."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module


@pytest.fixture
def detector_endpoint() -> Iterator[Emulator]:
    """Another endpoint with detector models, as ``--endpoint-url`` would reach."""
    with Emulator(seed=3) as emulator:
        yield emulator


def test_motor_pressure_gets_every_motor_right_in_order_and_some_wrong_in_naive_batches() -> None:
    output = run_example("motor_pressure", "--motors", "8", "--readings", "20")

    assert wrong_count(output, "ordered run") == (0, 8)
    naive_wrong, _ = wrong_count(output, "naive run")
    assert naive_wrong >= 1
    rows = table_rows(output, "motor-")
    assert len(rows) == 8
    assert all(row.endswith("ok") for row in rows)
    assert sum("WRONG" in row for row in rows) == naive_wrong


def test_motor_pressure_runs_against_another_endpoint_given_by_url(
    detector_endpoint: Emulator,
) -> None:
    output = run_example(
        "motor_pressure",
        "--endpoint-url",
        detector_endpoint.endpoint_url,
        "--motors",
        "5",
        "--readings",
        "20",
    )

    assert f"sent to {detector_endpoint.endpoint_url}" in output
    assert wrong_count(output, "ordered run") == (0, 5)
    # Both runs went to this endpoint: five motors times twenty readings, twice.
    assert len(detector_endpoint.processed("PressureInput")) == 2 * 5 * 20


def test_hvac_timers_raise_the_expected_alarms_only_when_order_holds() -> None:
    output = run_example("hvac_timers", "--units", "4", "--minutes", "30")

    assert wrong_count(output, "ordered run") == (0, 4)
    naive_wrong, _ = wrong_count(output, "naive run")
    assert naive_wrong >= 1
    rows = table_rows(output, "hvac-0")
    assert rows[0].split()[:3] == ["hvac-01", "12:45", "27:45"]
    assert rows[0].endswith("12:45 27:45  ok")
    assert any("false" in row for row in rows)
    assert "on at 00:41, off at 00:55: uploaded together at 01:00" in output


def test_two_inputs_keep_cross_input_order_only_in_a_grouped_lane() -> None:
    output = run_example("two_inputs", "--rooms", "4", "--minutes", "30")

    assert wrong_count(output, "grouped lane") == (0, 4)
    per_input_wrong, _ = wrong_count(output, "per-input lanes")
    assert per_input_wrong >= 1
    [failing] = [row for row in table_rows(output, "room-") if "heating fails" in row]
    assert failing.split()[-3:] == ["HeatingFault", "1", "ok"]


def test_an_example_refuses_a_size_below_one_naming_the_option() -> None:
    error = run_example("two_inputs", "--rooms", "0", status=2)

    assert "--rooms: must be a whole number of at least 1, got '0'" in error


def test_an_example_says_when_nothing_answers_at_the_endpoint_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    error = run_example("hvac_timers", "--endpoint-url", url, status=1)

    assert error.startswith(f"error: nothing answers at --endpoint-url {url} (")
    assert "Traceback" not in error


def test_motor_replay_follows_the_guide_dangerous_at_80_normal_after_three_readings_of_60() -> None:
    steps = [motors.expected_reading([80, 60, 60, 60][:count]) for count in range(1, 5)]

    assert [str(step) for step in steps] == [
        "Dangerous pressureThresholdBreached=3",
        "Dangerous pressureThresholdBreached=2",
        "Dangerous pressureThresholdBreached=1",
        "Normal pressureThresholdBreached=0",
    ]


def test_hvac_replay_alarms_after_the_overrun_unless_off_follows_in_the_same_upload(
    import_example: Callable[[str], ModuleType],
) -> None:
    hvac = import_example("hvac_timers")
    on, off = hvac.Heating.ON, hvac.Heating.OFF
    long_run = [hvac.HeatingEvent("u", 10, on), hvac.HeatingEvent("u", 1500, off)]
    short_run = [hvac.HeatingEvent("u", 10, on), hvac.HeatingEvent("u", 40, off)]

    # "on" is uploaded at 60 s; the timer expires at 60 + 630 s and is seen 15 s later.
    assert hvac.expected_alarms(long_run, 30) == (60 + 630 + 15,)
    assert hvac.expected_alarms(short_run, 30) == ()


def test_room_replay_counts_a_cold_reading_as_a_fault_only_with_the_door_closed(
    import_example: Callable[[str], ModuleType],
) -> None:
    rooms = import_example("two_inputs")
    door_open = rooms.RoomEvent("r", 10, door="open")
    cold = rooms.RoomEvent("r", 30, temperature=14.0)
    door_closed = rooms.RoomEvent("r", 50, door="closed")

    assert str(rooms.expected_reading([door_open, cold, door_closed])) == (
        "Comfortable doorOpen=0 heatingFaults=0"
    )
    assert str(rooms.expected_reading([cold, door_open, door_closed])) == (
        "HeatingFault doorOpen=0 heatingFaults=1"
    )

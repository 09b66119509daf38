"""The example scripts, run as a user runs them: ``python examples/<name>.py``, in a subprocess.

Each example sends the same messages two ways to fresh detectors, reads the detectors back and
prints a table: a row per detector with what was expected, what each way left, ``ok`` or
``WRONG``, then a count of wrong detectors per way. These tests pin down that the in-order way
got every detector right, that the other way went wrong where order matters, that an endpoint
that cannot be used is a one-line error, and that the examples stay short programs that use
only the library's public API, boto3 and the standard library.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import ordered_sender
from ordered_sender.emulator import Emulator

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ("motor_pressure", "hvac_timers", "two_inputs")


def run_example(
    name: str, *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>.py`` to its end, its output captured."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def output_of(name: str, *arguments: str) -> str:
    """The standard output of an example that exits with status 0 and says nothing on stderr."""
    finished = run_example(name, *arguments)
    assert (finished.returncode, finished.stderr) == (0, ""), finished.stdout + finished.stderr
    return finished.stdout


def rows(output: str, prefix: str) -> list[list[str]]:
    """The table rows of detectors whose key starts with ``prefix``, as lists of cells.

    Cells are separated by two spaces or more; a detector's reading and its verdict by one.
    """
    return [
        re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.startswith(prefix)
    ]


def wrong_count(output: str, label: str) -> tuple[int, int]:
    """``(wrong, total)`` from a summary line such as ``naive:   3 of 20 motors wrong``."""
    found = re.search(rf"^{re.escape(label)}:\s+(\d+) of (\d+) ", output, re.MULTILINE)
    assert found is not None, f"no summary line {label!r} in:\n{output}"
    return int(found[1]), int(found[2])


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def detector_endpoint() -> Iterator[Emulator]:
    """Another endpoint with detector models, as ``--endpoint-url`` would reach."""
    with Emulator(seed=3) as emulator:
        yield emulator


def test_motor_pressure_gets_every_motor_right_in_order_and_some_wrong_in_naive_batches() -> None:
    output = output_of("motor_pressure")

    table = rows(output, "motor-")
    assert len(table) == 20
    # Cells: motor, expected, naive reading, its verdict, ordered reading, its verdict.
    assert all(row[4:] == [row[1], "ok"] for row in table), output
    naive_wrong = [row for row in table if row[2:4] != [row[1], "ok"]]
    assert all(row[3] == "WRONG" for row in naive_wrong)
    assert wrong_count(output, "naive") == (len(naive_wrong), 20)
    assert len(naive_wrong) >= 1
    assert wrong_count(output, "ordered") == (0, 20)
    assert {row[1].split()[0] for row in table} == {"Normal", "Dangerous"}


def test_motor_pressure_runs_against_another_endpoint_given_by_url(
    detector_endpoint: Emulator,
) -> None:
    output = output_of("motor_pressure", "--endpoint-url", detector_endpoint.endpoint_url)

    assert f"to IoT Events at {detector_endpoint.endpoint_url}" in output
    assert wrong_count(output, "ordered") == (0, 20)
    # Both ways went to this endpoint: twenty motors times thirty readings, twice.
    assert len(detector_endpoint.processed("PressureInput")) == 2 * 20 * 30


def test_motor_expectation_follows_the_guide_dangerous_above_70_normal_after_three_below() -> None:
    expected = load_example("motor_pressure").expected

    assert [expected([80, 60, 60, 60][:count]) for count in range(1, 5)] == [
        "Dangerous 3",
        "Dangerous 2",
        "Dangerous 1",
        "Normal 0",
    ]
    assert expected([80, 60, 75, 60]) == "Dangerous 2"
    assert expected([70]) == "Normal 0"


def test_hvac_timers_alarm_exactly_where_heating_stays_on_only_when_order_holds() -> None:
    output = output_of("hvac_timers")

    table = rows(output, "hvac-")
    assert len(table) == 10
    # Cells: unit, upload, expected, naive state, its verdict, ordered state, its verdict.
    for unit, upload, expected, *_ in table:
        assert expected == ("Alarm" if upload.endswith("on") else "Idle"), unit
    assert all(row[5:] == [row[2], "ok"] for row in table), output
    naive_wrong = [row for row in table if row[3:5] != [row[2], "ok"]]
    assert wrong_count(output, "naive") == (len(naive_wrong), 10)
    # The timer left running by an "on" processed after its "off": a false alarm.
    assert ["on off", "Idle", "Alarm", "WRONG"] in [row[1:5] for row in naive_wrong], output
    assert wrong_count(output, "ordered") == (0, 10)


def test_two_inputs_keep_a_room_right_only_with_its_inputs_in_one_lane() -> None:
    output = output_of("two_inputs")

    table = rows(output, "room-")
    assert len(table) == 8
    # Cells: room, story, expected, per-input reading, its verdict, grouped reading, its verdict.
    assert all(row[5:] == [row[2], "ok"] for row in table), output
    assert {row[1] for row in table} == {"aired", "heating fails", "quiet"}
    failed = [row for row in table if row[1] == "heating fails"]
    assert all(row[2] == "HeatingFault 1" for row in failed)
    # Aired rooms: the door lane runs ahead, so cold readings taken with the door open count.
    aired = [row for row in table if row[1] == "aired"]
    assert all(row[3:5] == ["Comfortable 1", "WRONG"] for row in aired), output
    assert wrong_count(output, "ByInput()") == (len(aired), 8)
    assert wrong_count(output, "ByInputGroup") == (0, 8)


@pytest.mark.parametrize("name", NAMES)
def test_an_example_says_in_one_line_when_nothing_answers_at_the_endpoint_url(name: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    finished = run_example(name, "--endpoint-url", url)

    assert finished.returncode == 1
    assert finished.stderr.startswith(
        f"error: IoT Events at {url}: Could not connect to the endpoint URL"
    ), finished.stderr
    assert len(finished.stderr.splitlines()) == 1


@pytest.mark.parametrize("name", NAMES)
def test_an_example_refuses_an_endpoint_url_that_is_not_a_url(name: str) -> None:
    finished = run_example(name, "--endpoint-url", "not-a-url")

    assert finished.returncode == 1
    assert finished.stderr == "error: --endpoint-url: Invalid endpoint: not-a-url\n"


@pytest.mark.parametrize(
    ("unset", "missing"),
    [
        (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), "Unable to locate credentials"),
        (("AWS_DEFAULT_REGION", "AWS_REGION"), "You must specify a region."),
    ],
)
def test_an_example_says_a_local_endpoint_takes_any_region_and_credentials(
    detector_endpoint: Emulator, unset: tuple[str, ...], missing: str
) -> None:
    env = {name: value for name, value in os.environ.items() if name not in unset}

    finished = run_example("two_inputs", "--endpoint-url", detector_endpoint.endpoint_url, env=env)

    assert finished.returncode == 1
    assert finished.stderr == (
        f"error: {missing} (for a local endpoint, any region and credentials will do)\n"
    )


def test_an_example_gives_up_on_an_endpoint_that_never_answers_within_seconds() -> None:
    with socket.socket() as silent:
        # It listens, so connections are made, but never reads a request nor answers one.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        started = time.monotonic()
        finished = run_example("two_inputs", "--endpoint-url", url)
        took = time.monotonic() - started

    assert finished.returncode == 1
    assert finished.stderr == (
        f'error: IoT Events at {url}: Read timeout on endpoint URL: "{url}/inputs"\n'
    )
    # Two attempts of five seconds each, and the interpreter's start.
    assert took < 30


def test_the_tests_run_every_example() -> None:
    assert sorted(path.stem for path in EXAMPLES.glob("*.py")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_an_example_is_a_short_program(name: str) -> None:
    lines = (EXAMPLES / f"{name}.py").read_text().splitlines()

    assert len(lines) < 150


@pytest.mark.parametrize("name", NAMES)
def test_an_example_imports_only_the_public_api_boto3_and_the_standard_library(
    name: str,
) -> None:
    allowed = {
        "ordered_sender": set(ordered_sender.__all__),
        # The emulator's entry point, to start a local endpoint when no URL is given.
        "ordered_sender.emulator": {"Emulator"},
    }
    tree = ast.parse((EXAMPLES / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module in allowed:
            names = {alias.name for alias in node.names}
            assert names <= allowed[node.module], f"{node.module}: {names - allowed[node.module]}"
            continue
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            root = module.partition(".")[0]
            assert root in sys.stdlib_module_names or root in {"boto3", "botocore"}, module

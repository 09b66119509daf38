"""``ordered-sender pause``, run as a user runs it (a subprocess): it pauses a lane that `status`
then lists with its reason, says so when the lane was paused already, and refuses a lane with
nothing pending with one ``Error:`` line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from ordered_sender import Outbox
from ordered_sender.store import PAUSED_BY_OPERATOR

CliRunner = Callable[..., subprocess.CompletedProcess[str]]
"""The ``cli`` fixture of conftest.py: runs ``ordered-sender ARGS...`` as a subprocess."""


def fill(outbox: Path) -> None:
    with Outbox(outbox) as box:
        box.put_many(
            [("PressureInput", {"n": n}, f"p-{n}") for n in range(3)]
            + [("TemperatureInput", {"n": 0}, "t-0")]
        )


def test_pause_pauses_a_lane_that_status_lists_with_its_reason_until_resume(
    cli: CliRunner, outbox: Path
) -> None:
    fill(outbox)

    paused = cli("pause", "PressureInput", "--outbox", str(outbox), "--reason", "new model")
    status = cli("status", "--outbox", str(outbox))
    status_json = cli("status", "--outbox", str(outbox), "--output", "json")
    again = cli("pause", "PressureInput", "--outbox", str(outbox), "--reason", "other")
    with Outbox(outbox, create=False) as box:
        seen_by_the_library = [(p.lane, p.message_id, p.error_text) for p in box.paused_lanes()]
    resumed = cli("resume", "PressureInput", "--outbox", str(outbox))
    after = cli("status", "--outbox", str(outbox), "--output", "json")

    assert (paused.returncode, paused.stdout, paused.stderr) == (
        0,
        "paused lane PressureInput\n",
        "",
    )
    assert status.returncode == 0, status.stderr
    (row,) = [line for line in status.stdout.splitlines() if PAUSED_BY_OPERATOR in line]
    assert "PressureInput" in row and "p-0" in row and "new model" in row
    document = json.loads(status_json.stdout)
    assert document["counts"]["paused_lanes"] == 1
    assert document["counts"]["blocked"] == 3
    ((lane, code, text, message_id),) = [
        (p["lane"], p["error_code"], p["error_text"], p["message_id"])
        for p in document["paused_lanes"]
    ]
    assert (lane, code, text, message_id) == (
        "PressureInput",
        PAUSED_BY_OPERATOR,
        "new model",
        "p-0",
    )
    states = {entry["lane"]: entry["state"] for entry in document["lanes"]}
    assert states == {"PressureInput": "paused", "TemperatureInput": "ready"}
    assert (again.returncode, again.stdout) == (0, "lane PressureInput was already paused\n")
    assert seen_by_the_library == [("PressureInput", "p-0", "new model")]
    assert (resumed.returncode, resumed.stdout) == (0, "resumed lane PressureInput\n")
    assert json.loads(after.stdout)["paused_lanes"] == []


def test_pause_with_output_json_says_whether_the_lane_was_paused_already(
    cli: CliRunner, outbox: Path
) -> None:
    fill(outbox)

    first = cli("pause", "TemperatureInput", "--outbox", str(outbox), "--output", "json")
    second = cli(
        "pause", "TemperatureInput", "--outbox", str(outbox), "--reason", "x", "--output", "json"
    )

    assert first.returncode == 0, first.stderr
    document = json.loads(first.stdout)
    assert (document["lane"], document["already_paused"]) == ("TemperatureInput", False)
    pause = document["pause"]
    assert (pause["lane"], pause["message_id"], pause["error_code"]) == (
        "TemperatureInput",
        "t-0",
        PAUSED_BY_OPERATOR,
    )
    assert isinstance(pause["paused_at"], float)
    assert second.returncode == 0, second.stderr
    repeated = json.loads(second.stdout)
    # Paused already: the pause shown is the first one, its text unchanged.
    assert (repeated["already_paused"], repeated["pause"]) == (True, pause)


def test_pause_of_a_lane_with_nothing_pending_fails_with_one_error_line(
    cli: CliRunner, outbox: Path
) -> None:
    fill(outbox)

    result = cli("pause", "NoSuchLane", "--outbox", str(outbox))
    as_json = cli("pause", "NoSuchLane", "--outbox", str(outbox), "--output", "json")

    for refused in (result, as_json):
        assert refused.returncode == 1
        assert refused.stdout == ""
        (line,) = refused.stderr.splitlines()
        assert line.startswith("Error: lane 'NoSuchLane' has no pending messages")
    with Outbox(outbox, create=False) as box:
        assert box.paused_lanes() == []


def test_pause_refuses_a_missing_outbox_and_creates_nothing(cli: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"

    result = cli("pause", "PressureInput", "--outbox", str(missing))

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error:") and str(missing) in line
    assert not missing.exists()


def test_pause_has_help_with_dash_h(cli: CliRunner) -> None:
    short = cli("pause", "-h")
    assert short.returncode == 0, short.stderr
    assert short.stdout == cli("pause", "--help").stdout
    assert "--reason" in short.stdout and "PausedByOperator" in short.stdout

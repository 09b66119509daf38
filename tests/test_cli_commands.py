"""The ``ordered-sender`` command, run for real as a subprocess against the local endpoint.

The emulator runs in this process (so its record can be read directly); the command runs in a child
process with fake AWS credentials and ``--endpoint-url``, exactly as a user would run it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from ordered_sender.emulator import Emulator, Faults, TargetedFault
from ordered_sender.store.sqlite import SqliteStore

COMMAND = str(Path(sys.executable).parent / "ordered-sender")
DEADLINE_SECONDS = 60.0


def command_env() -> dict[str, str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        # Wide enough that rich never wraps a table row the assertions read.
        "COLUMNS": "200",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    return env


def run_command(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=DEADLINE_SECONDS,
    )


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds or the deadline passes (then fail naming ``what``)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.05)


def send_file(
    emulator: Emulator, source: Path, outbox: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    return run_command(
        "send", str(source), "--outbox", str(outbox), "--endpoint-url", emulator.endpoint_url,
        *options,
    )  # fmt: skip


def assert_processed_in_file_order(
    emulator: Emulator, documents: Sequence[Mapping[str, object]]
) -> None:
    """Each input's messages were processed in the order of the file's lines."""
    for input_name in {d["inputName"] for d in documents}:
        expected = [d["messageId"] for d in documents if d["inputName"] == input_name]
        assert [m.message_id for m in emulator.processed(str(input_name))] == expected


def write_lines(path: Path, documents: Sequence[Mapping[str, object]]) -> Path:
    path.write_text("".join(json.dumps(document) + "\n" for document in documents))
    return path


def pending_in(outbox: Path) -> int:
    store = SqliteStore(outbox)
    try:
        return store.counts().pending
    finally:
        store.close()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulator that shuffles every batch, with two inputs."""
    with Emulator(seed=11) as emu:
        emu.create_input("PressureInput")
        emu.create_input("TemperatureInput")
        yield emu


def messages(count: int) -> list[dict[str, object]]:
    """Messages alternating between two inputs, numbered in file order."""
    inputs = ("PressureInput", "TemperatureInput")
    return [
        {"inputName": inputs[n % 2], "payload": {"n": n}, "messageId": f"m-{n:03d}"}
        for n in range(count)
    ]


# -- demo ----------------------------------------------------------------------------------------


def test_demo_reports_every_lane_complete_and_in_order_through_faults() -> None:
    result = run_command("demo", "--messages", "120", "--lanes", "4", "--seed", "3")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: all 4 lanes arrived complete and in order" in result.stdout
    assert "request errors injected" in result.stdout
    lane_rows = [line for line in result.stdout.splitlines() if "/device-" in line]
    assert len(lane_rows) == 4
    assert all("yes" in row and "30" in row for row in lane_rows)


def test_demo_that_runs_out_of_time_reports_the_incomplete_lane_and_fails() -> None:
    # One lane of 2000 messages takes seconds even on a fast machine; 0.2 s is far too little.
    result = run_command("demo", "--messages", "2000", "--lanes", "1", "--timeout", "0.2")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "the timeout passed" in result.stdout
    assert "FAILED: lanes not complete and in order: FlowInput/device-001" in result.stdout


def test_demo_checks_order_through_the_record_of_another_emulator(emulator: Emulator) -> None:
    result = run_command(
        "demo", "--messages", "40", "--lanes", "2", "--endpoint-url", emulator.endpoint_url
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: all 2 lanes arrived complete and in order" in result.stdout
    assert len([m for m in emulator.processed() if m.message_id.startswith("demo-")]) == 40


def test_demo_against_an_unreachable_endpoint_fails_with_a_message_not_a_traceback() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"

    result = run_command("demo", "--endpoint-url", url)

    assert result.returncode == 1
    assert f"could not create input 'FlowInput' at {url}" in result.stderr
    assert "Traceback" not in result.stderr


# -- send ----------------------------------------------------------------------------------------


def test_send_delivers_every_line_in_file_order_per_input(
    emulator: Emulator, tmp_path: Path
) -> None:
    documents = messages(40)
    source = write_lines(tmp_path / "messages.jsonl", documents)

    result = send_file(emulator, source, tmp_path / "outbox.db")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "everything delivered in" in result.stdout
    assert_processed_in_file_order(emulator, documents)


def test_send_delivers_the_timestamp_of_each_line(emulator: Emulator, tmp_path: Path) -> None:
    documents = [
        {**document, "timestamp": 1_700_000_000_000 + n} for n, document in enumerate(messages(6))
    ]
    source = write_lines(tmp_path / "messages.jsonl", documents)

    result = send_file(emulator, source, tmp_path / "outbox.db")

    assert result.returncode == 0, result.stdout + result.stderr
    stamps = {m.message_id: m.timestamp_ms for m in emulator.processed()}
    assert stamps == {d["messageId"]: d["timestamp"] for d in documents}


def test_send_refuses_a_bad_line_naming_file_line_field_and_value_and_stores_nothing(
    emulator: Emulator, tmp_path: Path
) -> None:
    documents = messages(5)
    documents[2] = {"inputName": "Pressure Input", "payload": {"n": 2}}
    source = write_lines(tmp_path / "bad.jsonl", documents)
    outbox = tmp_path / "outbox.db"

    result = send_file(emulator, source, outbox)

    assert result.returncode == 1
    assert f"{source}:3: inputName='Pressure Input'" in result.stderr
    assert "Traceback" not in result.stderr
    assert pending_in(outbox) == 0
    assert emulator.processed() == []


def test_send_refuses_a_message_id_already_in_the_outbox_naming_its_line(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "messages.jsonl", messages(3))
    outbox = tmp_path / "outbox.db"

    first = run_command("send", str(source), "--outbox", str(outbox), "--no-wait")
    second = run_command("send", str(source), "--outbox", str(outbox), "--no-wait")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 1
    assert f"{source}:1: messageId='m-000': is already used by a message in this outbox" in (
        second.stderr
    )
    assert pending_in(outbox) == 3


def test_send_reads_bare_payloads_from_stdin_and_only_stores_them_with_no_wait(
    emulator: Emulator, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.db"
    lines = "".join(json.dumps({"motorid": f"motor-{n % 3}", "n": n}) + "\n" for n in range(9))

    result = run_command(
        "send", "-", "--outbox", str(outbox), "--input-name", "PressureInput",
        "--lane-key", "motorid", "--no-wait", "--endpoint-url", emulator.endpoint_url,
        stdin=lines,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "stored 9 messages from <stdin>" in result.stdout
    store = SqliteStore(outbox)
    try:
        assert store.counts().lanes == 3
        assert store.counts().pending == 9
    finally:
        store.close()
    assert emulator.processed() == []


# -- status, resume, run -------------------------------------------------------------------------


def test_status_and_resume_show_and_restart_a_lane_paused_by_a_permanent_fault(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.set_faults(Faults(targeted=(TargetedFault("InvalidRequestException", "m-002"),)))
    documents = [
        {"inputName": "PressureInput", "payload": {"n": n}, "messageId": f"m-{n:03d}"}
        for n in range(5)
    ]
    source = write_lines(tmp_path / "messages.jsonl", documents)
    outbox = tmp_path / "outbox.db"

    sent = send_file(emulator, source, outbox)
    status = run_command("status", "--outbox", str(outbox))
    resumed = run_command("resume", "--outbox", str(outbox), "PressureInput")
    # Sending an empty file delivers what waits in the outbox, the resumed lane included.
    sent_again = send_file(emulator, Path(os.devnull), outbox)

    assert sent.returncode == 1
    assert "3 messages not delivered (1 paused lane)" in sent.stdout
    assert status.returncode == 0, status.stderr
    paused_row = next(line for line in status.stdout.splitlines() if "m-002" in line)
    assert "PressureInput" in paused_row
    assert "InvalidRequestException" in paused_row
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed lane PressureInput" in resumed.stdout
    assert sent_again.returncode == 0, sent_again.stdout + sent_again.stderr
    assert [m.message_id for m in emulator.processed()] == [d["messageId"] for d in documents]


def test_resume_all_restarts_every_paused_lane(emulator: Emulator, tmp_path: Path) -> None:
    emulator.set_faults(
        Faults(
            targeted=(
                TargetedFault("InvalidRequestException", "m-000"),
                TargetedFault("InvalidRequestException", "m-001"),
            )
        )
    )
    documents = messages(4)
    source = write_lines(tmp_path / "messages.jsonl", documents)
    outbox = tmp_path / "outbox.db"

    sent = send_file(emulator, source, outbox)
    resumed = run_command("resume", "--outbox", str(outbox), "--all")
    sent_again = send_file(emulator, Path(os.devnull), outbox)

    assert sent.returncode == 1
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(resumed.stdout.splitlines()) == [
        "resumed lane PressureInput",
        "resumed lane TemperatureInput",
    ]
    assert sent_again.returncode == 0, sent_again.stdout + sent_again.stderr
    assert_processed_in_file_order(emulator, documents)


def test_resume_of_a_lane_that_is_not_paused_fails_naming_the_lane(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    SqliteStore(outbox).close()

    result = run_command("resume", "--outbox", str(outbox), "NoSuchLane")

    assert result.returncode == 1
    assert "lane 'NoSuchLane' is not paused; paused lanes: none" in result.stderr


def test_an_outbox_in_a_missing_directory_is_refused_naming_the_path(tmp_path: Path) -> None:
    outbox = tmp_path / "no-such-directory" / "outbox.db"

    result = run_command("send", os.devnull, "--outbox", str(outbox), "--no-wait")

    assert result.returncode == 1
    assert f"{outbox.parent} does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_emulator_command_is_part_of_the_main_command() -> None:
    result = run_command("emulator", "--help")

    assert result.returncode == 0
    assert "--request-error-rate" in result.stdout


def test_status_of_a_missing_outbox_fails_without_creating_it(tmp_path: Path) -> None:
    outbox = tmp_path / "missing.db"

    result = run_command("status", "--outbox", str(outbox))

    assert result.returncode == 1
    assert f"outbox {outbox} does not exist" in result.stderr
    assert not outbox.exists()


def run_until(
    emulator: Emulator, outbox: Path, condition: Callable[[], bool], what: str
) -> subprocess.CompletedProcess[str]:
    """Start ``ordered-sender run``, wait until ``condition`` holds, then stop it with SIGTERM."""
    daemon = subprocess.Popen(
        [COMMAND, "run", "--outbox", str(outbox), "--endpoint-url", emulator.endpoint_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=command_env(),
    )
    try:
        wait_until(condition, what)
        daemon.send_signal(signal.SIGTERM)
        stdout, stderr = daemon.communicate(timeout=DEADLINE_SECONDS)
    finally:
        daemon.kill()
    assert "Traceback" not in stderr
    return subprocess.CompletedProcess(daemon.args, daemon.returncode, stdout, stderr)


def test_run_delivers_the_outbox_and_stops_cleanly_on_sigterm(
    emulator: Emulator, tmp_path: Path
) -> None:
    documents = messages(30)
    source = write_lines(tmp_path / "messages.jsonl", documents)
    outbox = tmp_path / "outbox.db"
    assert send_file(emulator, source, outbox, "--no-wait").returncode == 0

    daemon = run_until(emulator, outbox, lambda: len(emulator.processed()) == 30, "all 30 arrived")

    assert daemon.returncode == 0, daemon.stderr
    assert "stopped: 0 messages kept in" in daemon.stdout
    assert pending_in(outbox) == 0
    assert_processed_in_file_order(emulator, documents)


def test_run_stopped_midway_keeps_the_rest_for_the_next_run_which_goes_on_in_order(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Slow answers, so SIGTERM arrives while most of the lane still waits.
    emulator.set_faults(Faults(latency_ms=(50, 50)))
    documents = [
        {"inputName": "PressureInput", "payload": {"n": n}, "messageId": f"m-{n:03d}"}
        for n in range(40)
    ]
    source = write_lines(tmp_path / "messages.jsonl", documents)
    outbox = tmp_path / "outbox.db"
    assert send_file(emulator, source, outbox, "--no-wait").returncode == 0

    first = run_until(emulator, outbox, lambda: len(emulator.processed()) >= 3, "a few arrived")
    kept = pending_in(outbox)
    emulator.set_faults(Faults())
    second = run_until(emulator, outbox, lambda: len(emulator.processed()) == 40, "all arrived")

    assert first.returncode == 0, first.stderr
    assert 0 < kept < 40
    assert f"stopped: {kept} messages kept in" in first.stdout
    assert second.returncode == 0, second.stderr
    assert f"{kept} messages pending in 1 lane;" in second.stdout
    assert [m.message_id for m in emulator.processed()] == [d["messageId"] for d in documents]


def test_log_json_writes_library_events_as_json_lines_on_stderr(
    emulator: Emulator, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "messages.jsonl", messages(2))

    result = run_command(
        "--log-level", "debug", "--log-json", "send", str(source),
        "--outbox", str(tmp_path / "outbox.db"), "--endpoint-url", emulator.endpoint_url,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    delivered = [e["message_id"] for e in events if e["event"] == "message.delivered"]
    assert sorted(delivered) == ["m-000", "m-001"]
    assert all("payload" not in event for event in events)


def test_default_log_level_keeps_routine_events_off_the_terminal(
    emulator: Emulator, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "messages.jsonl", messages(2))

    result = send_file(emulator, source, tmp_path / "outbox.db")

    assert result.returncode == 0, result.stderr
    assert "message.delivered" not in result.stderr
    assert "sender.started" not in result.stderr


def test_status_of_a_file_that_is_not_an_outbox_fails_clearly(tmp_path: Path) -> None:
    not_outbox = tmp_path / "notes.txt"
    not_outbox.write_text("shopping list\n" * 200)

    result = run_command("status", "--outbox", str(not_outbox))

    assert result.returncode == 1
    assert f"{not_outbox} is not an SQLite database, so not an ordered-sender outbox" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_resume_while_run_is_delivering_restarts_the_lane_without_stopping_the_daemon(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.set_faults(Faults(targeted=(TargetedFault("InvalidRequestException", "m-001"),)))
    documents = [
        {"inputName": "PressureInput", "payload": {"n": n}, "messageId": f"m-{n:03d}"}
        for n in range(5)
    ]
    source = write_lines(tmp_path / "messages.jsonl", documents)
    outbox = tmp_path / "outbox.db"
    assert send_file(emulator, source, outbox, "--no-wait").returncode == 0
    resumes: list[subprocess.CompletedProcess[str]] = []

    def all_arrived_after_resuming_the_paused_lane() -> bool:
        if not resumes and "m-001" in run_command("status", "--outbox", str(outbox)).stdout:
            resumes.append(run_command("resume", "--outbox", str(outbox), "PressureInput"))
        return len(emulator.processed()) == 5

    daemon = run_until(
        emulator, outbox, all_arrived_after_resuming_the_paused_lane, "resumed and delivered"
    )

    assert [result.returncode for result in resumes] == [0]
    assert daemon.returncode == 0, daemon.stderr
    assert [m.message_id for m in emulator.processed()] == [d["messageId"] for d in documents]

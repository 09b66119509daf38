"""What a user sees while the command works and after it stops: progress on a terminal and in a
pipe, the exit status and summary of an interrupted ``send`` or ``run``, ``status`` and
``dead-letters list`` as JSON, and tables that never cut an id. Each runs the command as a
subprocess against the emulator on 127.0.0.1, with real signals."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from ordered_sender import OrderedSender, Outbox, SenderConfig
from ordered_sender.emulator import Emulator, Faults
from ordered_sender.message import Message
from ordered_sender.store.sqlite import SqliteStore
from ordered_sender.testing import MockTransport
from ordered_sender.transport import BatchResponse, EntryError

COMMAND = str(Path(sys.executable).parent / "ordered-sender")
DEADLINE_SECONDS = 60.0
LANE_MESSAGES = 40
SLOW = Faults(latency_ms=(40, 40))
"""Slow enough answers that a signal arrives while most of one lane still waits."""
PROGRESS_LINE = re.compile(r"^(\d+) delivered \(\d+/s\), (\d+) pending in \d+ lanes?")


def command_env(**changes: str) -> dict[str, str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        **changes,
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION", "COLUMNS"):
        if name not in changes:
            env.pop(name, None)
    return env


def one_lane(outbox: Path, count: int = LANE_MESSAGES) -> list[str]:
    """``count`` messages in one lane, stored without the command; their ids in order."""
    ids = [f"m-{n:03d}" for n in range(count)]
    with Outbox(outbox) as producer:
        producer.put_many(("PressureInput", {"n": n}, ids[n]) for n in range(count))
    return ids


def kept(outbox: Path) -> tuple[str | None, int]:
    """The head of the one lane still pending (None if none) and how many messages wait."""
    store = SqliteStore(outbox, create=False, read_only=True)
    try:
        heads = store.lanes_overview(100)
        pending = store.counts().pending
    finally:
        store.close()
    assert len(heads) <= 1
    return (heads[0].head_message_id if heads else None), pending


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=3) as emu:
        emu.create_input("PressureInput")
        yield emu


class Watched:
    """A running command whose stdout lines are collected as they come, on a thread."""

    def __init__(self, args: Sequence[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [COMMAND, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, matches: Callable[[str], bool], what: str) -> str:
        with self._changed:
            found = self._changed.wait_for(
                lambda: (
                    any(matches(line) for line in self.lines) or self.process.poll() is not None
                ),
                timeout=DEADLINE_SECONDS,
            )
            line = next((line for line in self.lines if matches(line)), None)
        if not found or line is None:
            self.process.kill()
            pytest.fail(f"never saw {what}; stdout so far: {''.join(self.lines)!r}")
        return line

    def stop(self, signal_number: int) -> tuple[int, str, str]:
        """Send the signal; the exit status, the whole stdout and stderr."""
        self.process.send_signal(signal_number)
        try:
            status = self.process.wait(timeout=DEADLINE_SECONDS)
        finally:
            self.process.kill()
        self._reader.join(DEADLINE_SECONDS)
        assert self.process.stderr is not None
        return status, "".join(self.lines), self.process.stderr.read()


def test_run_writes_progress_lines_where_stdout_is_not_a_terminal_and_loses_nothing_on_sigterm(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.set_faults(SLOW)
    outbox = tmp_path / "outbox.db"
    ids = one_lane(outbox)
    run = Watched(
        ["run", "--outbox", str(outbox), "--endpoint-url", emulator.endpoint_url,
         "--progress-every", "0.2"],
        command_env(),
    )  # fmt: skip

    progress = run.wait_for_line(
        lambda line: bool(PROGRESS_LINE.match(line)) and not line.startswith("0 delivered"),
        "a progress line after the first delivery",
    )
    status, stdout, stderr = run.stop(signal.SIGTERM)

    assert status == 0, stderr
    assert "Traceback" not in stderr
    assert "pending in 1 lane" in progress
    processed = [m.message_id for m in emulator.processed("PressureInput")]
    head, pending = kept(outbox)
    # Nothing lost, nothing twice, in order: what arrived and what is kept make up the lane.
    assert 0 < len(processed) < LANE_MESSAGES
    assert processed == ids[: len(processed)]
    assert len(processed) + pending == LANE_MESSAGES
    assert head == ids[len(processed)]
    assert f"stopped: {pending} messages kept in {outbox}" in stdout


def test_run_shows_a_live_line_on_a_terminal(emulator: Emulator, tmp_path: Path) -> None:
    emulator.set_faults(SLOW)
    outbox = tmp_path / "outbox.db"
    one_lane(outbox)
    primary, secondary = pty.openpty()
    with subprocess.Popen(
        [COMMAND, "run", "--outbox", str(outbox), "--endpoint-url", emulator.endpoint_url],
        stdout=secondary,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=command_env(),
    ) as run:
        os.close(secondary)
        written = b""
        try:
            # The live line is redrawn in place as messages are delivered.
            while not re.search(rb"[1-9]\d* delivered \(\d+/s\), \d+ pending", written):
                chunk = os.read(primary, 4096)
                assert chunk, f"the terminal closed; it showed {written!r}"
                written += chunk
        finally:
            run.send_signal(signal.SIGTERM)
            run.wait(DEADLINE_SECONDS)
        os.close(primary)
    assert run.returncode == 0
    # Drawn for a terminal: rich moves the cursor to redraw the line.
    assert b"\x1b[" in written


@pytest.mark.parametrize(
    ("signal_number", "status"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
    ids=["ctrl-c", "sigterm"],
)
def test_send_stopped_by_a_signal_exits_128_plus_its_number_and_counts_as_status_does(
    emulator: Emulator, tmp_path: Path, signal_number: int, status: int
) -> None:
    emulator.set_faults(SLOW)
    source = tmp_path / "lane.jsonl"
    source.write_text(
        "".join(
            json.dumps({"inputName": "PressureInput", "payload": {"n": n}}) + "\n"
            for n in range(LANE_MESSAGES)
        )
    )
    outbox = tmp_path / "outbox.db"
    send = Watched(
        ["send", str(source), "--outbox", str(outbox), "--endpoint-url", emulator.endpoint_url,
         "--progress-every", "0.2"],
        command_env(),
    )  # fmt: skip
    send.wait_for_line(
        lambda line: bool(PROGRESS_LINE.match(line)) and not line.startswith("0 delivered"),
        "a progress line after the first delivery",
    )

    exit_status, stdout, stderr = send.stop(signal_number)
    shown = subprocess.run(
        [COMMAND, "status", "--outbox", str(outbox), "--output", "json"],
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=DEADLINE_SECONDS,
    )

    assert exit_status == status, stderr
    assert "Traceback" not in stderr
    summary = re.search(r"(\d+) messages? not delivered \(stopped by a signal", stdout)
    assert summary is not None, stdout
    pending = json.loads(shown.stdout)["counts"]["pending"]
    assert int(summary.group(1)) == pending
    assert 0 < pending < LANE_MESSAGES
    assert len(emulator.processed("PressureInput")) == LANE_MESSAGES - pending
    assert f"they stay in {outbox} for `ordered-sender run --outbox {outbox}`" in stdout


def test_run_stopped_with_ctrl_c_exits_130(emulator: Emulator, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    one_lane(outbox, 1)
    run = Watched(
        ["run", "--outbox", str(outbox), "--endpoint-url", emulator.endpoint_url], command_env()
    )
    run.wait_for_line(lambda line: line.startswith("delivering"), "the first line")

    status, stdout, stderr = run.stop(signal.SIGINT)

    assert status == 130, stderr
    assert "stopped:" in stdout
    assert "Traceback" not in stderr


def test_send_says_why_messages_wait_in_its_progress_lines_and_summary(tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_text('{"inputName": "motors", "payload": {"rpm": 1}}\n')
    result = subprocess.run(
        [COMMAND, "send", str(source), "--outbox", str(tmp_path / "outbox.db"),
         "--endpoint-url", "http://127.0.0.1:1", "--timeout", "3", "--progress-every", "0.5"],
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=DEADLINE_SECONDS,
    )  # fmt: skip

    assert result.returncode == 1
    progress = [line for line in result.stdout.splitlines() if PROGRESS_LINE.match(line)]
    assert any("waiting: EndpointConnectionError" in line for line in progress), result.stdout
    assert any("[Errno 111] Connection refused" in line for line in progress), result.stdout
    assert "1 message not delivered (the timeout passed; last error: EndpointConnection" in (
        result.stdout
    )


def test_a_region_from_aws_region_wins_over_aws_default_region(tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_text('{"inputName": "motors", "payload": {"rpm": 1}}\n')
    # The emulator refuses a signature scoped to any other region.
    with Emulator(region="eu-west-1", verify_signatures={"testing": "testing"}) as emulator:
        emulator.create_input("motors")
        result = subprocess.run(
            [COMMAND, "send", str(source), "--outbox", str(tmp_path / "outbox.db"),
             "--endpoint-url", emulator.endpoint_url, "--timeout", "30"],
            capture_output=True,
            text=True,
            env=command_env(AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="us-east-1"),
            timeout=DEADLINE_SECONDS,
        )  # fmt: skip
        processed = emulator.processed("motors")

    assert result.returncode == 0, result.stdout + result.stderr
    assert len(processed) == 1


def test_profile_option_reads_credentials_and_region_of_that_profile(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("[profile local]\nregion = eu-central-1\n")
    (tmp_path / "credentials").write_text(
        "[local]\naws_access_key_id = AKIDLOCAL\naws_secret_access_key = local-secret\n"
    )
    source = tmp_path / "one.jsonl"
    source.write_text('{"inputName": "motors", "payload": {"rpm": 1}}\n')
    env = command_env(
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        env.pop(name)
    with Emulator(region="eu-central-1", verify_signatures={"AKIDLOCAL": "local-secret"}) as emu:
        emu.create_input("motors")
        result = subprocess.run(
            [COMMAND, "send", str(source), "--outbox", str(tmp_path / "outbox.db"),
             "--endpoint-url", emu.endpoint_url, "--profile", "local", "--timeout", "30"],
            capture_output=True,
            text=True,
            env=env,
            timeout=DEADLINE_SECONDS,
        )  # fmt: skip
        processed = emu.processed("motors")

    assert result.returncode == 0, result.stdout + result.stderr
    assert len(processed) == 1


def failing(code: str, text: str) -> MockTransport:
    """A service that answers every message with the error entry ``code``."""

    def handler(messages: Sequence[Message]) -> BatchResponse:
        return BatchResponse(tuple(EntryError(m.message_id, code, text) for m in messages))

    return MockTransport(handler)


ERROR_TEXT = "attribute [sensorData] missing [/bold]"
LONG_ID = "id-" + "x" * 61
"""64 characters, the longest message id: wider than a narrow table column."""


def outbox_with_a_paused_lane_and_a_dead_letter(outbox: Path) -> None:
    with Outbox(outbox) as producer:
        producer.put("Paused", {"n": 0}, message_id=LONG_ID)
        producer.put("Paused", {"n": 1}, message_id="behind")
    pause = SenderConfig(on_permanent_failure="pause")
    # Brackets in an error text print as they are, never as rich markup.
    transport = failing("InvalidRequestException", ERROR_TEXT)
    with OrderedSender(outbox, transport=transport, config=pause, autostart=False) as sender:
        sender.deliver_due()
    with Outbox(outbox) as producer:
        producer.put("Dead", {"n": 0}, message_id="dead-1")
    dead_letter = SenderConfig(on_permanent_failure="dead_letter")
    with OrderedSender(outbox, transport=transport, config=dead_letter, autostart=False) as sender:
        sender.deliver_due()


def test_status_as_json_gives_counts_lanes_and_paused_lanes(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    outbox_with_a_paused_lane_and_a_dead_letter(outbox)

    result = subprocess.run(
        [COMMAND, "status", "--outbox", str(outbox), "--output", "json"],
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=DEADLINE_SECONDS,
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["outbox"] == str(outbox)
    assert document["counts"]["pending"] == 2
    assert document["counts"]["paused_lanes"] == 1
    assert document["counts"]["dead_letters"] == 1
    assert document["lanes_total"] == 1
    (lane,) = document["lanes"]
    assert lane["lane"] == "Paused"
    assert lane["state"] == "paused"
    assert lane["head_message_id"] == LONG_ID
    assert lane["last_error_code"] == "InvalidRequestException"
    (paused,) = document["paused_lanes"]
    assert paused["message_id"] == LONG_ID
    assert paused["error_text"] == ERROR_TEXT


def test_dead_letters_list_as_json_names_each_letter_without_its_payload(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    outbox_with_a_paused_lane_and_a_dead_letter(outbox)

    result = subprocess.run(
        [COMMAND, "dead-letters", "list", "--outbox", str(outbox), "--output", "json"],
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=DEADLINE_SECONDS,
    )

    assert result.returncode == 0, result.stderr
    (letter,) = json.loads(result.stdout)
    assert letter["message_id"] == "dead-1"
    assert letter["lane"] == "Dead"
    assert letter["error_code"] == "InvalidRequestException"
    assert "payload" not in letter


@pytest.mark.parametrize("columns", ["40", "200"])
def test_tables_keep_every_id_whole_on_one_line_when_stdout_is_not_a_terminal(
    tmp_path: Path, columns: str
) -> None:
    outbox = tmp_path / "outbox.db"
    outbox_with_a_paused_lane_and_a_dead_letter(outbox)

    status = subprocess.run(
        [COMMAND, "status", "--outbox", str(outbox)],
        capture_output=True,
        text=True,
        env=command_env(COLUMNS=columns),
        timeout=DEADLINE_SECONDS,
    )

    assert status.returncode == 0, status.stderr
    lane_rows = [line for line in status.stdout.splitlines() if LONG_ID in line]
    # Whole in the lanes table and in the paused lanes table.
    assert len(lane_rows) == 2, status.stdout
    assert all(ERROR_TEXT in row for row in lane_rows)


def test_send_to_an_endpoint_that_never_answers_gives_up_after_the_stall_timeout(
    tmp_path: Path,
) -> None:
    source = tmp_path / "one.jsonl"
    source.write_text('{"inputName": "motors", "payload": {"rpm": 1}}\n')
    outbox = tmp_path / "outbox.db"
    result = subprocess.run(
        [COMMAND, "send", str(source), "--outbox", str(outbox),
         "--endpoint-url", "http://127.0.0.1:1", "--stall-timeout", "1.5"],
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=DEADLINE_SECONDS,
    )  # fmt: skip

    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "1 message not delivered (nothing was delivered within --stall-timeout; last error: "
        "EndpointConnectionError"
    ) in result.stdout
    _, pending = kept(outbox)
    assert pending == 1


def test_send_that_keeps_delivering_is_not_stalled_however_long_it_takes(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.set_faults(SLOW)
    source = tmp_path / "lane.jsonl"
    source.write_text(
        "".join(
            json.dumps({"inputName": "PressureInput", "payload": {"n": n}}) + "\n"
            for n in range(LANE_MESSAGES)
        )
    )
    # Forty answers of 40 ms in one lane take far longer than the stall timeout in all.
    result = subprocess.run(
        [COMMAND, "send", str(source), "--outbox", str(tmp_path / "outbox.db"),
         "--endpoint-url", emulator.endpoint_url, "--stall-timeout", "1"],
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=DEADLINE_SECONDS,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "everything delivered in" in result.stdout
    assert len(emulator.processed("PressureInput")) == LANE_MESSAGES


def reading_stdin(pid: int) -> bool:
    """Whether the process waits in read(2) on its standard input (Linux: /proc/PID/syscall)."""
    try:
        number, first_argument, *_ = Path(f"/proc/{pid}/syscall").read_text().split()
    except (OSError, ValueError):
        return False
    return number == "0" and first_argument == "0x0"


def test_ctrl_c_while_send_reads_its_input_exits_130_without_a_traceback(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    with subprocess.Popen(
        [COMMAND, "send", "-", "--outbox", str(outbox), "--no-wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=command_env(),
    ) as send:
        assert send.stdin is not None
        send.stdin.write('{"inputName": "motors", "payload": {"rpm": 1}}\n')
        send.stdin.flush()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not reading_stdin(send.pid):  # it waits for the rest of its input
            assert send.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        send.send_signal(signal.SIGINT)
        _, stderr = send.communicate(timeout=DEADLINE_SECONDS)

    assert send.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip() == "interrupted"
    assert not outbox.exists()

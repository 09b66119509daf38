"""The operator's commands, run for real as subprocesses: status, dead-letters, and ``run`` on an
outbox that is missing or disappears."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import tenacity

from ordered_sender import OrderedSender, Outbox, SenderConfig
from ordered_sender.emulator import Emulator
from ordered_sender.message import Message
from ordered_sender.testing import MockTransport
from ordered_sender.transport import BatchResponse, EntryError

CliRunner = Callable[..., subprocess.CompletedProcess[str]]
"""The ``cli`` fixture of conftest.py: runs ``ordered-sender ARGS...`` as a subprocess."""
TmpfsMount = Callable[[Path, str], AbstractContextManager[Path]]
"""The ``tmpfs`` fixture of conftest.py."""


def failing(code: str, text: str = "") -> MockTransport:
    """A service that answers every message with the error entry ``code``."""

    def handler(messages: Sequence[Message]) -> BatchResponse:
        return BatchResponse(tuple(EntryError(m.message_id, code, text) for m in messages))

    return MockTransport(handler)


def deliver_once(outbox: Path, transport: MockTransport, config: SenderConfig) -> None:
    with OrderedSender(outbox, transport=transport, config=config, autostart=False) as sender:
        sender.deliver_due()


def test_run_refuses_a_missing_outbox_and_creates_nothing(cli: CliRunner, tmp_path: Path) -> None:
    outbox = tmp_path / "typo.db"

    result = cli("run", "--outbox", str(outbox), "--endpoint-url", "http://127.0.0.1:9")

    assert result.returncode == 1
    assert f"outbox {outbox} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_run_stops_with_status_1_when_its_outbox_is_deleted(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.create_input("A")
    outbox = tmp_path / "outbox.db"
    with Outbox(outbox) as producer:
        producer.put("A", {"n": 0}, message_id="first")
    daemon = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ordered-sender"),
            "run",
            "--outbox",
            str(outbox),
            "--endpoint-url",
            emulator.endpoint_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        assert daemon.stdout.readline().startswith(f"delivering {outbox}")
        wait_for(lambda: [m.message_id for m in emulator.processed("A")] == ["first"])
        os.unlink(outbox)
        stdout, stderr = daemon.communicate(timeout=30)
    finally:
        daemon.kill()

    assert daemon.returncode == 1, stdout + stderr
    assert f"outbox {outbox} was deleted" in stderr
    assert "Traceback" not in stderr


def wait_for(condition: object, seconds: float = 30.0) -> None:
    """Look at ``condition`` until it holds; the emulator runs in this process, so each look is
    cheap. Fails the test at the deadline."""
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def test_status_shows_each_lanes_attempts_next_attempt_and_last_error(
    cli: CliRunner, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.db"
    with Outbox(outbox) as producer:
        producer.put_many([("Slow", {"n": 0}, "slow-0"), ("Slow", {"n": 1}, "slow-1")])
        producer.put("Fresh", {"n": 0}, message_id="fresh-0")
    slow_only = SenderConfig(retry_wait=tenacity.wait_fixed(600))
    transport = failing("ThrottlingException", "rate exceeded")
    with OrderedSender(outbox, transport=transport, config=slow_only, autostart=False) as sender:
        (batch,) = sender.store.ready_heads(time.time(), {"Fresh"}, 1)
        assert batch.message.message_id == "slow-0"
        sender.deliver_due()

    result = cli("status", "--outbox", str(outbox))

    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    slow = rows["Slow"]
    assert "backoff" in slow and "slow-0" in slow
    assert "ThrottlingException: rate exceeded" in slow
    assert " in 59" in slow  # the next attempt, about 600 s away
    assert "│ 2 " in slow  # pending in the lane
    assert "pending messages" in result.stdout


def test_status_and_dead_letters_list_read_an_outbox_on_a_read_only_disk(
    cli: CliRunner, tmpfs: TmpfsMount, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        outbox = disk / "outbox.db"
        with Outbox(outbox) as producer:
            producer.put("A", {"n": 0}, message_id="waiting")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        status, letters, run = read_only_commands(cli, outbox)

    assert status.returncode == 0, status.stderr
    assert "waiting" in status.stdout
    assert letters.returncode == 0, letters.stderr
    assert "no dead letters" in letters.stdout
    assert run.returncode == 1
    assert "read-only" in run.stderr and "Traceback" not in run.stderr


def read_only_commands(
    cli: CliRunner, outbox: Path
) -> tuple[subprocess.CompletedProcess[str], ...]:
    status = cli("status", "--outbox", str(outbox))
    letters = cli("dead-letters", "list", "--outbox", str(outbox))
    run = cli("run", "--outbox", str(outbox), "--endpoint-url", "http://127.0.0.1:9")
    return status, letters, run


def test_dead_letters_are_listed_redriven_and_dropped_from_the_command_line(
    cli: CliRunner, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.db"
    with Outbox(outbox) as producer:
        producer.put("A", {"n": 0}, message_id="bad-a")
        producer.put("B", {"n": 0}, message_id="bad-b")
    dead_letter = SenderConfig(on_permanent_failure="dead_letter")
    deliver_once(outbox, failing("InvalidRequestException", "no such attribute"), dead_letter)

    listed = cli("dead-letters", "list", "--outbox", str(outbox))
    only_a = cli("dead-letters", "list", "--outbox", str(outbox), "--lane", "A")
    redriven = cli("dead-letters", "redrive", "--outbox", str(outbox), "bad-a")
    dropped = cli("dead-letters", "drop", "--outbox", str(outbox), "bad-b")
    unknown = cli("dead-letters", "drop", "--outbox", str(outbox), "bad-b")
    status = cli("status", "--outbox", str(outbox))

    assert listed.returncode == 0, listed.stderr
    bad_a = next(line for line in listed.stdout.splitlines() if "bad-a" in line)
    assert "InvalidRequestException: no such attribute" in bad_a
    assert "bad-b" in listed.stdout
    assert "bad-b" not in only_a.stdout
    assert redriven.stdout.strip() == "redriven bad-a to the head of lane A"
    assert dropped.stdout.strip() == "dropped bad-b"
    assert unknown.returncode == 1
    assert "'bad-b' is not a dead letter" in unknown.stderr
    assert status.returncode == 0
    lane_a = next(line for line in status.stdout.splitlines() if "bad-a" in line)
    assert "ready" in lane_a
    with Outbox(outbox) as check:
        assert check.dead_letters() == []
        assert check.counts().pending == 1

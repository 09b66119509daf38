"""Storage faults end to end through the sender: a real full disk, a corrupt file, a closed outbox.

The full disk is a real tmpfs filled to the last byte by a filler file; the corrupt file has real
pages overwritten by another process; delivery goes through real boto3 over HTTP to the emulator.
These tests mount, so they run as root; elsewhere they are skipped with the reason.

Why the WAL is truncated before the disk is filled: SQLite reuses its -wal file from the start after
a checkpoint, so a small commit on a full disk may land in blocks the -wal already owns and
succeed. ``PRAGMA wal_checkpoint(TRUNCATE)``, run from a second connection while the sender is
idle, copies every commit into the main file and cuts the -wal to zero bytes. The next commit then
needs new blocks, which a full file system cannot give: it fails with SQLITE_FULL every time.
"""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, closing
from pathlib import Path
from typing import Any

import pytest
import structlog
import tenacity

from ordered_sender import OrderedSender, Outbox, SenderClosed, SenderConfig, StoreError
from ordered_sender.emulator import Emulator

FAST_RETRIES = SenderConfig(retry_wait=tenacity.wait_fixed(0.002))
WAIT_SECONDS = 20.0
"""The longest any condition below may take to come true before the test fails."""

TmpfsMount = Callable[[Path, str], AbstractContextManager[Path]]
"""The ``tmpfs`` fixture of conftest.py."""


def truncate_wal(path: Path) -> None:
    """Move every commit into the main file and cut the -wal to zero bytes (see the docstring)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0, "the checkpoint could not finish: something was still reading or writing"
    assert Path(f"{path}-wal").stat().st_size == 0


def fill(disk: Path) -> Path:
    """Write a filler file until the file system refuses a single byte more; returns it."""
    filler = disk / "filler"
    block = b"\0" * 4096
    with filler.open("wb", buffering=0) as out:
        for chunk in (block, b"\0"):
            while True:
                try:
                    out.write(chunk)
                except OSError as error:
                    assert error.errno == errno.ENOSPC
                    break
    return filler


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    tick = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS} s: {what}"
        tick.wait(0.01)


def sends_per_message(emu: Emulator) -> Counter[str]:
    return Counter(m.message_id for r in emu.requests() for m in r.messages)


def events(logs: Sequence[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in list(logs) if entry["event"] == name]


def processed_in_order(emu: Emulator) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for processed in emu.processed():
        seen.setdefault(processed.input_name, []).append(json.loads(processed.payload)["n"])
    return seen


# --- put on a full disk ---------------------------------------------------------------------


def test_put_on_a_full_disk_raises_store_error_stores_nothing_and_works_once_space_is_freed(
    tmp_path: Path, tmpfs: TmpfsMount, emulator: Emulator
) -> None:
    emulator.create_input("A")
    client = emulator.client("iotevents-data")
    with tmpfs(tmp_path / "disk", "1m") as disk:
        path = disk / "outbox.db"
        with OrderedSender(path, client=client, config=FAST_RETRIES, autostart=False) as sender:
            sender.put_many([("A", {"n": n}) for n in range(3)])
            outbox = Outbox(path)
            outbox.put("A", {"n": 3})
            before = sender.counts()
            truncate_wal(path)
            filler = fill(disk)

            with pytest.raises(StoreError) as from_sender:
                sender.put("A", {"n": 99}, message_id="refused-1")
            with pytest.raises(StoreError) as from_outbox:
                outbox.put_many([("A", {"n": 99}, f"refused-{n}") for n in range(2, 7)])
            for refused in (from_sender.value, from_outbox.value):
                assert str(path) in str(refused)
                assert "the disk is full (SQLITE_FULL)" in str(refused)
                assert isinstance(refused.__cause__, sqlite3.OperationalError)
            assert sender.counts() == before == outbox.counts()
            assert all(sender.store.status(f"refused-{n}") is None for n in range(1, 7))

            filler.unlink()
            outbox.put("A", {"n": 4})
            sender.put("A", {"n": 5})
            outbox.close()
            sender.start()
            assert sender.flush(timeout=WAIT_SECONDS)
            sender.put("A", {"n": 6})
            assert sender.flush(timeout=WAIT_SECONDS)

    assert processed_in_order(emulator) == {"A": list(range(7))}
    assert max(sends_per_message(emulator).values()) == 1


# --- a full disk while delivering -----------------------------------------------------------


def test_a_full_disk_while_delivering_stops_sending_says_so_once_and_resumes_by_itself(
    tmp_path: Path, tmpfs: TmpfsMount, emulator: Emulator
) -> None:
    """The first request goes out (three lanes' heads in one request), the emulator processes
    it, and recording its outcome fails: the disk is full. The sender must not send those heads
    again, nor anything else, until the outcome is recorded."""
    lanes = ("A", "B", "C")
    for lane in lanes:
        emulator.create_input(lane)
    with tmpfs(tmp_path / "disk", "1m") as disk:
        path = disk / "outbox.db"
        with (
            structlog.testing.capture_logs() as logs,
            OrderedSender(
                path, client=emulator.client("iotevents-data"), config=FAST_RETRIES, autostart=False
            ) as sender,
        ):
            sender.put_many([(lane, {"n": n}) for n in range(4) for lane in lanes])
            truncate_wal(path)
            filler = fill(disk)
            sender.start()

            # The recording is retried after 0.1, 0.2, 0.4 and 0.8 s: 1.5 s of a full disk (a
            # sender that resent instead would pass 3 requests long before).
            wait_until(
                lambda: (
                    len(events(logs, "outbox.still_unavailable")) >= 4
                    or len(emulator.requests()) > 3
                ),
                "four failed attempts to record the first outcome",
            )
            sent_while_full = sends_per_message(emulator)
            requests_while_full = len(emulator.requests())
            assert requests_while_full == 1
            assert {(m.input_name, json.loads(m.payload)["n"]) for m in emulator.processed()} == {
                (lane, 0) for lane in lanes
            }
            assert max(sent_while_full.values()) == 1
            unavailable = events(logs, "outbox.unavailable")
            assert len(unavailable) == 1
            assert unavailable[0]["log_level"] == "error"
            assert "the disk is full (SQLITE_FULL)" in unavailable[0]["error"]
            assert events(logs, "outbox.available") == []

            filler.unlink()
            assert sender.flush(timeout=WAIT_SECONDS)
            assert sender.counts().pending == 0

    assert processed_in_order(emulator) == {lane: list(range(4)) for lane in lanes}
    assert set(sends_per_message(emulator).values()) == {1}
    assert len(events(logs, "outbox.unavailable")) == 1
    assert len(events(logs, "outbox.available")) == 1


def test_deliver_due_raises_store_error_while_an_outcome_is_unrecorded_and_never_resends(
    tmp_path: Path, tmpfs: TmpfsMount, emulator: Emulator
) -> None:
    """deliver_due() sends in the caller's thread, so a resend loop would never return: it runs
    in a thread here, so that such a loop fails the test instead of hanging it."""
    emulator.create_input("A")
    with tmpfs(tmp_path / "disk", "1m") as disk:
        path = disk / "outbox.db"
        client = emulator.client("iotevents-data")
        with OrderedSender(path, client=client, config=FAST_RETRIES, autostart=False) as sender:
            sender.put_many([("A", {"n": n}) for n in range(3)])
            truncate_wal(path)
            filler = fill(disk)
            with ThreadPoolExecutor(1) as pool:
                for _ in range(3):
                    attempt = pool.submit(sender.deliver_due)
                    try:
                        error = attempt.exception(timeout=WAIT_SECONDS)
                    except TimeoutError:
                        filler.unlink()  # ends the resend loop this test is here to catch
                        pytest.fail(f"deliver_due() sent {len(emulator.requests())} requests")
                    assert isinstance(error, StoreError)
                    assert "the disk is full (SQLITE_FULL)" in str(error)
            assert len(emulator.requests()) == 1

            filler.unlink()
            assert sender.deliver_due() == 2  # the first outcome recorded, then the two others
            assert sender.counts().pending == 0
    assert processed_in_order(emulator) == {"A": [0, 1, 2]}
    assert len(emulator.requests()) == 3


# --- a file corrupted under a running sender ------------------------------------------------

CORRUPT_FROM_OUTSIDE = """
import sqlite3, sys
path = sys.argv[1]
# A commit of page 1 alone: it changes the WAL index, so the sender's connection drops the pages
# it caches and reads them from the file again.
connection = sqlite3.connect(path, isolation_level=None)
(version,) = connection.execute("PRAGMA user_version").fetchone()
connection.execute(f"PRAGMA user_version = {version}")
connection.close()
with open(path, "r+b") as file:  # every page but the first: all tables and indexes
    size = file.seek(0, 2)
    file.seek(4096)
    file.write(b"CORRUPT!" * ((size - 4096) // 8))
"""


def test_a_file_corrupted_while_delivering_stops_sending_says_so_once_and_closes_cleanly(
    tmp_path: Path, emulator: Emulator
) -> None:
    """Another process overwrites the outbox's pages while the first request is in flight (from
    the emulator's processor, before it answers). Recording that request's outcome then meets
    the damage: nothing may be sent again, the sender says so once, and close() raises nothing.
    Recovery is not expected: the file is damaged for good."""
    lanes = ("A", "B")
    for lane in lanes:
        emulator.create_input(lane)
    path = tmp_path / "outbox.db"
    corrupted = threading.Event()

    def corrupt_once(_: object) -> None:
        if not corrupted.is_set():
            corrupted.set()
            command = [sys.executable, "-c", CORRUPT_FROM_OUTSIDE, str(path)]
            subprocess.run(command, check=True, timeout=WAIT_SECONDS)

    emulator.add_processor(corrupt_once)
    with structlog.testing.capture_logs() as logs:
        sender = OrderedSender(
            path, client=emulator.client("iotevents-data"), config=FAST_RETRIES, autostart=False
        )
        try:
            sender.put_many([(lane, {"n": n}) for n in range(5) for lane in lanes])
            truncate_wal(path)  # so that the pages overwritten hold every message
            sender.start()
            wait_until(
                lambda: (
                    len(events(logs, "outbox.still_unavailable")) >= 4
                    or len(emulator.requests()) > 3
                ),
                "four failed attempts to record the first outcome",
            )
            assert len(emulator.requests()) == 1
            assert set(sends_per_message(emulator).values()) == {1}
            unavailable = events(logs, "outbox.unavailable")
            assert len(unavailable) == 1
            assert unavailable[0]["log_level"] == "error"
            assert "is damaged (SQLITE_CORRUPT" in unavailable[0]["error"]
            with pytest.raises(StoreError, match="is damaged"):
                sender.counts()
        finally:
            sender.close()
    assert len(emulator.requests()) == 1
    (lost,) = events(logs, "sender.outcomes_lost")
    assert lost["messages"] == len(lanes)
    assert lost["log_level"] == "error"


# --- after close ----------------------------------------------------------------------------

AFTER_CLOSE: dict[str, Callable[[Any], object]] = {
    "put": lambda o: o.put("A", {"n": 1}),
    "put_many": lambda o: o.put_many([("A", {"n": 1})]),
    "counts": lambda o: o.counts(),
    "paused_lanes": lambda o: o.paused_lanes(),
    "resume": lambda o: o.resume("A"),
    "dead_letters": lambda o: o.dead_letters(),
    "redrive": lambda o: o.redrive("m0"),
    "drop": lambda o: o.drop("m0"),
}

OUTBOX_AFTER_CLOSE: dict[str, Callable[[Any], object]] = {
    **AFTER_CLOSE,
    "pause_reason": lambda o: o.pause_reason("A"),
}


@pytest.mark.parametrize("call", sorted(OUTBOX_AFTER_CLOSE))
def test_every_method_of_a_closed_outbox_raises_sender_closed(tmp_path: Path, call: str) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.put("A", {"n": 0}, message_id="m0")
    outbox.close()
    with pytest.raises(SenderClosed, match="closed"):
        OUTBOX_AFTER_CLOSE[call](outbox)


SENDER_AFTER_CLOSE: dict[str, Callable[[Any], object]] = {
    **AFTER_CLOSE,
    "flush": lambda s: s.flush(timeout=1),
    "start": lambda s: s.start(),
    "deliver_due": lambda s: s.deliver_due(),
}


@pytest.mark.parametrize("autostart", [True, False], ids=["started", "not-started"])
@pytest.mark.parametrize("call", sorted(SENDER_AFTER_CLOSE))
def test_every_method_of_a_closed_sender_raises_sender_closed(
    tmp_path: Path, emulator: Emulator, call: str, autostart: bool
) -> None:
    sender = OrderedSender(
        tmp_path / "outbox.db", client=emulator.client("iotevents-data"), autostart=autostart
    )
    sender.put("A", {"n": 0}, message_id="m0")
    sender.close()
    with pytest.raises(SenderClosed, match="closed"):
        SENDER_AFTER_CLOSE[call](sender)


def test_a_receipt_of_a_closed_outbox_raises_sender_closed(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    receipt = outbox.put("A", {"n": 0}, message_id="m0")
    outbox.close()
    with pytest.raises(SenderClosed, match="closed"):
        receipt.delivered()

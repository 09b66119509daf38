"""Outbox: other processes put into an outbox while one sender delivers it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ordered_sender import (
    InvalidMessage,
    LanePaused,
    NotAnOutbox,
    OrderedSender,
    Outbox,
    SenderConfig,
    StoreError,
)
from ordered_sender.emulator import Emulator, Faults, TargetedFault
from ordered_sender.store.sqlite import SqliteStore
from ordered_sender.testing import MockTransport

PRODUCER = r"""
import sys
from ordered_sender import Outbox

with Outbox(sys.argv[1]) as outbox:
    receipts = [outbox.put(f"Lane{n % 2}", {"n": n}) for n in range(60)]
    for receipt in receipts:
        receipt.result(timeout=60)  # delivered by the sender in the test's process
print("all delivered", flush=True)
"""


def test_a_producer_process_puts_while_the_sender_delivers(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("Lane0")
    emulator.create_input("Lane1")
    config = SenderConfig(idle_poll_seconds=0.05)
    with OrderedSender(outbox, client=emulator.client("iotevents-data"), config=config):
        producer = subprocess.run(
            [sys.executable, "-c", PRODUCER, str(outbox)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert producer.returncode == 0, producer.stderr
    assert producer.stdout.strip() == "all delivered"
    for lane in (0, 1):
        numbers = [json.loads(p.payload)["n"] for p in emulator.processed(f"Lane{lane}")]
        assert numbers == list(range(lane, 60, 2))


def test_put_many_takes_message_ids_and_timestamps(outbox: Path) -> None:
    transport = MockTransport()
    with OrderedSender(outbox, transport=transport, autostart=False) as sender:
        sender.put_many([("A", {"n": 0}, "first", 1_000), ("A", {"n": 1}, None, 2_000)])
        sender.put_many([("A", {"n": 2})])
        sender.deliver_due()
    sent = [m for request in transport.requests for m in request]
    assert sent[0].message_id == "first"
    assert [m.timestamp_ms for m in sent[:2]] == [1_000, 2_000]
    assert sent[2].timestamp_ms is not None and sent[2].timestamp_ms > 2_000
    with pytest.raises(InvalidMessage, match="2 to 4 values"):
        Outbox(outbox).put_many([("A", {}, None, None, "extra")])  # type: ignore[list-item]


def test_an_outbox_receipt_reports_a_paused_lane(outbox: Path, emulator: Emulator) -> None:
    emulator.create_input("A")
    emulator.set_faults(
        Faults(targeted=(TargetedFault("InvalidRequestException", message_id="bad"),))
    )
    with Outbox(outbox) as producer:
        receipt = producer.put("A", {"n": 0}, message_id="bad")
        sender = OrderedSender(outbox, client=emulator.client("iotevents-data"), autostart=False)
        sender.deliver_due()
        sender.close()
        with pytest.raises(LanePaused, match="InvalidRequestException"):
            receipt.result(timeout=5)
        assert not receipt.delivered()


def test_opening_an_existing_outbox_never_changes_another_file(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (text)")
    with pytest.raises(NotAnOutbox, match="not an ordered-sender outbox"):
        SqliteStore(other, create=False)
    with pytest.raises(NotAnOutbox, match="does not exist"):
        SqliteStore(tmp_path / "missing.db", create=False)
    with sqlite3.connect(other) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master")]
    assert tables == ["notes"]
    with pytest.raises(StoreError, match="no-such-dir"):
        Outbox(tmp_path / "no-such-dir" / "outbox.db")

"""The outbox keeps the retry schedule across restarts; logs tell a message's life without its
payload."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import tenacity
from freezegun import freeze_time
from structlog.testing import capture_logs

from ordered_sender import InvalidMessage, OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator, Faults, TargetedFault
from ordered_sender.testing import ManualClock

BACKOFF = SenderConfig(retry_wait=tenacity.wait_fixed(60))


def next_attempt_at(outbox: Path, message_id: str) -> tuple[int, float]:
    with sqlite3.connect(outbox) as connection:
        attempts, due = connection.execute(
            "SELECT attempts, next_attempt_at FROM messages WHERE message_id = ?", (message_id,)
        ).fetchone()
    return attempts, due


def test_backoff_survives_a_restart_neither_reset_nor_skipped(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    emulator.set_faults(
        Faults(targeted=(TargetedFault("ServiceUnavailableException", message_id="m-1"),))
    )
    clock = ManualClock(start=1_000.0)
    client = emulator.client("iotevents-data")

    first = OrderedSender(outbox, client=client, clock=clock, config=BACKOFF, autostart=False)
    first.put("A", {"n": 1}, message_id="m-1")
    first.put("A", {"n": 2}, message_id="m-2")
    first.deliver_due()
    first.close()
    assert next_attempt_at(outbox, "m-1") == (1, 1_060.0)
    assert len(emulator.requests()) == 1

    clock.advance(59)
    second = OrderedSender(outbox, client=client, clock=clock, config=BACKOFF, autostart=False)
    assert second.deliver_due() == 0  # not sent early after the restart
    assert len(emulator.requests()) == 1
    second.close()

    clock.advance(1)
    third = OrderedSender(outbox, client=client, clock=clock, config=BACKOFF, autostart=False)
    assert third.deliver_due() == 2  # m-1, then the lane's next head m-2
    third.close()
    assert [p.message_id for p in emulator.processed("A")] == ["m-1", "m-2"]
    assert next_attempt_at(outbox, "m-1")[0] == 2


def test_attempt_count_survives_restart_so_retry_stop_is_not_reset(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    emulator.set_faults(
        Faults(targeted=(TargetedFault("ThrottlingException", message_id="m-1", count=None),))
    )
    clock = ManualClock()
    config = SenderConfig(
        retry_wait=tenacity.wait_fixed(1), retry_stop=tenacity.stop_after_attempt(3)
    )
    for _ in range(3):
        sender = OrderedSender(
            outbox,
            client=emulator.client("iotevents-data"),
            clock=clock,
            config=config,
            autostart=False,
        )
        if sender.counts().pending == 0:
            sender.put("A", {"n": 1}, message_id="m-1")
        sender.deliver_due()
        sender.close()
        clock.advance(1)
    reopened = OrderedSender(
        outbox,
        client=emulator.client("iotevents-data"),
        clock=clock,
        config=config,
        autostart=False,
    )
    (paused,) = reopened.paused_lanes()
    reopened.close()
    assert paused.error_code == "RetriesExhausted"
    assert len(emulator.requests()) == 3


def test_log_events_tell_one_message_life_and_never_its_payload(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    emulator.set_faults(Faults(targeted=(TargetedFault("ThrottlingException", message_id="m-1"),)))
    clock = ManualClock()
    secret = "top-secret-reading-8675309"
    with capture_logs() as events:
        sender = OrderedSender(
            outbox,
            client=emulator.client("iotevents-data"),
            clock=clock,
            config=BACKOFF,
            autostart=False,
        )
        sender.put("A", {"reading": secret}, message_id="m-1")
        sender.deliver_due()
        clock.advance(60)
        sender.deliver_due()
        sender.close()

    life = [e for e in events if e.get("message_id") == "m-1"]
    assert [e["event"] for e in life] == [
        "message.enqueued",
        "message.retry_scheduled",
        "message.delivered",
    ]
    for event in life:
        assert event["lane"] == "A"
        assert event["input_name"] == "A"
        assert event["seq"] == 1
    assert life[1]["error_code"] == "ThrottlingException"
    assert life[1]["attempt"] == 1
    assert life[1]["retry_in_ms"] == 60_000
    assert life[2]["attempt"] == 2
    assert life[2]["latency_ms"] >= 0
    assert secret not in repr(events)
    assert "testing" not in repr(events)  # the test environment's credentials


def test_delivered_ids_are_refused_for_reuse_until_the_retention_passes(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    clock = ManualClock()
    client = emulator.client("iotevents-data")
    sender = OrderedSender(outbox, client=client, clock=clock, autostart=False)
    sender.put("A", {"n": 1}, message_id="order-7")
    sender.deliver_due()
    sender.close()

    clock.advance(599)  # within the retention (600 s), longer than IoT Events' 5-minute window
    sender = OrderedSender(outbox, client=client, clock=clock, autostart=False)
    with pytest.raises(InvalidMessage, match="already used"):
        sender.put("A", {"n": 2}, message_id="order-7")
    sender.close()

    clock.advance(2)
    sender = OrderedSender(outbox, client=client, clock=clock, autostart=False)
    sender.put("A", {"n": 2}, message_id="order-7")
    sender.close()


def test_with_the_wall_clock_frozen_a_retry_waits_until_time_moves(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    emulator.set_faults(Faults(targeted=(TargetedFault("ThrottlingException", message_id="m-1"),)))
    client = emulator.client("iotevents-data")
    with freeze_time("2026-03-01 12:00:00") as frozen:
        sender = OrderedSender(outbox, client=client, config=BACKOFF, autostart=False)
        sender.put("A", {"n": 1}, message_id="m-1")
        sender.deliver_due()
        frozen.tick(59)
        assert sender.deliver_due() == 0
        frozen.tick(1)
        assert sender.deliver_due() == 1
        sender.close()
    (processed,) = emulator.processed("A")
    # Stamped with the (frozen) time of put, not of the delivery a minute later.
    assert processed.timestamp_ms == 1_772_366_400_000

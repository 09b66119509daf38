"""The sender on its edges: closing under a slow request, aliases of one outbox, a constructor that
fails, an exception nobody mapped, a clock that jumps, an outbox deleted under it."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import tenacity
from structlog.testing import capture_logs

from ordered_sender import (
    DeliveryError,
    NotAnOutbox,
    OrderedSender,
    OutboxInUse,
    SenderConfig,
)
from ordered_sender.emulator import Emulator, Faults
from ordered_sender.message import Message
from ordered_sender.scheduler import dispatcher_wait
from ordered_sender.store.lock import OutboxLock
from ordered_sender.testing import MockTransport
from ordered_sender.transport import BatchResponse, EntryError

TEN_YEARS = 10 * 365 * 24 * 3600.0


class Gate:
    """A service whose answers wait until the test opens the gate; ``entered`` is set as soon as
    a request is in it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, messages: Sequence[Message]) -> BatchResponse:
        self.entered.set()
        assert self.opened.wait(timeout=30), "the test never opened the gate"
        return BatchResponse()


class SettableClock:
    """Wall-clock seconds that a test sets, forwards or backwards."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_close_shorter_than_a_request_in_flight_keeps_the_outbox_locked_until_it_ends(
    outbox: Path,
) -> None:
    gate = Gate()
    transport = MockTransport(gate)
    sender = OrderedSender(outbox, transport=transport)
    sender.put("A", {"n": 0}, message_id="slow")
    assert gate.entered.wait(timeout=30)

    sender.close(timeout=0.05)
    # The request is still in flight: no other sender may send its lane's head meanwhile.
    with pytest.raises(OutboxInUse):
        OrderedSender(outbox, transport=MockTransport(), autostart=False)
    assert not sender.wait_closed(timeout=0)
    gate.opened.set()
    assert sender.wait_closed(timeout=30)

    after = MockTransport()
    with OrderedSender(outbox, transport=after, autostart=False) as successor:
        assert successor.deliver_due() == 0  # its outcome was recorded: nothing to send again
        assert successor.counts().pending == 0
    assert [m.message_id for r in transport.requests for m in r] == ["slow"]
    assert after.requests == []


def test_an_alias_of_the_outbox_cannot_open_a_second_sender(outbox: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias.db"
    alias.symlink_to(outbox)
    with OrderedSender(outbox, transport=MockTransport(), autostart=False):
        with pytest.raises(OutboxInUse):
            OrderedSender(alias, transport=MockTransport(), autostart=False)
        with pytest.raises(OutboxInUse):
            OrderedSender(os.path.relpath(outbox), transport=MockTransport(), autostart=False)


def test_a_constructor_that_fails_releases_the_outbox_lock(tmp_path: Path) -> None:
    application_database = tmp_path / "app.db"
    with sqlite3.connect(application_database) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")

    with pytest.raises(NotAnOutbox):
        OrderedSender(application_database, transport=MockTransport(), autostart=False)
    with pytest.raises(NotAnOutbox):
        OrderedSender(tmp_path / "typo.db", transport=MockTransport(), create=False)

    OutboxLock(application_database).release()  # free again: nothing leaked
    assert not (tmp_path / "typo.db").exists()


def test_a_constructor_without_a_region_leaves_the_outbox_free(
    outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(Exception, match="region"):
        OrderedSender(outbox)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    OrderedSender(outbox, transport=MockTransport(), autostart=False).close()


def test_an_exception_nobody_mapped_is_logged_loudly_and_backed_off(outbox: Path) -> None:
    def broken(messages: Sequence[Message]) -> BatchResponse:
        raise RuntimeError("a bug in a transport")

    clock = SettableClock(1_000.0)
    transport = MockTransport(broken)
    with OrderedSender(outbox, transport=transport, clock=clock, autostart=False) as sender:
        sender.put("A", {"n": 0}, message_id="m-0")
        with capture_logs() as events:
            assert sender.deliver_due() == 1
            assert sender.deliver_due() == 0  # not again at once: the endpoint is held
            clock.now += 0.1
            assert sender.deliver_due() == 1  # one probe...
            clock.now += 0.1
            assert sender.deliver_due() == 0  # ...then a hold twice as long
            clock.now += 0.1
            assert sender.deliver_due() == 1
    loud = [e for e in events if e["event"] == "transport.unexpected_error"]
    assert len(loud) == 3
    assert all(e["log_level"] == "error" and e["exc_info"] is True for e in loud)
    assert loud[0]["error_type"] == "RuntimeError"
    (held,) = [e for e in events if e["event"] == "endpoint.unavailable"]
    assert held["error_code"] == "RuntimeError"


def throttled(messages: Sequence[Message]) -> BatchResponse:
    return BatchResponse(
        tuple(EntryError(m.message_id, "ThrottlingException", "") for m in messages)
    )


def test_a_retry_stored_under_a_clock_years_ahead_is_sent_within_its_backoff_once_corrected(
    outbox: Path,
) -> None:
    config = SenderConfig(retry_wait=tenacity.wait_fixed(60))
    ahead = SettableClock(1_700_000_000.0 + TEN_YEARS)
    with OrderedSender(
        outbox, transport=MockTransport(throttled), config=config, clock=ahead, autostart=False
    ) as sender:
        sender.put("A", {"n": 0}, message_id="m-0")
        assert sender.deliver_due() == 1

    corrected = SettableClock(1_700_000_000.0)
    delivered = MockTransport()
    with OrderedSender(
        outbox, transport=delivered, config=config, clock=corrected, autostart=False
    ) as sender:
        assert sender.deliver_due() == 0  # not early...
        (lane,) = sender.store.lanes_overview(10)
        assert lane.next_attempt_at == 1_700_000_060.0  # ...and never further than its backoff
        assert lane.last_error_code == "ThrottlingException"
        corrected.now += 60
        assert sender.deliver_due() == 1
    assert [m.message_id for r in delivered.requests for m in r] == ["m-0"]


def test_a_running_sender_notices_its_clock_going_back_and_keeps_retries_within_backoff(
    outbox: Path,
) -> None:
    config = SenderConfig(retry_wait=tenacity.wait_fixed(60))
    clock = SettableClock(1_700_000_000.0 + TEN_YEARS)
    transport = MockTransport(throttled)
    with OrderedSender(
        outbox, transport=transport, config=config, clock=clock, autostart=False
    ) as sender:
        sender.put("A", {"n": 0}, message_id="m-0")
        assert sender.deliver_due() == 1
        clock.now = 1_700_000_000.0
        with capture_logs() as events:
            assert sender.deliver_due() == 0
        clock.now += 60
        assert sender.deliver_due() == 1
    assert [e["event"] for e in events].count("clock.moved_back") == 1


def test_a_sender_whose_outbox_is_deleted_stops_and_says_why(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    client = emulator.client("iotevents-data")
    with OrderedSender(outbox, client=client) as sender:
        sender.put("A", {"n": 0}).result(timeout=30)
        emulator.set_faults(Faults(request_error_rate=1.0))  # nothing more gets through
        os.unlink(outbox)
        waiting = sender.put("A", {"n": 1})
        with capture_logs() as events, pytest.raises(DeliveryError, match="was deleted"):
            waiting.result(timeout=30)
        assert sender.failure is not None and "was deleted" in sender.failure
        with pytest.raises(DeliveryError, match="was deleted"):
            sender.flush(timeout=30)
    assert any(e["event"] == "sender.stopped" and e["log_level"] == "error" for e in events)


@pytest.mark.parametrize(
    ("free", "next_due", "halted_until", "expected"),
    [
        (0, 100.0, 0.0, 1.0),  # every worker busy, a head due: wait to be woken, no spin
        (0, None, 0.0, 1.0),
        (2, None, 0.0, 1.0),  # nothing pending
        (2, 100.3, 0.0, 0.3),  # until the next head is due
        (2, 99.0, 0.0, 0.001),  # overdue but excluded (its lane in flight): at least 1 ms
        (2, 100.2, 100.5, 0.5),  # not before a credentials halt ends
        (2, 200.0, 0.0, 1.0),  # at most the poll
    ],
)
def test_the_dispatcher_waits_to_be_woken_instead_of_spinning(
    free: int, next_due: float | None, halted_until: float, expected: float
) -> None:
    wait = dispatcher_wait(
        free_workers=free, next_due=next_due, now=100.0, halted_until=halted_until, poll=1.0
    )
    assert wait == pytest.approx(expected)


def test_a_head_resumed_while_in_flight_counts_its_failure_from_the_reset(tmp_path: Path) -> None:
    """Three attempts allowed; the third fails while an operator paused and resumed the lane.
    The resume reset the attempts, so that failure is the first since: a retry, not a dead
    letter by RetriesExhausted."""
    clock = [1000.0]
    during_send: list[Callable[[], None]] = []

    def throttled(messages: Sequence[Message]) -> BatchResponse:
        while during_send:
            during_send.pop()()
        return BatchResponse(
            entry_errors=tuple(
                EntryError(m.message_id, "ThrottlingException", "slow down") for m in messages
            )
        )

    config = SenderConfig(
        retry_wait=tenacity.wait_fixed(1),
        retry_stop=tenacity.stop_after_attempt(3),
        on_permanent_failure="dead_letter",
    )
    with OrderedSender(
        tmp_path / "outbox.db",
        transport=MockTransport(throttled),
        clock=lambda: clock[0],
        autostart=False,
        config=config,
    ) as sender:
        sender.put("A", {"n": 0}, message_id="a-0")

        def pause_and_resume() -> None:
            assert sender.pause("A", "maintenance") and sender.resume("A")

        for attempt in (1, 2, 3):
            if attempt == 3:
                during_send.append(pause_and_resume)
            assert sender.deliver_due() == 1
            clock[0] += 1.0

        assert sender.dead_letters() == []
        (lane,) = sender.store.lanes_overview(5)
        assert (lane.lane, lane.head_message_id, lane.attempts) == ("A", "a-0", 1)

"""Back-pressure: an outbox at its pending limit refuses (or holds back) a put and stores none of
it, across threads and processes; the totals behind the limits stay equal to what is pending."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import tenacity

from ordered_sender import (
    DeliveryFailed,
    OrderedSender,
    Outbox,
    OutboxCounts,
    OutboxFull,
    Receipt,
    SenderClosed,
    SenderConfig,
)
from ordered_sender.emulator import Emulator, Faults, TargetedFault
from ordered_sender.message import Message
from ordered_sender.testing import MockTransport
from ordered_sender.transport import BatchResponse, EntryError

RAISE_AT_3 = SenderConfig(max_pending_messages=3, when_full="raise")
BLOCK_AT_3 = SenderConfig(max_pending_messages=3, when_full="block", idle_poll_seconds=0.05)


def pending_in_file(outbox: Path) -> tuple[int, int]:
    """Pending messages and payload bytes counted from the messages themselves."""
    with sqlite3.connect(outbox) as connection:
        count, size = connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM messages "
            "WHERE state = 'pending'"
        ).fetchone()
    return int(count), int(size)


def totals(counts: OutboxCounts) -> tuple[int, int]:
    return counts.pending, counts.pending_bytes


def test_raise_mode_refuses_a_put_past_the_message_limit_and_stores_nothing(
    outbox: Path,
) -> None:
    with OrderedSender(outbox, transport=MockTransport(), config=RAISE_AT_3, autostart=False) as s:
        s.put_many([("A", b"1"), ("B", b"22"), ("A", b"333")])
        before = s.counts()

        with pytest.raises(OutboxFull, match="max_pending_messages=3"):
            s.put("C", b"4444", message_id="refused-1")
        with pytest.raises(OutboxFull, match="max_pending_messages=3"):
            s.put_many([("C", b"x", "refused-2"), ("C", b"y", "refused-3")])

        assert s.counts() == before
        assert totals(before) == pending_in_file(outbox) == (3, 6)
        s.deliver_due()
        # Nothing of the refused puts was kept: their ids are free and the lane C is new.
        receipts = s.put_many([("C", b"x", "refused-1"), ("C", b"y", "refused-2")])
        assert [r.message_id for r in receipts] == ["refused-1", "refused-2"]
        assert totals(s.counts()) == pending_in_file(outbox) == (2, 2)


def test_raise_mode_refuses_a_put_past_the_byte_limit_and_stores_nothing(outbox: Path) -> None:
    config = SenderConfig(max_pending_bytes=10, when_full="raise")
    with OrderedSender(outbox, transport=MockTransport(), config=config, autostart=False) as s:
        s.put("A", b"123456")
        s.put("A", b"7890")  # exactly at the limit
        before = s.counts()

        with pytest.raises(OutboxFull, match="max_pending_bytes=10"):
            s.put("A", b"x")

        assert s.counts() == before
        assert totals(before) == pending_in_file(outbox) == (2, 10)
        s.deliver_due()
        s.put("A", b"0123456789")
        assert totals(s.counts()) == (1, 10)


@pytest.mark.parametrize(
    ("config", "items", "limit"),
    [
        (BLOCK_AT_3, [("A", b"x")] * 4, "max_pending_messages=3"),
        (
            SenderConfig(max_pending_bytes=8),
            [("A", b"12345"), ("B", b"6789")],
            "max_pending_bytes=8",
        ),
        (SenderConfig(max_pending_bytes=8), [("A", b"123456789")], "max_pending_bytes=8"),
    ],
)
def test_a_put_larger_than_the_limit_itself_fails_at_once_even_in_block_mode(
    outbox: Path, config: SenderConfig, items: list[tuple[str, bytes]], limit: str
) -> None:
    with OrderedSender(outbox, transport=MockTransport(), config=config, autostart=False) as s:
        started = time.monotonic()
        with pytest.raises(OutboxFull, match=f"can never fit under {limit}"):
            s.put_many(items, timeout=30)  # an empty outbox: waiting could never help
        assert time.monotonic() - started < 5
        assert totals(s.counts()) == pending_in_file(outbox) == (0, 0)


def test_block_mode_gives_up_after_the_timeout_when_nothing_delivers(outbox: Path) -> None:
    with OrderedSender(outbox, transport=MockTransport(), config=BLOCK_AT_3, autostart=False) as s:
        s.put_many([("A", b"1"), ("A", b"2"), ("A", b"3")])
        before = s.counts()

        started = time.monotonic()
        with pytest.raises(OutboxFull, match=r"max_pending_messages=3.*waited 0\.2 s"):
            s.put("A", b"4", timeout=0.2)
        waited = time.monotonic() - started

        assert 0.2 <= waited < 5
        s.deliver_due()
        s.put_many([("A", b"4"), ("A", b"5")])
        with pytest.raises(OutboxFull, match="waited"):  # room for one of two is not enough
            s.put_many([("A", b"6"), ("A", b"7")], timeout=0.1)
        assert pending_in_file(outbox) == (2, 2)
        assert totals(s.counts()) == (2, 2)
        assert before.pending == 3


class GatedTransport(MockTransport):
    """Each request waits until the test opens the gate; then every message is accepted, or,
    with ``refuse`` set, refused for good with InvalidRequestException."""

    def __init__(self, refuse: bool = False) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.refuse = refuse
        super().__init__(self._handle)

    def _handle(self, messages: Sequence[Message]) -> BatchResponse:
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise AssertionError("the test never opened the gate")
        if not self.refuse:
            return BatchResponse()
        return BatchResponse(
            entry_errors=tuple(
                EntryError(m.message_id, "InvalidRequestException", "refused") for m in messages
            )
        )


@pytest.mark.parametrize("head_fails", [False, True], ids=["delivered", "dead-lettered"])
def test_block_mode_waits_for_delivery_to_make_room_then_stores_in_order(
    outbox: Path, head_fails: bool
) -> None:
    transport = GatedTransport(refuse=head_fails)
    config = SenderConfig(
        max_pending_messages=2,
        when_full="block",
        idle_poll_seconds=0.05,
        on_permanent_failure="dead_letter",
    )
    outcome: list[Receipt | BaseException] = []

    with OrderedSender(outbox, transport=transport, config=config) as sender:
        first = sender.put("A", {"n": 1})
        second = sender.put("A", {"n": 2})
        assert transport.entered.wait(timeout=10)  # n=1 is in flight, held at the gate

        def blocked_put() -> None:
            try:
                outcome.append(sender.put("A", {"n": 3}, timeout=30))
            except BaseException as error:  # handed to the test thread to raise
                outcome.append(error)

        putter = threading.Thread(target=blocked_put)
        putter.start()
        putter.join(timeout=0.3)
        assert putter.is_alive(), f"the put did not wait for room: {outcome}"
        assert totals(sender.counts())[0] == 2

        transport.gate.set()
        putter.join(timeout=30)
        assert not putter.is_alive()
        (third,) = outcome
        assert isinstance(third, Receipt), third
        assert third.seq > second.seq > first.seq
        if head_fails:  # every message is refused: each one's dead letter made the room
            with pytest.raises(DeliveryFailed):
                third.result(timeout=10)
            letters = [d.message_id for d in sender.dead_letters()]
            assert letters == [first.message_id, second.message_id, third.message_id]
        else:
            third.result(timeout=10)

    sent = [m.payload for request in transport.requests for m in request]
    assert sent == [b'{"n":1}', b'{"n":2}', b'{"n":3}']


def test_a_put_blocked_when_the_sender_closes_ends_with_an_error_of_ours(outbox: Path) -> None:
    with OrderedSender(outbox, transport=MockTransport(), config=BLOCK_AT_3, autostart=False) as s:
        s.put_many([("A", b"1"), ("A", b"2"), ("A", b"3")])
        outcome: list[BaseException | Receipt] = []
        trying = threading.Event()

        def blocked_put() -> None:
            trying.set()
            try:
                outcome.append(s.put("A", b"4", timeout=30))
            except BaseException as error:
                outcome.append(error)

        putter = threading.Thread(target=blocked_put)
        putter.start()
        assert trying.wait(timeout=10)
        putter.join(timeout=0.2)
        assert putter.is_alive()
    putter.join(timeout=10)

    assert not putter.is_alive()
    (error,) = outcome
    assert isinstance(error, SenderClosed | OutboxFull), repr(error)
    assert pending_in_file(outbox) == (3, 3)


NEIGHBOUR = r"""
import sys
from ordered_sender import Outbox, OutboxFull, SenderConfig

path = sys.argv[1]
with Outbox(path, SenderConfig(max_pending_messages=3, when_full="raise")) as outbox:
    counts = outbox.counts()
    print("totals", counts.pending, counts.pending_bytes, flush=True)
    try:
        outbox.put("B", b"refused")
    except OutboxFull as full:
        print("full", full, flush=True)
blocking = SenderConfig(max_pending_messages=3, when_full="block", idle_poll_seconds=0.05)
with Outbox(path, blocking) as outbox:
    receipt = outbox.put("B", b"waited", timeout=60)
print("stored", receipt.seq, flush=True)
"""


def test_the_limits_hold_for_an_outbox_in_another_process(outbox: Path) -> None:
    config = SenderConfig(max_pending_messages=3)
    # Only lane A gets through, so the neighbour's message stays pending whenever it lands.
    only_a = MockTransport(
        lambda messages: BatchResponse(
            tuple(
                EntryError(m.message_id, "ThrottlingException", "")
                for m in messages
                if m.input_name != "A"
            )
        )
    )
    with OrderedSender(outbox, transport=only_a, config=config, autostart=False) as s:
        s.put_many([("A", b"one"), ("A", b"two"), ("A", b"three")])
        neighbour = subprocess.Popen(
            [sys.executable, "-c", NEIGHBOUR, str(outbox)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert neighbour.stdout is not None
            assert neighbour.stdout.readline().split() == ["totals", "3", "11"]
            refused = neighbour.stdout.readline()
            assert refused.startswith("full ") and "max_pending_messages=3" in refused
            s.deliver_due()  # makes room: the neighbour's blocked put goes through
            stdout, stderr = neighbour.communicate(timeout=60)
        finally:
            if neighbour.poll() is None:
                neighbour.kill()
        assert neighbour.returncode == 0, stderr
        assert stdout.split()[0] == "stored"
        assert totals(s.counts()) == pending_in_file(outbox) == (1, len(b"waited"))


def test_totals_match_the_pending_messages_through_every_kind_of_change(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    emulator.create_input("B")
    emulator.set_faults(
        Faults(
            targeted=(
                TargetedFault("InvalidRequestException", message_id="bad-1", count=None),
                TargetedFault("InvalidRequestException", message_id="bad-2", count=None),
            )
        )
    )
    config = SenderConfig(
        on_permanent_failure="dead_letter",
        retry_wait=tenacity.wait_fixed(0),
        max_pending_bytes=200,
        when_full="raise",
    )

    def check(sender: OrderedSender, expected: tuple[int, int]) -> None:
        assert totals(sender.counts()) == pending_in_file(outbox) == expected

    sender = OrderedSender(
        outbox, client=emulator.client("iotevents-data"), config=config, autostart=False
    )
    try:
        check(sender, (0, 0))
        sender.put_many([("A", b"a1"), ("A", b"bad-1", "bad-1"), ("A", b"a3")])
        sender.put_many([("B", b"bad-2", "bad-2"), ("B", b"b2")])
        check(sender, (5, 16))
        with pytest.raises(OutboxFull):
            sender.put("A", b"x" * 190)
        check(sender, (5, 16))

        sender.deliver_due()  # three delivered, two dead-lettered
        check(sender, (0, 0))
        assert sender.counts().dead_letters == 2

        emulator.set_faults(Faults())
        assert sender.redrive("bad-1")
        check(sender, (1, 5))
        assert sender.drop("bad-2")
        check(sender, (1, 5))
        sender.put("B", b"b3")
        check(sender, (2, 7))
        sender.close()

        sender = OrderedSender(
            outbox, client=emulator.client("iotevents-data"), config=config, autostart=False
        )
        check(sender, (2, 7))
        sender.deliver_due()
        check(sender, (0, 0))
        assert sender.counts().dead_letters == 0
        sender.put("A", b"y" * 200)  # the whole allowance is free again
        check(sender, (1, 200))
    finally:
        sender.close()
    assert [p.message_id for p in emulator.processed("A")][-1] == "bad-1"


RACER = r"""
import sys
from ordered_sender import Outbox, OutboxFull, SenderConfig

config = SenderConfig(max_pending_messages=15, when_full="raise")
stored = refused = 0
with Outbox(sys.argv[1], config) as outbox:
    for n in range(20):
        try:
            outbox.put(sys.argv[2], {"n": n})
            stored += 1
        except OutboxFull:
            refused += 1
print(stored, refused, flush=True)
"""


def test_processes_racing_for_the_last_room_never_pass_the_limit_together(
    outbox: Path,
) -> None:
    Outbox(outbox).close()  # create it once, before the race
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(outbox), lane],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for lane in ("A", "B")
    ]
    results = []
    for racer in racers:
        stdout, stderr = racer.communicate(timeout=60)
        assert racer.returncode == 0, stderr
        stored, refused = map(int, stdout.split())
        results.append((stored, refused))

    assert sum(stored for stored, _ in results) == 15
    assert sum(refused for _, refused in results) == 25
    with Outbox(outbox) as reader:
        assert totals(reader.counts())[0] == pending_in_file(outbox)[0] == 15

"""The failure policy end to end through boto3 and the emulator: dead letters (listed,
redriven, dropped, across restarts and processes) and paused lanes whose head gets fresh attempts
on resume."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import tenacity

from ordered_sender import (
    DeliveryFailed,
    InvalidMessage,
    LanePaused,
    OrderedSender,
    Outbox,
    SenderConfig,
)
from ordered_sender.emulator import Emulator, Faults, TargetedFault
from ordered_sender.message import Message
from ordered_sender.testing import ManualClock
from ordered_sender.transport import BatchResponse, EntryError

DEAD_LETTER = SenderConfig(
    on_permanent_failure="dead_letter", retry_wait=tenacity.wait_fixed(0), idle_poll_seconds=0.05
)
START = 1_700_000_000.0


def bad(*message_ids: str, code: str = "InvalidRequestException") -> Faults:
    """Faults that refuse each of ``message_ids`` every time it is sent."""
    return Faults(
        targeted=tuple(TargetedFault(code, message_id=mid, count=None) for mid in message_ids)
    )


def processed_ids(emulator: Emulator, input_name: str = "A") -> list[str]:
    return [p.message_id for p in emulator.processed(input_name)]


def times_sent(emulator: Emulator, message_id: str) -> int:
    return sum(m.message_id == message_id for r in emulator.requests() for m in r.messages)


def open_sender(
    outbox: Path,
    emulator: Emulator,
    clock: ManualClock,
    config: SenderConfig = DEAD_LETTER,
) -> OrderedSender:
    return OrderedSender(
        outbox,
        client=emulator.client("iotevents-data"),
        config=config,
        clock=clock,
        autostart=False,
    )


def put_lane(sender: OrderedSender, *message_ids: str) -> None:
    for number, message_id in enumerate(message_ids):
        sender.put("A", {"n": number}, message_id=message_id)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=START)


def test_a_refused_message_is_dead_lettered_and_its_lane_goes_on_in_order(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(bad("m-2"))
    with open_sender(outbox, emulator, clock) as sender:
        put_lane(sender, "m-1")
        clock.advance(5)
        failing = sender.put("A", {"n": 2}, message_id="m-2")
        put_lane(sender, "m-3", "m-4")
        clock.advance(5)

        sender.deliver_due()

        assert processed_ids(emulator) == ["m-1", "m-3", "m-4"]
        assert times_sent(emulator, "m-2") == 1
        (letter,) = sender.dead_letters()
        assert (letter.lane, letter.message_id, letter.input_name) == ("A", "m-2", "A")
        assert letter.error_code == "InvalidRequestException"
        assert letter.error_text  # the service's own words are kept
        assert letter.attempts == 1
        assert letter.enqueued_at == START + 5
        assert letter.failed_at == START + 10
        assert sender.dead_letters("A") == [letter]
        assert sender.dead_letters("B") == []
        with pytest.raises(DeliveryFailed, match="m-2") as failed:
            failing.result(timeout=1)
        assert failed.value.error_code == "InvalidRequestException"
        assert failed.value.lane == "A"
        counts = sender.counts()
        assert (counts.pending, counts.dead_letters, counts.paused_lanes) == (0, 1, 0)
        assert sender.paused_lanes() == []


def test_a_message_for_a_missing_input_is_dead_lettered_as_resource_not_found(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    with open_sender(outbox, emulator, clock) as sender:
        lost = sender.put("Missing", {"n": 0}, message_id="x-1")
        sender.put("A", {"n": 0}, message_id="a-1")

        sender.deliver_due()

        assert processed_ids(emulator) == ["a-1"]
        with pytest.raises(DeliveryFailed) as failed:
            lost.result(timeout=1)
        assert failed.value.error_code == "ResourceNotFoundException"
        assert [d.message_id for d in sender.dead_letters("Missing")] == ["x-1"]


def test_retry_stop_exhausted_dead_letters_with_retries_exhausted(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(bad("m-1", code="ThrottlingException"))
    config = SenderConfig(
        on_permanent_failure="dead_letter",
        retry_wait=tenacity.wait_fixed(0),
        retry_stop=tenacity.stop_after_attempt(3),
    )
    with open_sender(outbox, emulator, clock, config) as sender:
        exhausted = sender.put("A", {"n": 1}, message_id="m-1")
        put_lane(sender, "m-2")

        sender.deliver_due()

        assert times_sent(emulator, "m-1") == 3
        assert processed_ids(emulator) == ["m-2"]
        (letter,) = sender.dead_letters()
        assert (letter.message_id, letter.error_code, letter.attempts) == (
            "m-1",
            "RetriesExhausted",
            3,
        )
        assert "ThrottlingException" in letter.error_text
        with pytest.raises(DeliveryFailed) as failed:
            exhausted.result(timeout=1)
        assert failed.value.error_code == "RetriesExhausted"


def test_dead_letters_survive_a_restart_and_can_be_redriven_after_it(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(bad("m-2"))
    with open_sender(outbox, emulator, clock) as first:
        put_lane(first, "m-1", "m-2", "m-3")
        first.deliver_due()
        before = first.dead_letters()
    assert [d.message_id for d in before] == ["m-2"]

    with Outbox(outbox) as reader:
        assert reader.dead_letters() == before
        assert reader.counts().dead_letters == 1
    clock.advance(30)
    with open_sender(outbox, emulator, clock) as second:
        assert second.dead_letters() == before
        with pytest.raises(DeliveryFailed) as failed:
            second.wait_delivered("m-2", timeout=1)
        assert failed.value.error_code == "InvalidRequestException"
        emulator.set_faults(Faults())
        assert second.redrive("m-2")
        second.deliver_due()
        second.wait_delivered("m-2", timeout=1)
        assert second.dead_letters() == []
    assert processed_ids(emulator) == ["m-1", "m-3", "m-2"]


def test_redrive_sends_the_same_message_id_at_the_head_before_later_puts(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(bad("m-2"))
    with open_sender(outbox, emulator, clock) as sender:
        put_lane(sender, "m-1")
        redriven = sender.put("A", {"n": 2}, message_id="m-2")
        put_lane(sender, "m-3")
        sender.deliver_due()
        assert processed_ids(emulator) == ["m-1", "m-3"]
        put_lane(sender, "m-4", "m-5")  # waiting in the lane when m-2 comes back
        emulator.set_faults(Faults())

        assert sender.redrive("m-2")
        assert sender.dead_letters() == []
        assert sender.counts().dead_letters == 0
        assert not sender.redrive("m-2")  # no longer a dead letter
        sender.deliver_due()

        assert processed_ids(emulator) == ["m-1", "m-3", "m-2", "m-4", "m-5"]
        assert times_sent(emulator, "m-2") == 2
        (reprocessed,) = [p for p in emulator.processed("A") if p.message_id == "m-2"]
        assert json.loads(reprocessed.payload) == {"n": 2}
        redriven.result(timeout=1)
        assert redriven.delivered()


def test_a_redriven_message_gets_fresh_attempts(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(bad("m-1", code="ThrottlingException"))
    config = SenderConfig(
        on_permanent_failure="dead_letter",
        retry_wait=tenacity.wait_fixed(0),
        retry_stop=tenacity.stop_after_attempt(2),
    )
    with open_sender(outbox, emulator, clock, config) as sender:
        put_lane(sender, "m-1")
        sender.deliver_due()
        assert times_sent(emulator, "m-1") == 2
        assert sender.redrive("m-1")
        sender.deliver_due()  # the fault is still on: two more attempts, not one
        assert times_sent(emulator, "m-1") == 4
        (letter,) = sender.dead_letters()
        assert (letter.error_code, letter.attempts) == ("RetriesExhausted", 2)


def test_redrive_and_drop_of_an_id_that_is_no_dead_letter_return_false(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    with open_sender(outbox, emulator, clock) as sender:
        put_lane(sender, "delivered", "pending")
        sender.deliver_due()
        put_lane(sender, "waiting")
        for message_id in ("never-put", "delivered", "waiting"):
            assert not sender.redrive(message_id)
            assert not sender.drop(message_id)
        assert sender.counts().pending == 1


def test_redrive_into_a_paused_lane_raises_lane_paused_and_changes_nothing(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(bad("m-1", "m-3"))
    with open_sender(outbox, emulator, clock) as dead_lettering:
        put_lane(dead_lettering, "m-1", "m-2")
        dead_lettering.deliver_due()
    # The same outbox, now under the pause policy: m-3 stops the lane.
    with open_sender(outbox, emulator, clock, SenderConfig()) as pausing:
        pausing.put("A", {"n": 3}, message_id="m-3")
        pausing.deliver_due()
        assert [p.message_id for p in pausing.paused_lanes()] == ["m-3"]

        with pytest.raises(LanePaused, match="resume"):
            pausing.redrive("m-1")

        assert [d.message_id for d in pausing.dead_letters()] == ["m-1"]
        assert [p.message_id for p in pausing.paused_lanes()] == ["m-3"]
        emulator.set_faults(Faults())
        assert pausing.resume("A")
        pausing.deliver_due()
        assert pausing.redrive("m-1")
        pausing.deliver_due()
    assert processed_ids(emulator) == ["m-2", "m-3", "m-1"]


def test_drop_forgets_a_dead_letter_but_its_id_stays_refused_for_the_retention(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(bad("m-2"))
    with open_sender(outbox, emulator, clock) as sender:
        put_lane(sender, "m-1")
        dropped = sender.put("A", {"n": 2}, message_id="m-2")
        sender.deliver_due()

        assert sender.drop("m-2")

        assert sender.dead_letters() == []
        assert sender.counts().dead_letters == 0
        assert not sender.drop("m-2")
        assert not sender.redrive("m-2")
        with pytest.raises(DeliveryFailed, match="dropped") as failed:
            dropped.result(timeout=1)
        assert failed.value.error_code == "Dropped"
        with pytest.raises(InvalidMessage, match="already used"):
            sender.put("A", {"n": 2}, message_id="m-2")
        with sqlite3.connect(outbox) as connection:
            (payload,) = connection.execute(
                "SELECT payload FROM messages WHERE message_id = 'm-2'"
            ).fetchone()
        assert payload == b""  # only the id is kept

    clock.advance(DEAD_LETTER.delivered_retention_seconds + 1)
    with open_sender(outbox, emulator, clock) as later:
        emulator.set_faults(Faults())
        later.put("A", {"n": 2}, message_id="m-2")  # past the retention, the id is free again
        later.deliver_due()
    assert processed_ids(emulator) == ["m-1", "m-2"]


OPERATOR = r"""
import json
import sys
from ordered_sender import Outbox

with Outbox(sys.argv[1]) as outbox:
    listed = [d.message_id for d in outbox.dead_letters()]
    redriven = outbox.redrive("m-2")
    dropped = outbox.drop("m-3")
    unknown = outbox.redrive("m-404")
print(json.dumps({"listed": listed, "redriven": redriven, "dropped": dropped,
                  "unknown": unknown}))
"""


def test_an_outbox_in_another_process_redrives_and_drops_while_the_sender_delivers(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    emulator.set_faults(bad("m-2", "m-3"))
    with OrderedSender(outbox, client=emulator.client("iotevents-data"), config=DEAD_LETTER) as s:
        receipts = {mid: s.put("A", {"n": mid}, message_id=mid) for mid in ("m-1", "m-2", "m-3")}
        receipts["m-4"] = s.put("A", {"n": "m-4"}, message_id="m-4")
        receipts["m-4"].result(timeout=10)
        with Outbox(outbox) as same_process:
            assert [d.message_id for d in same_process.dead_letters()] == ["m-2", "m-3"]
        emulator.set_faults(Faults())

        operator = subprocess.run(
            [sys.executable, "-c", OPERATOR, str(outbox)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert operator.returncode == 0, operator.stderr
        assert json.loads(operator.stdout) == {
            "listed": ["m-2", "m-3"],
            "redriven": True,
            "dropped": True,
            "unknown": False,
        }
        # The sender notices the redrive by itself (it polls the file every 0.05 s).
        receipts["m-2"].result(timeout=10)
        with pytest.raises(DeliveryFailed, match="dropped"):
            receipts["m-3"].result(timeout=1)
        assert s.dead_letters() == []
    assert processed_ids(emulator) == ["m-1", "m-4", "m-2"]


def test_under_the_pause_policy_resume_gives_the_head_all_its_attempts_again(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(bad("m-1", code="ThrottlingException"))
    config = SenderConfig(
        retry_wait=tenacity.wait_fixed(0), retry_stop=tenacity.stop_after_attempt(2)
    )
    with open_sender(outbox, emulator, clock, config) as sender:
        stuck = sender.put("A", {"n": 1}, message_id="m-1")
        behind = sender.put("A", {"n": 2}, message_id="m-2")
        sender.deliver_due()
        assert times_sent(emulator, "m-1") == 2
        (paused,) = sender.paused_lanes()
        assert (paused.lane, paused.message_id, paused.error_code) == (
            "A",
            "m-1",
            "RetriesExhausted",
        )
        with pytest.raises(LanePaused):
            behind.result(timeout=1)
        assert sender.dead_letters() == []
        assert sender.counts().blocked == 2

        assert sender.resume("A")
        sender.deliver_due()  # still throttled: two fresh attempts, then paused again
        assert times_sent(emulator, "m-1") == 4
        assert times_sent(emulator, "m-2") == 0
        assert [p.message_id for p in sender.paused_lanes()] == ["m-1"]

    clock.advance(60)
    with open_sender(outbox, emulator, clock, config) as restarted:
        assert [p.message_id for p in restarted.paused_lanes()] == ["m-1"]  # survives a restart
        assert restarted.deliver_due() == 0
        emulator.set_faults(Faults())
        assert restarted.resume("A")
        assert not restarted.resume("A")
        restarted.deliver_due()
        restarted.wait_delivered(stuck.message_id, timeout=1)
        restarted.wait_delivered(behind.message_id, timeout=1)
    assert processed_ids(emulator) == ["m-1", "m-2"]
    assert times_sent(emulator, "m-1") == 5


def test_a_message_refused_alone_after_its_request_was_refused_whole_is_dead_lettered(
    outbox: Path, clock: ManualClock
) -> None:
    # The endpoint allows 60 payload bytes per request; the sender believes 1024: the request is
    # refused whole (400), each message is resent alone, and only the big one is refused again.
    with Emulator(seed=3, max_payload_bytes=60) as emu:
        for name in ("A", "B", "C"):
            emu.create_input(name)
        with open_sender(outbox, emu, clock) as sender:
            sender.put_many(
                [("A", {"n": 0}), ("B", {"n": 0, "pad": "x" * 80}, "big"), ("C", {"n": 0})]
            )
            sender.put("B", {"n": 1}, message_id="after-big")

            sender.deliver_due()

            assert emu.requests()[0].status == 400
            (letter,) = sender.dead_letters()
            assert (letter.lane, letter.message_id) == ("B", "big")
            assert letter.error_code == "InvalidRequestException"
            assert letter.attempts == 2  # once in the refused request, once alone
            assert processed_ids(emu, "B") == ["after-big"]
            assert {p.input_name for p in emu.processed()} == {"A", "B", "C"}

            # Redriven unchanged, it is refused again; the lanes sent with it still go on.
            sender.put_many([("A", {"n": 1}), ("C", {"n": 1})])
            assert sender.redrive("big")
            sender.deliver_due()
            assert [d.message_id for d in sender.dead_letters()] == ["big"]
            assert len(emu.processed("A")) == len(emu.processed("C")) == 2
            assert sender.counts().pending == 0


def test_a_redrive_goes_before_a_head_in_backoff_which_keeps_its_backoff(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(
        Faults(
            targeted=(
                TargetedFault("InvalidRequestException", message_id="m-1"),
                TargetedFault("ThrottlingException", message_id="m-2"),
            )
        )
    )
    config = SenderConfig(on_permanent_failure="dead_letter", retry_wait=tenacity.wait_fixed(60))
    with open_sender(outbox, emulator, clock, config) as sender:
        put_lane(sender, "m-1", "m-2", "m-3")
        sender.deliver_due()
        assert [d.message_id for d in sender.dead_letters()] == ["m-1"]
        assert times_sent(emulator, "m-2") == 1  # throttled: back in 60 s

        assert sender.redrive("m-1")
        sender.deliver_due()
        assert processed_ids(emulator) == ["m-1"]  # m-2 still waits out its backoff
        clock.advance(59)
        assert sender.deliver_due() == 0
        clock.advance(1)
        sender.deliver_due()
    assert processed_ids(emulator) == ["m-1", "m-2", "m-3"]


class OneLaneWatch:
    """A transport that refuses ``bad`` the first time, holds ``held`` at a gate, and counts
    the times two messages of one lane were in flight together."""

    def __init__(self, bad: str, held: str) -> None:
        self.bad = bad
        self.held = held
        self.gate = threading.Event()
        self.holding = threading.Event()
        self.sent: list[str] = []
        self.overlaps = 0
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def send(self, messages: Sequence[Message]) -> BatchResponse:
        lanes = {m.input_name for m in messages}
        with self._lock:
            self.overlaps += len(lanes & self._in_flight)
            self._in_flight |= lanes
            self.sent.extend(m.message_id for m in messages)
        try:
            if any(m.message_id == self.held for m in messages):
                self.holding.set()
                assert self.gate.wait(timeout=30), "the test never opened the gate"
            refused = [m for m in messages if m.message_id == self.bad]
            if refused and self.sent.count(self.bad) == 1:
                return BatchResponse(
                    entry_errors=(EntryError(self.bad, "InvalidRequestException", "bad"),)
                )
            return BatchResponse()
        finally:
            with self._lock:
                self._in_flight -= lanes


def test_a_redrive_while_the_lane_is_in_flight_waits_for_that_outcome(outbox: Path) -> None:
    transport = OneLaneWatch(bad="m-1", held="m-2")
    with OrderedSender(outbox, transport=transport, config=DEAD_LETTER) as sender:
        put_lane(sender, "m-1", "m-2")
        assert transport.holding.wait(timeout=10)  # m-1 dead-lettered, m-2 held in flight
        with Outbox(outbox) as operator:
            assert operator.redrive("m-1")

        transport.gate.set()
        sender.wait_delivered("m-2", timeout=10)
        sender.wait_delivered("m-1", timeout=10)
    assert transport.sent == ["m-1", "m-2", "m-1"]
    assert transport.overlaps == 0


def test_resume_resets_the_age_that_stop_after_delay_measures(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(bad("m-1", code="ServiceUnavailableException"))
    config = SenderConfig(
        retry_wait=tenacity.wait_fixed(4), retry_stop=tenacity.stop_after_delay(10)
    )

    def attempts_until_paused(sender: OrderedSender) -> int:
        before = times_sent(emulator, "m-1")
        while not sender.paused_lanes():
            assert sender.deliver_due() == 1
            clock.advance(4)
        return times_sent(emulator, "m-1") - before

    with open_sender(outbox, emulator, clock, config) as sender:
        put_lane(sender, "m-1")
        assert attempts_until_paused(sender) == 4  # at 0, 4, 8 and 12 s: 12 s is past 10
        clock.advance(3600)  # an hour later, the age starts again from nothing
        assert sender.resume("A")
        assert attempts_until_paused(sender) == 4

"""An operator's pause while a sender delivers to the emulator over HTTP (the lean transport, no
boto3): the paused lane sends nothing until ``resume`` while the other lanes flow, then goes on
in put order; a head in flight when the pause lands has its outcome recorded, and the lane stays
paused whatever that outcome was."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from ordered_sender import AsyncOrderedSender, LanePaused, OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator, EntryError, ProcessedMessage
from ordered_sender.store import PAUSED_BY_OPERATOR
from ordered_sender.transport.http import HttpTransport

WAIT = 10.0
"""Longest any event of these tests is waited for; they end well before when they pass."""


def transport_to(emulator: Emulator) -> HttpTransport:
    return HttpTransport.from_environment(
        endpoint_url=emulator.endpoint_url, region_name="us-east-1", timeout=WAIT
    )


def sender_on(emulator: Emulator, outbox: Path, **config: Any) -> OrderedSender:
    return OrderedSender(
        outbox, transport=transport_to(emulator), config=SenderConfig(**config), autostart=False
    )


def hold_in_flight(emulator: Emulator, message_id: str) -> tuple[threading.Event, threading.Event]:
    """The endpoint holds the request that carries ``message_id`` the first time (processed,
    not yet answered): ``inside`` is set then, and the answer waits for ``release``."""
    inside, release = threading.Event(), threading.Event()

    def hold(message: ProcessedMessage) -> None:
        if message.message_id == message_id and not inside.is_set():
            inside.set()
            assert release.wait(WAIT)

    emulator.add_processor(hold)
    return inside, release


def processed(emulator: Emulator, input_name: str) -> list[int]:
    return [json.loads(m.payload)["n"] for m in emulator.processed(input_name)]


def test_a_paused_lane_sends_nothing_while_the_others_flow_and_resumes_in_put_order(
    outbox: Path, emulator: Emulator
) -> None:
    for name in ("A", "B", "C"):
        emulator.create_input(name)
    inside, release = hold_in_flight(emulator, "b-1")
    # One request at a time: while b-1's is held, nothing else is planned.
    with sender_on(emulator, outbox, concurrency=1) as sender:
        sender.put_many(
            [(name, {"n": n}, f"{name.lower()}-{n}") for n in range(3) for name in "BC"]
        )
        sender.start()
        assert inside.wait(WAIT)
        sender.put_many([("A", {"n": n}) for n in range(5)])
        assert sender.pause("A", reason="detector model being replaced")
        release.set()
        # B and C go on, and more of them are put meanwhile; A waits.
        sender.put_many([(name, {"n": n}) for n in range(3, 6) for name in "BC"])
        assert sender.flush(timeout=WAIT)
        assert processed(emulator, "A") == []
        assert processed(emulator, "B") == processed(emulator, "C") == list(range(6))
        ((lane, code, text),) = [
            (p.lane, p.error_code, p.error_text) for p in sender.paused_lanes()
        ]
        assert (lane, code, text) == ("A", PAUSED_BY_OPERATOR, "detector model being replaced")
        assert sender.counts().blocked == 5

        assert sender.resume("A")
        assert sender.flush(timeout=WAIT)
    assert processed(emulator, "A") == list(range(5))
    assert processed(emulator, "B") == list(range(6))


OUTCOMES = {
    # outcome of the head in flight: (policy, entry error, paused at, code, dead letters)
    "delivered": ("pause", None, "a-1", PAUSED_BY_OPERATOR, []),
    "transient failure": ("pause", "ThrottlingException", "a-0", PAUSED_BY_OPERATOR, []),
    "permanent failure, pause policy": (
        "pause",
        "InvalidRequestException",
        "a-0",
        "InvalidRequestException",
        [],
    ),
    "permanent failure, dead-letter policy": (
        "dead_letter",
        "InvalidRequestException",
        "a-1",
        PAUSED_BY_OPERATOR,
        ["a-0"],
    ),
}


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_a_head_in_flight_when_the_pause_lands_is_recorded_and_the_lane_stays_paused(
    outbox: Path, emulator: Emulator, outcome: str
) -> None:
    policy, error_code, paused_at, code, dead_letters = OUTCOMES[outcome]
    emulator.create_input("A")
    inside, release = threading.Event(), threading.Event()

    def hold_the_first_a0(message: ProcessedMessage) -> EntryError | None:
        if message.message_id != "a-0" or inside.is_set():
            return None
        inside.set()
        assert release.wait(WAIT)
        return None if error_code is None else EntryError("a-0", error_code, "refused")

    emulator.add_gate(hold_the_first_a0)
    with sender_on(emulator, outbox, on_permanent_failure=policy) as sender:
        receipts = sender.put_many([("A", {"n": n}, f"a-{n}") for n in range(3)])
        delivering = threading.Thread(target=sender.deliver_due)
        delivering.start()
        assert inside.wait(WAIT)  # a-0 is in flight, held by the endpoint
        assert sender.pause("A", reason="hold")
        release.set()
        delivering.join(WAIT)
        assert not delivering.is_alive()

        # The outcome is recorded ...
        assert processed(emulator, "A") == ([0] if error_code is None else [])
        assert receipts[0].delivered() == (error_code is None)
        assert [letter.message_id for letter in sender.dead_letters()] == dead_letters
        if outcome == "transient failure":
            (lane,) = sender.store.lanes_overview(10)
            assert (lane.attempts, lane.last_error_code) == (1, "ThrottlingException")
        # ... and the lane stays paused: nothing more is sent.
        ((message_id, error),) = [(p.message_id, p.error_code) for p in sender.paused_lanes()]
        assert (message_id, error) == (paused_at, code)
        assert sender.deliver_due() == 0
        with pytest.raises(LanePaused, match=code):
            receipts[2].result(timeout=WAIT)

        assert sender.resume("A")
        sender.deliver_due()
    expected = [1, 2] if dead_letters else [0, 1, 2]
    assert processed(emulator, "A") == expected


def test_the_last_message_delivered_while_paused_leaves_no_paused_lane(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    inside, release = hold_in_flight(emulator, "a-0")
    with sender_on(emulator, outbox) as sender:
        (receipt,) = sender.put_many([("A", {"n": 0}, "a-0")])
        delivering = threading.Thread(target=sender.deliver_due)
        delivering.start()
        assert inside.wait(WAIT)
        assert sender.pause("A")
        release.set()
        delivering.join(WAIT)
        assert not delivering.is_alive()
        assert receipt.delivered()
        assert sender.paused_lanes() == []
        counts = sender.counts()
        assert (counts.pending, counts.lanes, counts.paused_lanes) == (0, 0, 0)


def test_an_async_sender_pauses_a_lane_with_its_head_in_flight_and_resumes_it(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    inside, release = hold_in_flight(emulator, "a-0")

    async def main() -> None:
        async with AsyncOrderedSender(outbox, transport=transport_to(emulator)) as sender:
            first = await sender.put("A", {"n": 0}, message_id="a-0")
            assert await asyncio.to_thread(inside.wait, WAIT)
            second = await sender.put("A", {"n": 1}, message_id="a-1")
            assert await sender.pause("A", reason="hold")
            assert not await sender.pause("A")
            with pytest.raises(LanePaused, match="PausedByOperator: hold"):
                await second.result(timeout=WAIT)
            release.set()
            assert await sender.resume("A")
            await asyncio.gather(first.result(timeout=WAIT), second.result(timeout=WAIT))
        assert processed(emulator, "A") == [0, 1]

    asyncio.run(asyncio.wait_for(main(), timeout=3 * WAIT))

"""At most one partial request in flight: messages put one by one ride together."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ordered_sender import OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator
from ordered_sender.emulator.recording import ProcessedMessage
from ordered_sender.message import Message
from ordered_sender.scheduler import hold_partial, is_partial
from ordered_sender.store import StoredMessage

LIMITS = {"max_messages": 10, "max_payload_bytes": 1000}


def head(seq: int, size: int = 10, *, solo: bool = False) -> StoredMessage:
    message = Message("Input", b"x" * size, f"m{seq}")
    return StoredMessage(seq, message, f"L{seq}", enqueued_at=0.0, solo=solo)


def test_a_request_is_partial_when_it_had_room_for_more() -> None:
    assert is_partial((head(1),), **LIMITS)
    assert not is_partial(tuple(head(n) for n in range(10)), **LIMITS)  # ten messages
    assert not is_partial((head(1, 300), head(2, 300)), **LIMITS)  # over half the bytes
    assert not is_partial((head(1, solo=True),), **LIMITS)  # isolating a refused message


def test_a_partial_request_waits_while_another_is_in_flight_and_full_ones_never_wait() -> None:
    full = tuple(head(n) for n in range(10))
    partial = (head(20), head(21))
    assert hold_partial([full, partial], partial_in_flight=0, **LIMITS) == ([full, partial], False)
    assert hold_partial([full, partial], partial_in_flight=1, **LIMITS) == ([full], True)
    # Two partial ones planned together: the second waits for the first.
    other = (head(30),)
    assert hold_partial([partial, other], partial_in_flight=0, **LIMITS) == ([partial], True)


def test_puts_while_a_request_is_in_flight_go_together_in_the_next_one(
    outbox: Path, emulator: Emulator
) -> None:
    for lane in range(5):
        emulator.create_input(f"Lane{lane}")
    inside, release = threading.Event(), threading.Event()

    def hold_the_first(processed: ProcessedMessage) -> None:
        if json.loads(processed.payload) == {"n": 0}:
            inside.set()
            assert release.wait(timeout=10)

    emulator.add_processor(hold_the_first)
    client = emulator.client("iotevents-data")
    with OrderedSender(outbox, client=client, config=SenderConfig(concurrency=4)) as sender:
        sender.put("Lane0", {"n": 0})
        assert inside.wait(timeout=10)  # its request is in flight, held by the endpoint
        for lane in range(1, 5):
            sender.put(f"Lane{lane}", {"n": lane})
        release.set()
        assert sender.flush(timeout=30)
    requests = [sorted(m.input_name for m in r.messages) for r in emulator.requests()]
    # Three workers were free, yet the four puts waited for the one request in flight.
    assert requests == [["Lane0"], ["Lane1", "Lane2", "Lane3", "Lane4"]]

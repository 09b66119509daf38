"""A worker that recorded an outcome plans the next request itself: a lane's next message goes
out without a round through the dispatcher (one thread hand-off less per message)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Collection
from pathlib import Path

import pytest

from ordered_sender import OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator
from ordered_sender.store import StoredMessage

MESSAGES = 60


def planning_threads(sender: OrderedSender) -> Counter[str]:
    """Counts, by thread name prefix, the plans that found due heads."""
    found: Counter[str] = Counter()
    store = sender.store
    ready_heads = store.ready_heads

    def counted(now: float, exclude_lanes: Collection[str], limit: int) -> list[StoredMessage]:
        heads = ready_heads(now, exclude_lanes, limit)
        if heads:
            found[threading.current_thread().name.rsplit("_", 1)[0]] += 1
        return heads

    store.ready_heads = counted  # type: ignore[method-assign]
    return found


@pytest.mark.parametrize("lanes", [1, 3])
def test_a_lanes_next_message_is_planned_by_the_worker_that_recorded_its_head(
    outbox: Path, emulator: Emulator, lanes: int
) -> None:
    for lane in range(lanes):
        emulator.create_input(f"Lane{lane}")
    # A long idle poll: the dispatcher looks again only when woken.
    config = SenderConfig(idle_poll_seconds=30.0, concurrency=4)
    client = emulator.client("iotevents-data")
    with OrderedSender(outbox, client=client, config=config, autostart=False) as sender:
        sender.put_many([(f"Lane{n % lanes}", {"n": n // lanes}) for n in range(MESSAGES * lanes)])
        plans = planning_threads(sender)
        sender.start()
        assert sender.flush(timeout=60)
    processed = [(p.input_name, p.payload) for p in emulator.processed()]
    for lane in range(lanes):
        values = [payload for name, payload in processed if name == f"Lane{lane}"]
        assert [json.loads(value)["n"] for value in values] == list(range(MESSAGES))
    # The dispatcher planned the first request(s); the workers planned the rest.
    assert plans["ordered-sender-dispatcher"] <= lanes
    assert plans["ordered-sender-worker"] >= MESSAGES - lanes


def test_close_while_a_worker_plans_its_next_request_sends_nothing_more(
    outbox: Path, emulator: Emulator
) -> None:
    """close() during a worker's planning query: the query ends before the outbox is closed,
    and what it found is not sent (closing began), so it stays pending for the next sender."""
    emulator.create_input("Lane0")
    client = emulator.client("iotevents-data")
    config = SenderConfig(idle_poll_seconds=30.0)
    sender = OrderedSender(outbox, client=client, config=config, autostart=False)
    sender.put_many([("Lane0", {"n": n}) for n in range(2)])
    inside, release = threading.Event(), threading.Event()
    store = sender.store
    ready_heads = store.ready_heads

    def held_in_a_worker(
        now: float, exclude_lanes: Collection[str], limit: int
    ) -> list[StoredMessage]:
        if threading.current_thread().name.startswith("ordered-sender-worker"):
            inside.set()
            assert release.wait(timeout=10)
        return ready_heads(now, exclude_lanes, limit)

    store.ready_heads = held_in_a_worker  # type: ignore[method-assign]
    sender.start()
    assert inside.wait(timeout=10)  # the first message is recorded; the worker plans on
    closing = threading.Thread(target=sender.close)
    closing.start()
    began = threading.Event()
    for _ in range(10_000):  # close() begins at once; at most 10 s
        if sender._delivery.closed:
            break
        began.wait(0.001)
    assert sender._delivery.closed
    release.set()
    closing.join(timeout=10)
    assert sender.wait_closed(timeout=10)

    assert [json.loads(p.payload)["n"] for p in emulator.processed()] == [0]
    with OrderedSender(outbox, client=client, config=config, autostart=False) as again:
        assert again.counts().pending == 1


def test_a_worker_going_on_wakes_the_dispatcher_only_when_it_left_due_heads_behind(
    outbox: Path, emulator: Emulator
) -> None:
    """20 lanes, 10 messages a request: each worker takes up the 10 lanes it just released and
    knows (by asking for one head more) that no other lane is due, so the dispatcher, woken
    only for due heads left behind, does not look again after every request."""
    lanes, per_lane = 20, 15
    for lane in range(lanes):
        emulator.create_input(f"Lane{lane}")
    config = SenderConfig(idle_poll_seconds=30.0, concurrency=4)
    client = emulator.client("iotevents-data")
    with OrderedSender(outbox, client=client, config=config, autostart=False) as sender:
        sender.put_many([(f"Lane{n % lanes}", {"n": n}) for n in range(lanes * per_lane)])
        looked: Counter[str] = Counter()
        store = sender.store
        ready_heads = store.ready_heads

        def counted(now: float, exclude_lanes: Collection[str], limit: int) -> list[StoredMessage]:
            looked[threading.current_thread().name.rsplit("_", 1)[0]] += 1
            return ready_heads(now, exclude_lanes, limit)

        store.ready_heads = counted  # type: ignore[method-assign]
        sender.start()
        assert sender.flush(timeout=60)
        requests = sender.stats().requests
    assert requests == lanes * per_lane // 10
    assert looked["ordered-sender-worker"] >= requests - 2
    # Before: a worker that took exactly as many heads as it could send woke the dispatcher to
    # look again, once per request (30 looks here), finding nothing.
    assert looked["ordered-sender-dispatcher"] <= 8

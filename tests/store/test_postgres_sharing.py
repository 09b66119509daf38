"""Workers of one PostgreSQL outbox share its lanes: each live worker takes at most its fair
share of the due lanes, so a backlog in a few lanes is delivered by all of them, not by the one
that planned first (real senders on connections of their own, boto3 over HTTP to the emulator)."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from ordered_sender import OrderedSender, Outbox, SenderConfig
from ordered_sender.emulator import Emulator, Faults

psycopg = pytest.importorskip("psycopg", reason="pip install 'ordered-sender[postgres]'")

WORKERS = 3
LANES = 30
PER_LANE = 6
WAIT_SECONDS = 60.0
CONFIG = SenderConfig(idle_poll_seconds=0.05)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Look at ``condition`` until it holds (the senders' threads make it so) or time is up."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def counting_client(emulator: Emulator, sent: Counter[str], worker: int) -> Any:
    """An IoT Events Data client that counts the messages this worker sends."""
    client = emulator.client("iotevents-data")

    def count(params: dict[str, Any], **_: Any) -> None:
        sent[str(worker)] += len(params["messages"])

    client.meta.events.register("provide-client-params.iot-events-data.BatchPutMessage", count)
    return client


def test_three_workers_over_a_backlog_in_30_lanes_each_deliver_a_fair_part(
    postgres_url: str, emulator: Emulator
) -> None:
    for lane in range(LANES):
        emulator.create_input(f"Input{lane}")
    # Some latency, so that a request is in flight while the others plan.
    emulator.set_faults(Faults(latency_ms=(2, 5)))
    sent: Counter[str] = Counter()
    with Outbox(postgres_url, CONFIG):
        pass  # the schema, before the senders race to create it
    senders = [
        OrderedSender(postgres_url, client=counting_client(emulator, sent, worker), config=CONFIG)
        for worker in range(WORKERS)
    ]
    try:
        with psycopg.connect(postgres_url, autocommit=True) as watcher:

            def live_workers() -> int:
                row = watcher.execute("SELECT count(*) FROM ordered_sender.workers").fetchone()
                return int(row[0]) if row else 0

            wait_until(lambda: live_workers() == WORKERS, "every sender said it is live")
            with Outbox(postgres_url, CONFIG) as producer:
                # One transaction: the whole backlog appears at once.
                producer.put_many(
                    [(f"Input{lane}", {"n": n}) for n in range(PER_LANE) for lane in range(LANES)]
                )
            wait_until(
                lambda: len(emulator.processed()) >= LANES * PER_LANE, "the backlog was delivered"
            )
    finally:
        for sender in senders:
            sender.close()
    seen: dict[str, list[int]] = defaultdict(list)
    for processed in emulator.processed():
        seen[processed.input_name].append(json.loads(processed.payload)["n"])
    assert seen == {f"Input{lane}": list(range(PER_LANE)) for lane in range(LANES)}
    # A fair share is 10 lanes, 60 messages; each worker delivered at least 3 lanes' worth.
    assert sorted(sent) == [str(worker) for worker in range(WORKERS)], sent
    assert min(sent.values()) >= 3 * PER_LANE, sent
    assert sum(sent.values()) == LANES * PER_LANE

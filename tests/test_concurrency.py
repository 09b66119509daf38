"""Concurrency: several requests in flight never share a lane; racing puts keep commit order."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import tenacity

from ordered_sender import OrderedSender, Receipt, SenderConfig
from ordered_sender.emulator import Emulator, Faults
from ordered_sender.message import Message
from ordered_sender.transport import BatchResponse
from ordered_sender.transport.iotevents import IotEventsTransport


class LaneWatchingTransport:
    """The real boto3 transport, watched: which input lanes are in flight at every moment."""

    def __init__(self, inner: IotEventsTransport) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._requests_in_flight = 0
        self.most_requests_in_flight = 0
        self.overlaps: list[str] = []

    def send(self, messages: Sequence[Message]) -> BatchResponse:
        lanes = {m.input_name for m in messages}
        with self._lock:
            self.overlaps.extend(sorted(lanes & self._in_flight))
            self._in_flight |= lanes
            self._requests_in_flight += 1
            self.most_requests_in_flight = max(
                self.most_requests_in_flight, self._requests_in_flight
            )
        try:
            return self.inner.send(messages)
        finally:
            with self._lock:
                self._in_flight -= lanes
                self._requests_in_flight -= 1


def test_requests_in_flight_together_never_share_a_lane(outbox: Path) -> None:
    faults = Faults(latency_ms=(1, 6), entry_error_rate=0.1)
    with Emulator(seed=11, faults=faults) as emu:
        for lane in range(40):
            emu.create_input(f"L{lane}")
        transport = LaneWatchingTransport(IotEventsTransport(emu.client("iotevents-data")))
        config = SenderConfig(concurrency=4, retry_wait=tenacity.wait_fixed(0.001))
        with OrderedSender(outbox, transport=transport, config=config) as sender:
            sender.put_many([(f"L{lane}", {"n": n}) for n in range(15) for lane in range(40)])
            assert sender.flush(timeout=120)
        order = {
            f"L{lane}": [json.loads(p.payload)["n"] for p in emu.processed(f"L{lane}")]
            for lane in range(40)
        }
    assert transport.overlaps == []
    assert transport.most_requests_in_flight > 1  # the test did exercise concurrent requests
    assert order == {f"L{lane}": list(range(15)) for lane in range(40)}


def test_puts_racing_from_threads_into_one_lane_arrive_in_commit_order(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("Shared")
    receipts: list[Receipt] = []
    receipts_lock = threading.Lock()
    start = threading.Barrier(6)

    with OrderedSender(outbox, client=emulator.client("iotevents-data")) as sender:

        def putter(thread: int) -> None:
            start.wait(timeout=10)
            for index in range(40):
                receipt = sender.put("Shared", {"thread": thread, "index": index})
                with receipts_lock:
                    receipts.append(receipt)

        threads = [threading.Thread(target=putter, args=(t,)) for t in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sender.flush(timeout=60)

    processed = emulator.processed("Shared")
    by_seq = [r.message_id for r in sorted(receipts, key=lambda r: r.seq)]
    assert [p.message_id for p in processed] == by_seq
    for number in range(6):
        indexes = [
            json.loads(p.payload)["index"]
            for p in processed
            if json.loads(p.payload)["thread"] == number
        ]
        assert indexes == list(range(40))


def test_a_put_from_another_process_is_noticed_without_waiting_for_the_poll(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("A")
    # A poll this long would fail the test: only the look at other connections' commits wakes it.
    config = SenderConfig(idle_poll_seconds=120.0)
    with OrderedSender(outbox, client=emulator.client("iotevents-data"), config=config) as sender:
        sender.put("A", {"n": 0}, message_id="first").result(timeout=30)
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from ordered_sender import Outbox; "
                "Outbox(sys.argv[1]).put('A', {'n': 1}, message_id='from-elsewhere')",
                str(outbox),
            ],
            check=True,
            timeout=60,
        )
        sender.outbox.wait_delivered("from-elsewhere", timeout=30)
    assert [m.message_id for m in emulator.processed("A")] == ["first", "from-elsewhere"]

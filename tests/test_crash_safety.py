"""Crash safety: a sender process killed with SIGKILL at random points loses nothing and keeps
order; the next process on the same outbox finishes, resending with the original messageIds."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from ordered_sender.emulator import Emulator, Faults, ProcessedMessage

CHILD = r"""
import sys
import boto3, botocore.config, structlog, tenacity
from ordered_sender import OrderedSender, SenderConfig

# stdout carries the acknowledgements the test reads; logs go elsewhere.
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

outbox, endpoint, round_number, lanes, per_lane, start = sys.argv[1:7]
client = boto3.client(
    "iotevents-data", endpoint_url=endpoint, region_name="us-east-1",
    config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=5),
)
config = SenderConfig(retry_wait=tenacity.wait_fixed(0.005), concurrency=3)
# "after-puts": deliver only once every put is acknowledged, so a kill can land mid-delivery.
sender = OrderedSender(outbox, client=client, config=config, autostart=start == "at-once")
print("ready", flush=True)
for index in range(int(per_lane)):
    for lane in range(int(lanes)):
        sender.put(f"Lane{lane}", {"round": int(round_number), "index": index})
        print(f"put {lane} {index}", flush=True)
sender.start()
assert sender.flush(timeout=120)
print("flushed", flush=True)
sender.close()
"""

LANES = 6
PER_LANE = 60
ROUNDS = 6


class ProcessedCounter:
    """Emulator processor that sets ``reached`` once ``target`` messages were processed."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached = threading.Event()
        self._lock = threading.Lock()

    def arm(self, extra: int) -> None:
        with self._lock:
            self.target = self.count + extra
            self.reached.clear()

    def __call__(self, message: ProcessedMessage) -> None:
        with self._lock:
            self.count += 1
            if self.count >= self.target:
                self.reached.set()


def start_child(
    outbox: Path, endpoint: str, round_number: int, per_lane: int, start: str = "at-once"
) -> subprocess.Popen[str]:
    env = dict(os.environ)
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(outbox),
            endpoint,
            str(round_number),
            str(LANES),
            str(per_lane),
            start,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def read_until(
    child: subprocess.Popen[str],
    lines_wanted: int,
    acknowledged: set[tuple[int, int, int]],
    round_number: int,
) -> None:
    """Read the child's acknowledgements until ``lines_wanted`` puts were acknowledged."""
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    seen = 0
    while seen < lines_wanted:
        line = child.stdout.readline()
        if not line.startswith("put "):
            break
        _, lane, index = line.split()
        acknowledged.add((int(lane), round_number, int(index)))
        seen += 1


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_keeps_order(outbox: Path) -> None:
    chooser = random.Random(99)
    counter = ProcessedCounter()
    faults = Faults(
        request_error_rate=0.2, entry_error_rate=0.1, drop_connection_rate=0.1, latency_ms=(0, 3)
    )
    acknowledged: set[tuple[int, int, int]] = set()
    with Emulator(seed=5, faults=faults) as emu:
        for lane in range(LANES):
            emu.create_input(f"Lane{lane}")
        emu.add_processor(counter)
        kills = 0
        for round_number in range(ROUNDS):
            start = "at-once" if round_number % 2 == 0 else "after-puts"
            child = start_child(outbox, emu.endpoint_url, round_number, PER_LANE, start)
            try:
                if round_number % 2 == 0:
                    # Kill while it is putting (and delivering in the background).
                    read_until(
                        child, chooser.randint(1, LANES * PER_LANE - 1), acknowledged, round_number
                    )
                else:
                    # Kill while it delivers: after all puts, once some more were processed.
                    read_until(child, LANES * PER_LANE, acknowledged, round_number)
                    counter.arm(chooser.randint(1, 40))
                    assert counter.reached.wait(timeout=60), "the child delivered nothing"
                child.send_signal(signal.SIGKILL)
                kills += 1
            finally:
                if child.poll() is None:
                    child.kill()
                child.wait(timeout=30)
                assert child.stdout is not None
                child.stdout.close()
            assert child.returncode == -signal.SIGKILL

        final = start_child(outbox, emu.endpoint_url, ROUNDS, 0)
        out, _ = final.communicate(timeout=180)
        assert final.returncode == 0, out
        assert out.splitlines()[-1] == "flushed"

        processed = emu.processed()
        requested_ids = {m.message_id for r in emu.requests() for m in r.messages}
        stats = emu.stats()

    assert kills == ROUNDS
    per_lane: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for message in processed:
        body = json.loads(message.payload)
        per_lane[int(message.input_name.removeprefix("Lane"))].append(
            (body["round"], body["index"])
        )
    for lane, sequence in per_lane.items():
        assert sequence == sorted(set(sequence)), f"lane {lane} out of order or duplicated"
        for round_number in range(ROUNDS):
            indexes = [i for r, i in sequence if r == round_number]
            assert indexes == list(range(len(indexes))), f"lane {lane} has a gap"
    delivered = {(lane, r, i) for lane, seq in per_lane.items() for r, i in seq}
    assert acknowledged <= delivered, "an acknowledged put was lost"
    # One id per message, for its whole life: every id ever sent was processed exactly once, and
    # resends after kills and dropped connections were recognised as duplicates.
    assert requested_ids == {m.message_id for m in processed}
    assert len(processed) == len(delivered)
    assert stats.duplicates_ignored > 0

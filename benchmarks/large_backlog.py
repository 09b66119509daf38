"""A large backlog, side by side with a small one: peak memory, time to the first delivery, and
delivery rate, for an outbox of N messages over L lanes.

    python benchmarks/large_backlog.py --messages 10000,1000000 --lanes 10000

Each size is filled through ``Outbox.put_many`` (not timed), then delivered by a fresh process
(so its peak RSS is its own) through a transport that answers at once, so what is measured is the
library and its store, not a network. The run stops after ``--seconds`` of delivery.

The fill commits with synchronous=OFF to be quick, which leaves its writes (170 MB for 1,000,000
messages) in the page cache; they are written out (``sync``) before delivery starts, as puts with
the default synchronous=FULL would have left them. Otherwise the delivery's commits wait behind
that writeback (2.0 ms a commit instead of 0.8 ms here) and the run measures the fill.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DELIVER = r"""
import json, sys, threading, time
from ordered_sender import OrderedSender, SenderConfig
from ordered_sender.transport import BatchResponse


# Accepts every request at once and counts its messages, keeping none: the run costs the same to
# watch at its end as at its start (re-counting kept requests grew with the run).
class CountingTransport:

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = 0
        self.first = threading.Event()

    def send(self, messages):
        with self.lock:
            self.messages += len(messages)
        self.first.set()
        return BatchResponse()

    def delivered(self):
        with self.lock:
            return self.messages


path, seconds, total = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
transport = CountingTransport()
opened = time.perf_counter()
sender = OrderedSender(path, transport=transport, config=SenderConfig(synchronous="FULL"))
first = time.perf_counter() - opened if transport.first.wait(60) else None
started = time.perf_counter()
start_count = transport.delivered()
# Until --seconds pass or everything is delivered, whichever comes first.
while time.perf_counter() - started < seconds:
    if transport.delivered() >= total:
        break
    time.sleep(0.01)
delivered = transport.delivered() - start_count
rate = delivered / (time.perf_counter() - started)
sender.close()
with open("/proc/self/status") as status:
    peak = next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024
print(json.dumps({"first_delivery_s": first, "messages_per_s": rate, "peak_rss_mb": peak}))
"""


def fill(path: Path, messages: int, lanes: int) -> None:
    from ordered_sender import Outbox, SenderConfig

    chunk = 20_000
    with Outbox(path, SenderConfig(synchronous="OFF", send_timestamp=False)) as outbox:
        for start in range(0, messages, chunk):
            outbox.put_many(
                (f"Lane{n % lanes}", {"n": n}) for n in range(start, min(start + chunk, messages))
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", default="10000,1000000", help="comma-separated sizes")
    parser.add_argument("--lanes", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="of delivery per size")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/large_backlog.json"))
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(s) for s in options.messages.split(",")):
            path = Path(scratch) / f"outbox-{size}.db"
            filled = time.perf_counter()
            fill(path, size, options.lanes)
            fill_seconds = time.perf_counter() - filled
            os.sync()
            result = subprocess.run(
                [sys.executable, "-c", DELIVER, str(path), str(options.seconds), str(size)],
                capture_output=True,
                text=True,
                check=True,
                timeout=options.seconds + 300,
            )
            row = {"messages": size, "lanes": options.lanes, "fill_s": round(fill_seconds, 1)}
            row |= json.loads(result.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{size:>9,} messages over {options.lanes:,} lanes: first delivery after "
                f"{row['first_delivery_s']:.2f} s, {row['messages_per_s']:,.0f} messages/s, "
                f"peak RSS {row['peak_rss_mb']:.0f} MB"
            )
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

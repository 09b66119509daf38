"""A large backlog, side by side with a small one: peak memory, time to the first delivery, and
delivery rate, for an outbox of N messages over L lanes.

    python benchmarks/large_backlog.py --messages 10000,1000000 --lanes 10000

Each size is filled through ``Outbox.put_many`` (not timed), then delivered by a fresh process
(so its peak RSS is its own) through a transport that answers at once, so what is measured is the
library and its store, not a network. Each delivery stops after ``--seconds``. Every size is
delivered ``--repeat`` times, in turns (10,000, 1,000,000, 10,000, ...), each from a fresh copy of
its fill; the median rate is reported, with every run's: on 2 shared cores back-to-back runs of
one size differ by up to 30%, and the 10,000 run lasts little more than a second.

The fill commits with synchronous=OFF to be quick, which leaves its writes (170 MB for 1,000,000
messages) in the page cache; they are written out (``sync``) before delivery starts, as puts with
the default synchronous=FULL would have left them. Otherwise the delivery's commits wait behind
that writeback (2.0 ms a commit instead of 0.8 ms here) and the run measures the fill.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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


def deliver(path: Path, seconds: float, size: int) -> dict[str, float]:
    """Deliver a copy of the filled outbox at ``path`` in a fresh process; what it measured."""
    copy = path.with_suffix(".run.db")
    shutil.copyfile(path, copy)
    os.sync()
    try:
        result = subprocess.run(
            [sys.executable, "-c", DELIVER, str(copy), str(seconds), str(size)],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 300,
        )
    finally:
        for leftover in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
            leftover.unlink(missing_ok=True)
    measured: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", default="10000,1000000", help="comma-separated sizes")
    parser.add_argument("--lanes", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="of delivery per run")
    parser.add_argument("--repeat", type=int, default=3, help="deliveries of each size")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/large_backlog.json"))
    options = parser.parse_args()
    sizes = [int(s) for s in options.messages.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        paths, fill_seconds = {}, {}
        for size in sizes:
            paths[size] = Path(scratch) / f"outbox-{size}.db"
            filled = time.perf_counter()
            fill(paths[size], size, options.lanes)
            fill_seconds[size] = time.perf_counter() - filled
        runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
        for _ in range(options.repeat):
            for size in sizes:
                runs[size].append(deliver(paths[size], options.seconds, size))
    rows: list[dict[str, object]] = []
    for size in sizes:
        rates = [run["messages_per_s"] for run in runs[size]]
        rate = statistics.median(rates)
        smallest = statistics.median(run["messages_per_s"] for run in runs[sizes[0]])
        row: dict[str, object] = {
            "messages": size,
            "lanes": options.lanes,
            "fill_s": round(fill_seconds[size], 1),
            "first_delivery_s": max(run["first_delivery_s"] for run in runs[size]),
            "messages_per_s": rate,
            "messages_per_s_runs": [round(one) for one in rates],
            "rate_vs_smallest": round(rate / smallest, 2),
            "peak_rss_mb": max(run["peak_rss_mb"] for run in runs[size]),
        }
        rows.append(row)
        print(
            f"{size:>9,} messages over {options.lanes:,} lanes: first delivery after at most "
            f"{row['first_delivery_s']:.2f} s, {row['messages_per_s']:,.0f} messages/s "
            f"({row['rate_vs_smallest']}x; runs {row['messages_per_s_runs']}), "
            f"peak RSS {row['peak_rss_mb']:.0f} MB"
        )
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

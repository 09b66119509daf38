"""The bounds beside the results: what the endpoint and the disk can do at most on this machine.

    python benchmarks/suite_capacity.py endpoint URL THREADS SECONDS LANES
    python benchmarks/suite_capacity.py disk FOLDER SECONDS

``endpoint``: the cheapest client there is, raw HTTP/1.1 keep-alive connections from THREADS
threads posting pre-encoded 10-message BatchPutMessage bodies (no signing, no boto3), for SECONDS.
What it reaches is the endpoint's capacity as far as one Python client on this machine can push
it; a contender near it is bounded by the endpoint, not by itself.

``disk``: how many one-row SQLite transactions per second commit with WAL and synchronous=FULL
(each an fsync), the bound of a producer that put()s one message at a time; and put() alone
through an ``Outbox`` (nothing delivering), the same with the library's work on top; then 8
threads putting at once, with synchronous=FULL and with synchronous=OFF. Without a wait for the
disk, the second is what the interpreter (and SQLite's CPU) allows put() from threads of one
process, the bound of the first on any disk.

Each prints one JSON line.
"""

from __future__ import annotations

import base64
import http.client
import json
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from suite_contenders import cpu_seconds

if TYPE_CHECKING:
    from ordered_sender.config import Synchronous

BATCH_PUT_PATH = "/inputs/messages"


def endpoint_capacity(url: str, threads: int, seconds: float, lanes: int) -> dict[str, object]:
    address = urlsplit(url)
    payload = base64.b64encode(b'{"capacity":1}').decode()
    counts = {"requests": 0, "messages": 0, "failures": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work(worker: int) -> None:
        connection = http.client.HTTPConnection(address.netloc, timeout=30)
        number = 0
        requests = messages = failures = 0
        while time.monotonic() < deadline:
            body = json.dumps(
                {
                    "messages": [
                        {
                            "messageId": f"cap-{worker}-{number}-{k}",
                            "inputName": f"Lane{k % lanes}",
                            "payload": payload,
                        }
                        for k in range(10)
                    ]
                }
            ).encode()
            number += 1
            connection.request("POST", BATCH_PUT_PATH, body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            document = json.loads(answer.read())
            requests += 1
            if answer.status != 200 or document.get("BatchPutMessageErrorEntries"):
                failures += 1
            else:
                messages += 10
        connection.close()
        with lock:
            counts["requests"] += requests
            counts["messages"] += messages
            counts["failures"] += failures

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    return {
        "threads": threads,
        "seconds": elapsed,
        "requests_per_second": counts["requests"] / elapsed,
        "messages_per_second": counts["messages"] / elapsed,
        "failures": counts["failures"],
    }


def sqlite_full_commits(folder: Path, seconds: float) -> float:
    connection = sqlite3.connect(folder / "fsync.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB)")
    commits = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t (body) VALUES (?)", (b'{"lane":1,"position":1}',))
        connection.execute("COMMIT")
        commits += 1
    elapsed = time.perf_counter() - started
    connection.close()
    return commits / elapsed


def outbox_puts(folder: Path, seconds: float) -> dict[str, float]:
    from ordered_sender import Outbox

    puts = 0
    with Outbox(folder / "puts.db") as outbox:
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            outbox.put(f"Lane{puts % 10}", {"lane": puts % 10, "position": puts})
            puts += 1
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
    return {"puts_per_second": puts / elapsed, "cpu_seconds_per_1000": 1000 * cpu / puts}


def outbox_puts_from_threads(
    folder: Path, seconds: float, threads: int, synchronous: Synchronous = "FULL"
) -> dict[str, float]:
    """``threads`` threads putting at once into one Outbox: group commit shares fsyncs. With
    ``synchronous="OFF"`` no commit waits for the disk: what is left is the interpreter's work
    (and SQLite's), the bound of put() from threads of one process whatever the disk."""
    from ordered_sender import Outbox, SenderConfig

    counts = [0] * threads
    config = SenderConfig(synchronous=synchronous)
    with Outbox(folder / f"puts-{threads}-{synchronous}.db", config=config) as outbox:
        cpu_before = cpu_seconds()
        started = time.perf_counter()

        def produce(worker: int) -> None:
            while time.perf_counter() - started < seconds:
                n = counts[worker]
                outbox.put(f"Lane{worker}", {"lane": worker, "position": n})
                counts[worker] = n + 1

        pool = [threading.Thread(target=produce, args=(w,)) for w in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
    puts = sum(counts)
    return {
        "threads": threads,
        "puts_per_second": puts / elapsed,
        "cpu_seconds_per_1000": 1000 * cpu / puts,
    }


def main() -> None:
    mode = sys.argv[1]
    if mode == "endpoint":
        url, threads, seconds, lanes = sys.argv[2:6]
        report: dict[str, object] = endpoint_capacity(url, int(threads), float(seconds), int(lanes))
    elif mode == "disk":
        folder, probe_seconds = Path(sys.argv[2]), float(sys.argv[3])
        report = {
            "sqlite_full_commits_per_second": sqlite_full_commits(folder, probe_seconds),
            "outbox_put": outbox_puts(folder, probe_seconds),
            "outbox_put_8_threads": outbox_puts_from_threads(folder, probe_seconds, 8),
            "outbox_put_8_threads_no_fsync": outbox_puts_from_threads(
                folder, probe_seconds, 8, synchronous="OFF"
            ),
        }
    else:
        raise SystemExit(f"unknown mode {mode!r}: endpoint or disk")
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""Delivery rate of one PostgreSQL outbox by 1, 2 and 4 `ordered-sender run` workers, in one run.

    python benchmarks/postgres_workers.py --url postgresql://USER@HOST/DB \
        [--messages 4000] [--lanes 100] [--latency-ms 20] [--workers 1,2,4] [--json out.json]

Each row puts the same messages into a fresh schema of the database (``?schema=bench_...``),
starts that many worker processes against one emulator (in this process, adding
``--latency-ms`` to every answer, as a network round trip), and times until the emulator processed
them all, sampling meanwhile how many lane leases each worker holds (the last column: each
worker's share of them, largest first). A first row delivers the same load from an SQLite
outbox with one sender, for scale. Figures depend on the machine: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import structlog
from rich.console import Console
from rich.table import Table

from ordered_sender import OrderedSender, Outbox
from ordered_sender.emulator import Emulator, Faults

COMMAND = str(Path(sys.executable).parent / "ordered-sender")


def load(messages: int, lanes: int) -> list[tuple[str, object]]:
    return [(f"Input{n % lanes}", {"n": n}) for n in range(messages)]


def wait_processed(emu: Emulator, count: int, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while emu.stats().messages_processed < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {emu.stats().messages_processed} of {count} processed")
        time.sleep(0.01)


def wait_listening(url: str, pids: list[int], timeout: float = 60.0) -> None:
    """Until every worker process is connected and listening for puts (its start is not timed)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            rows = connection.execute(
                "SELECT application_name FROM pg_stat_activity WHERE query LIKE 'LISTEN %'"
            ).fetchall()
            if all(any(f":{pid}:" in name for (name,) in rows) for pid in pids):
                return
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not start listening within a minute")
            time.sleep(0.05)


class LeaseSampler:
    """Counts, every 20 ms from its own thread and connection, the lane leases each worker
    holds: how the lanes were shared between the workers while they delivered."""

    def __init__(self, url: str, schema: str) -> None:
        self._url = url
        self._schema = schema
        self._held: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> LeaseSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import psycopg
        from psycopg import sql

        query = sql.SQL("SELECT owner, count(*) FROM {}.lane_leases GROUP BY owner").format(
            sql.Identifier(self._schema)
        )
        with psycopg.connect(self._url, autocommit=True) as connection:
            while not self._stop.wait(0.02):
                for owner, count in connection.execute(query).fetchall():
                    self._held[owner] = self._held.get(owner, 0) + count

    def shares(self, workers: int) -> list[float]:
        """Each worker's share of the leases sampled, largest first (0 for a worker never seen
        holding one)."""
        total = sum(self._held.values()) or 1
        held = sorted(self._held.values(), reverse=True) + [0] * workers
        return [count / total for count in held[:workers]]


def sqlite_row(emu: Emulator, items: list[tuple[str, object]], folder: Path) -> float:
    before = emu.stats().messages_processed
    with OrderedSender(
        folder / "outbox.db", client=emu.client("iotevents-data"), autostart=False
    ) as sender:
        sender.put_many(items)
        started = time.perf_counter()
        sender.start()
        wait_processed(emu, before + len(items))
        return time.perf_counter() - started


def postgres_row(
    emu: Emulator, items: list[tuple[str, object]], url: str, workers: int, log: Path
) -> tuple[float, list[float]]:
    """Seconds to deliver ``items``, and each worker's share of the leases held meanwhile."""
    before = emu.stats().messages_processed
    schema = f"bench_{os.getpid()}_{workers}"
    target = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    command = [COMMAND, "run", "--outbox", target, "--endpoint-url", emu.endpoint_url]
    with Outbox(target) as outbox, log.open("a") as output:
        processes = [
            subprocess.Popen(command, stdout=output, stderr=output) for _ in range(workers)
        ]
        try:
            wait_listening(url, [process.pid for process in processes])
            with LeaseSampler(url, schema) as sampler:
                outbox.put_many(items)
                started = time.perf_counter()  # the commit notified the workers
                wait_processed(emu, before + len(items))
                seconds = time.perf_counter() - started
            return seconds, sampler.shares(workers)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="postgresql:// URL of a scratch database")
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--lanes", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    arguments = parser.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    items = load(arguments.messages, arguments.lanes)
    latency = (arguments.latency_ms, arguments.latency_ms)
    table = Table(
        title=f"{arguments.messages} messages over {arguments.lanes} lanes, "
        f"{arguments.latency_ms} ms per answer"
    )
    for column in ("outbox", "workers", "seconds", "messages/s", "lanes held, each worker"):
        table.add_column(column, justify="left" if column == "outbox" else "right")
    with (
        tempfile.TemporaryDirectory() as scratch,
        Emulator(faults=Faults(latency_ms=latency)) as emu,
    ):
        for lane in range(arguments.lanes):
            emu.create_input(f"Input{lane}")
        rows = [("SQLite", 1, sqlite_row(emu, items, Path(scratch)), [1.0])]
        for workers in (int(w) for w in arguments.workers.split(",")):
            seconds, shares = postgres_row(
                emu, items, arguments.url, workers, Path(scratch) / "log"
            )
            rows.append(("PostgreSQL", workers, seconds, shares))
    for outbox, workers, seconds, shares in rows:
        table.add_row(
            outbox,
            str(workers),
            f"{seconds:.2f}",
            f"{len(items) / seconds:,.0f}",
            " / ".join(f"{share:.0%}" for share in shares),
        )
    Console().print(table)
    if arguments.json:
        figures = {
            "messages": arguments.messages,
            "lanes": arguments.lanes,
            "latency_ms": arguments.latency_ms,
            "rows": [
                {
                    "outbox": outbox,
                    "workers": workers,
                    "seconds": seconds,
                    "messages_per_second": len(items) / seconds,
                    "lease_shares": shares,
                }
                for outbox, workers, seconds, shares in rows
            ],
        }
        arguments.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

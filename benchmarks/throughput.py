"""Side-by-side delivery throughput against the embedded emulator, in one run.

    python benchmarks/throughput.py [--messages 2000] [--lanes 50] [--latency-ms 5]

Compared: the documented safe way without this library (one message per request, wait for each
answer), and OrderedSender with cross-lane batching at several concurrencies; then put() rates
for the outbox's synchronous levels. The emulator adds ``--latency-ms`` to every answer to stand
in for a network round trip. Figures depend on the machine: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import structlog
from rich.console import Console
from rich.table import Table

from ordered_sender import OrderedSender, SenderConfig
from ordered_sender.emulator import Emulator, Faults


def naive_one_at_a_time(emu: Emulator, messages: list[tuple[str, bytes]]) -> tuple[float, int]:
    client = emu.client("iotevents-data")
    started = time.perf_counter()
    for number, (input_name, payload) in enumerate(messages):
        client.batch_put_message(
            messages=[{"messageId": f"naive-{number}", "inputName": input_name, "payload": payload}]
        )
    return time.perf_counter() - started, len(messages)


def ordered_sender(
    emu: Emulator, messages: list[tuple[str, bytes]], folder: Path, concurrency: int
) -> tuple[float, int]:
    before = emu.stats().requests
    config = SenderConfig(concurrency=concurrency)
    sender = OrderedSender(
        folder / f"c{concurrency}.db",
        client=emu.client("iotevents-data"),
        config=config,
        autostart=False,
    )
    sender.put_many(messages)
    started = time.perf_counter()
    sender.start()
    assert sender.flush(timeout=600)
    elapsed = time.perf_counter() - started
    sender.close()
    return elapsed, emu.stats().requests - before


def put_rate(folder: Path, synchronous: str, count: int) -> float:
    sender = OrderedSender(
        folder / f"put-{synchronous}.db",
        client=None,
        config=SenderConfig(synchronous=synchronous),  # type: ignore[arg-type]
        autostart=False,
    )
    started = time.perf_counter()
    for number in range(count):
        sender.put(f"Input{number % 10}", {"n": number})
    elapsed = time.perf_counter() - started
    sender.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--lanes", type=int, default=50)
    parser.add_argument("--latency-ms", type=int, default=5)
    arguments = parser.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    messages = [
        (f"Input{n % arguments.lanes}", f'{{"n":{n}}}'.encode()) for n in range(arguments.messages)
    ]
    latency = (arguments.latency_ms, arguments.latency_ms)
    console = Console()
    table = Table(
        title=f"{arguments.messages} messages, {arguments.lanes} lanes, "
        f"{arguments.latency_ms} ms added per answer"
    )
    for column in ("way of sending", "seconds", "messages/s", "requests", "vs naive"):
        table.add_column(column, justify="right" if column != "way of sending" else "left")
    with (
        tempfile.TemporaryDirectory() as folder,
        Emulator(faults=Faults(latency_ms=latency)) as emu,
    ):
        for lane in range(arguments.lanes):
            emu.create_input(f"Input{lane}")
        results = [("one message per request, wait each", *naive_one_at_a_time(emu, messages))]
        for concurrency in (1, 4, 8):
            results.append(
                (
                    f"OrderedSender, concurrency {concurrency}",
                    *ordered_sender(emu, messages, Path(folder), concurrency),
                )
            )
        naive_rate = arguments.messages / results[0][1]
        for name, seconds, requests in results:
            rate = arguments.messages / seconds
            table.add_row(
                name, f"{seconds:.2f}", f"{rate:,.0f}", str(requests), f"{rate / naive_rate:.1f}x"
            )
        console.print(table)

        puts = Table(title="put() commits per second (one transaction each)")
        puts.add_column("synchronous")
        puts.add_column("puts/s", justify="right")
        for level in ("FULL", "NORMAL"):
            puts.add_row(level, f"{put_rate(Path(folder), level, 2000):,.0f}")
        console.print(puts)


if __name__ == "__main__":
    main()

"""Calls per CPU second of each transport: boto3's client against the lean HttpTransport.

    python benchmarks/transport_cpu.py [--calls 3000] [--rounds 3] [--json out.json]

Starts ``ordered-sender emulator`` in its own process (so its CPU is not counted), then times
``Transport.send`` of both transports in alternating rounds, same run, same endpoint, with one
message per call and with ten. CPU is ``time.process_time`` of this process (all its threads),
so it counts what a sender pays per request: building, signing, sending and reading. The
emulator's answer time is in the wall-clock figure only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore

from ordered_sender.message import Message
from ordered_sender.transport import Transport
from ordered_sender.transport.http import HttpTransport
from ordered_sender.transport.iotevents import IotEventsTransport, build_client

INPUT = "BenchInput"
REGION = "us-east-1"


@contextmanager
def emulator_process() -> Iterator[str]:
    """``ordered-sender emulator`` in a child process; yields its URL, stops it on the way out."""
    command = [str(Path(sys.executable).parent / "ordered-sender"), "emulator", "--input", INPUT]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        child.terminate()
        child.wait(timeout=10)


def transports(url: str) -> dict[str, Callable[[], Transport]]:
    return {
        "boto3": lambda: IotEventsTransport(
            build_client(timeout=10.0, endpoint_url=url, region_name=REGION)
        ),
        "http": lambda: HttpTransport.from_environment(endpoint_url=url, region_name=REGION),
    }


def batches(size: int, calls: int, run: str) -> list[list[Message]]:
    """Distinct message ids every call, so the emulator processes each (no de-duplication)."""
    payload = b'{"motorid": "m-1", "value": 42.5}'
    return [
        [Message(INPUT, payload, f"{run}-{call}-{n}") for n in range(size)] for call in range(calls)
    ]


def measure(transport: Transport, work: Sequence[Sequence[Message]]) -> tuple[float, float]:
    """CPU seconds and wall seconds of sending every batch; every answer must be a success."""
    cpu, wall = time.process_time(), time.perf_counter()
    for messages in work:
        response = transport.send(messages)
        if response.request_error is not None or response.entry_errors:
            raise SystemExit(f"a benchmark call failed: {response}")
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per round and transport")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    results: dict[str, dict[str, list[float]]] = {}
    with emulator_process() as url:
        built = {name: make() for name, make in transports(url).items()}
        for name, transport in built.items():
            measure(transport, batches(1, 200, f"warm-{name}"))
        for round_number in range(options.rounds):
            for size in (1, 10):
                for name, transport in built.items():
                    work = batches(size, options.calls, f"{name}-{size}-{round_number}")
                    cpu, wall = measure(transport, work)
                    row = f"{name}, {size} per call"
                    figures = results.setdefault(row, {"cpu": [], "wall": []})
                    figures["cpu"].append(options.calls / cpu)
                    figures["wall"].append(options.calls / wall)
    print(
        f"{options.calls} calls x {options.rounds} rounds per row; python "
        f"{platform.python_version()}, botocore {botocore.__version__}, {os.cpu_count()} cores; "
        "emulator in its own process"
    )
    print(f"{'transport':<22} {'calls/CPU s (median)':>21} {'calls/wall s (median)':>22}")
    summary: dict[str, dict[str, Any]] = {}
    for row, figures in results.items():
        cpu, wall = statistics.median(figures["cpu"]), statistics.median(figures["wall"])
        summary[row] = {"calls_per_cpu_second": cpu, "calls_per_wall_second": wall, **figures}
        print(f"{row:<22} {cpu:>21,.0f} {wall:>22,.0f}")
    for size in (1, 10):
        ratio = (
            summary[f"http, {size} per call"]["calls_per_cpu_second"]
            / summary[f"boto3, {size} per call"]["calls_per_cpu_second"]
        )
        print(f"http / boto3, {size} per call: {ratio:.2f}x calls per CPU second")
    if options.json:
        options.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

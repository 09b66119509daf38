"""The side-by-side benchmark of issue 7: one command, a table, a report and a plot.

    python benchmarks/suite.py [--quick] [--repeat 3] [--outdir benchmarks/results]

The endpoint is ``ordered-sender emulator`` in its own process (a fresh one for each lane count
and latency, so no run pays for the record of another). Contenders, each in a fresh process so
its CPU and peak RSS are its own, against the same endpoint in the same run:

- naive: boto3, one message per call, each call waited for (AWS's documented way to keep order);
- unordered: boto3, ten messages per call from ``--concurrency`` threads, no order, no durability;
- ordered_sender[<transport>]: ``OrderedSender`` with its defaults (durable, synchronous=FULL),
  once per transport the installed library has, in three scenarios: ``backlog`` (every message
  in the outbox before the clock starts), ``stream-thread`` (a thread put()s while the same
  process delivers) and ``stream-process`` (another process put()s through ``Outbox``).

Beside them: the endpoint's own capacity (raw HTTP from many threads) and the disk's (SQLite
commits/s with synchronous=FULL), the bounds a contender can meet. Every run is checked against
the endpoint's record: every message processed once, and per-lane order for naive and ordered.
Exit status 1 when a run failed or broke a promise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chaos_processes import Children, Emulator
from suite_contenders import RunSpec, run_messages
from suite_report import Report, load_report, write_report
from suite_transports import available_transports
from suite_verify import RunResult, judge

BENCHMARKS = Path(__file__).resolve().parent
RUN_TIMEOUT_SECONDS = 600.0
# Guesses that size each run to last about --seconds (2 shared cores, Python 3.11); a wrong
# guess changes how long a run takes, not what it measures.
MAX_MESSAGES_PER_SECOND_GUESS = 2500.0
REQUEST_SECONDS_GUESS = {"naive": 0.004, "unordered": 0.004, "ordered": 0.008}
"""Time a request costs beside the endpoint's added latency: client CPU, server, (fsync)."""
STREAM_SHARE_OF_PUT_RATE_GUESS = 0.3
"""Streaming delivers at about this share of what put() alone reaches."""


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny runs: a smoke test, not data")
    parser.add_argument("--outdir", type=Path, default=BENCHMARKS / "results")
    parser.add_argument("--name", help="base name of the outputs (default: suite or suite-quick)")
    parser.add_argument("--lanes", default="1,10,20,100,1000", help="comma-separated lane counts")
    parser.add_argument("--latencies", default="0,20", help="ms the endpoint adds to each answer")
    parser.add_argument("--contenders", default="naive,unordered,ordered")
    parser.add_argument("--transports", help="ordered_sender's transports (default: all found)")
    parser.add_argument("--scenarios", default="backlog,stream-thread,stream-process")
    parser.add_argument("--seconds", type=float, help="about how long each run lasts")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--capacity-threads", type=int, default=16)
    parser.add_argument(
        "--render", type=Path, help="measure nothing: write the outputs again from this JSON"
    )
    parser.add_argument(
        "--bounds-seconds", type=float, help="how long the endpoint and disk probes run"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="races of every contender, in rounds against the same endpoint; the report shows "
        "each one's median run (on shared cores a single run can be off by a third)",
    )
    return parser.parse_args()


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def words(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def message_count(
    kind: str, lanes: int, latency_ms: int, seconds: float, concurrency: int, put_rate: float | None
) -> int:
    """Enough messages for about ``seconds`` of the contender's likely rate (a fraction of
    ``put_rate`` when a producer puts them one by one while they are delivered); ordered and
    unordered runs give every lane at least two messages, so lane order is put to the test."""
    round_trip = latency_ms / 1000 + REQUEST_SECONDS_GUESS[kind]
    in_flight = {
        "naive": 1,
        "unordered": concurrency * 10,
        "ordered": min(lanes, concurrency * 10),
    }[kind]
    rate = min(in_flight / round_trip, MAX_MESSAGES_PER_SECOND_GUESS)
    if put_rate is not None:
        rate = min(rate, put_rate * STREAM_SHARE_OF_PUT_RATE_GUESS)
    count = max(20, math.ceil(rate * seconds))
    if kind == "naive":
        return count
    return math.ceil(max(count, 2 * lanes) / lanes) * lanes


def child_environment(endpoint: str) -> dict[str, str]:
    """boto3 aimed at the endpoint with made-up credentials, nothing read from the user's files."""
    environment = dict(os.environ)
    environment.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="benchmark",
        AWS_SECRET_ACCESS_KEY="benchmark",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    environment.pop("AWS_PROFILE", None)
    return environment


def run_child(command: list[str], environment: dict[str, str]) -> dict[str, Any]:
    """Run a child to its end and read the JSON line it printed last."""
    finished = subprocess.run(
        command,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    lines = finished.stdout.strip().splitlines()
    if finished.returncode != 0 or not lines:
        tail = "\n".join(finished.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(command[:3])} exited {finished.returncode}:\n{tail}")
    document: dict[str, Any] = json.loads(lines[-1])
    return document


def emulator_options(lanes: int, latency_ms: int) -> list[str]:
    inputs = [option for lane in range(lanes) for option in ("--input", f"Lane{lane}")]
    return [*inputs, f"--latency-ms={latency_ms},{latency_ms}"]


class Suite:
    """Runs the plan: the bounds, then every contender for each latency and lane count."""

    def __init__(self, arguments: argparse.Namespace, workdir: Path) -> None:
        self.arguments = arguments
        self.workdir = workdir
        self.seconds = arguments.seconds or (0.3 if arguments.quick else 2.0)
        self.bounds_seconds = arguments.bounds_seconds or (1.0 if arguments.quick else 3.0)
        self.put_rate: float | None = None
        self.results: list[RunResult] = []
        self.errors: list[str] = []
        self.capacity: dict[int, dict[str, Any]] = {}
        self._runs = 0

    def run(self, children: Children) -> None:
        arguments = self.arguments
        transports = words(arguments.transports) if arguments.transports else available_transports()
        self.transports = transports
        for latency_ms in numbers(arguments.latencies):
            self.capacity[latency_ms] = self.measure_endpoint(children, latency_ms)
            for lanes in numbers(arguments.lanes):
                emulator = self.start_emulator(children, lanes, latency_ms)
                try:
                    for _ in range(arguments.repeat):
                        self.race_all(emulator, transports, lanes, latency_ms)
                finally:
                    children.stop(emulator.process, timeout=10)

    def race_all(
        self, emulator: Emulator, transports: list[str], lanes: int, latency_ms: int
    ) -> None:
        """One round: every contender in every scenario once."""
        for kind in words(self.arguments.contenders):
            if kind != "ordered":
                self.race(emulator, kind, "backlog", "boto3", lanes, latency_ms)
                continue
            for transport in transports:
                for scenario in words(self.arguments.scenarios):
                    self.race(emulator, kind, scenario, transport, lanes, latency_ms)

    def start_emulator(self, children: Children, lanes: int, latency_ms: int) -> Emulator:
        log = self.workdir / f"emulator-{lanes}-{latency_ms}.log"
        return Emulator.start(children, dict(os.environ), log, emulator_options(lanes, latency_ms))

    def measure_endpoint(self, children: Children, latency_ms: int) -> dict[str, Any]:
        emulator = self.start_emulator(children, 10, latency_ms)
        try:
            command = [
                sys.executable,
                str(BENCHMARKS / "suite_capacity.py"),
                "endpoint",
                emulator.url,
                str(self.arguments.capacity_threads),
                str(self.bounds_seconds),
                "10",
            ]
            capacity = run_child(command, child_environment(emulator.url))
        finally:
            children.stop(emulator.process, timeout=10)
        self.say(
            f"endpoint, {latency_ms} ms: {capacity['requests_per_second']:,.0f} requests/s, "
            f"{capacity['messages_per_second']:,.0f} messages/s"
        )
        return capacity

    def measure_disk(self) -> dict[str, Any]:
        command = [
            sys.executable,
            str(BENCHMARKS / "suite_capacity.py"),
            "disk",
            str(self.workdir),
            str(self.bounds_seconds),
        ]
        disk = run_child(command, dict(os.environ))
        self.put_rate = disk["outbox_put"]["puts_per_second"]
        self.say(
            f"disk: {disk['sqlite_full_commits_per_second']:,.0f} SQLite FULL commits/s, "
            f"{disk['outbox_put']['puts_per_second']:,.0f} Outbox.put()/s"
        )
        return disk

    def race(
        self,
        emulator: Emulator,
        kind: str,
        scenario: str,
        transport: str,
        lanes: int,
        latency_ms: int,
    ) -> None:
        self._runs += 1
        arguments = self.arguments
        put_rate = self.put_rate if scenario.startswith("stream") else None
        count = message_count(
            kind, lanes, latency_ms, self.seconds, arguments.concurrency, put_rate
        )
        spec = RunSpec(
            contender=kind,
            scenario=scenario,
            lanes=lanes,
            messages=count,
            prefix=f"r{self._runs}",
            endpoint=emulator.url,
            transport=transport,
            concurrency=1 if kind == "naive" else arguments.concurrency,
        )
        label = f"ordered_sender[{transport}]" if kind == "ordered" else kind
        where = f"{label} {scenario}, {lanes} lanes, {latency_ms} ms, {count} messages"
        requests_before = emulator.stats()["requests"]
        command = [
            sys.executable,
            str(BENCHMARKS / "suite_contenders.py"),
            json.dumps(asdict(spec)),
        ]
        try:
            report = run_child(command, child_environment(emulator.url))
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            self.errors.append(f"{where}: {error}")
            self.say(f"FAILED {where}: {error}")
            return
        prefix = f"{spec.prefix}-"
        processed = [
            p for p in emulator.get("processed")["processed"] if p["message_id"].startswith(prefix)
        ]
        result = judge(
            contender=label,
            kind=kind,
            scenario=scenario,
            lanes=lanes,
            latency_ms=latency_ms,
            expected_ids={identifier for identifier, _, _ in run_messages(spec)},
            processed=processed,
            requests=emulator.stats()["requests"] - requests_before,
            report=report,
        )
        self.results.append(result)
        verdict = "ok" if result.correct else f"BROKEN {result.verification}"
        self.say(f"{where}: {result.messages_per_second:,.0f} messages/s, {verdict}")

    def say(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)


def median_runs(results: list[RunResult]) -> list[RunResult]:
    """Each contender's median run (by messages/s) of its scenario, lanes and latency, whole, so
    that a row's figures come from one run; in the order the rows were first measured. With an
    even number of runs, the slower of the two middle ones."""
    runs: dict[tuple[str, str, int, int], list[RunResult]] = {}
    for result in results:
        key = (result.contender, result.scenario, result.lanes, result.latency_ms)
        runs.setdefault(key, []).append(result)
    medians = []
    for same in runs.values():
        ordered = sorted(same, key=lambda run: run.messages_per_second)
        medians.append(ordered[(len(ordered) - 1) // 2])
    return medians


def stop_on_sigterm(signal_number: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signal_number}")


def main() -> int:
    # A SIGTERM unwinds like Ctrl-C, so the emulators and contenders are ended on the way out.
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    arguments = parse_arguments()
    name = arguments.name or ("suite-quick" if arguments.quick else "suite")
    if arguments.render:
        write_report(load_report(arguments.render), arguments.outdir, name)
        return 0
    started = time.time()
    with (
        tempfile.TemporaryDirectory(prefix="ordered-sender-suite-") as folder,
        Children() as children,
    ):
        suite = Suite(arguments, Path(folder))
        disk = suite.measure_disk()
        suite.run(children)
    report = Report(
        command=" ".join(["python benchmarks/suite.py", *sys.argv[1:]]),
        started=started,
        seconds=time.time() - started,
        concurrency=arguments.concurrency,
        capacity_threads=arguments.capacity_threads,
        transports=suite.transports,
        capacity=suite.capacity,
        disk=disk,
        results=median_runs(suite.results),
        errors=suite.errors,
    )
    write_report(report, arguments.outdir, name)
    broken = [r for r in suite.results if not r.correct]
    return 1 if suite.errors or broken else 0


if __name__ == "__main__":
    sys.exit(main())

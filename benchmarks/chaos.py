"""Chaos harness: SIGKILL the delivering process again and again while producers put, then prove
nothing acknowledged was lost or reordered.

    python benchmarks/chaos.py --rounds 50 [--seed 1] [--lanes 8] [--messages-per-round 200]

The emulator runs in its own process (``ordered-sender emulator``) with every fault on:
whole-request 429/500/503, transient error entries, dropped connections, latency, and its
shuffled processing order within a request. Each round starts ``ordered-sender run`` on one
outbox and two producer processes (``benchmarks/chaos_producer.py``, each owning its own lanes)
that put with ``Outbox``; the deliverer is SIGKILLed once the endpoint has processed a seeded
random number of messages, and a producer now and then too. After the rounds a clean ``run``
drains the outbox, and ``chaos_check`` compares the producers' acknowledged puts with the
endpoint's processing record. Exit status 0 only when nothing was lost and nothing reordered.

Every wait has a timeout; every child process is killed on the way out, whatever happened.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from chaos_check import Ledger, Verdict, faults_by_kind, judge, read_ledger
from chaos_processes import Children, Emulator, ordered_sender_command
from rich.console import Console
from rich.table import Table

from ordered_sender import Outbox

HERE = Path(__file__).resolve().parent
POLL_SECONDS = 0.02
PRODUCERS = 2


@dataclass(frozen=True, slots=True)
class Settings:
    """The harness's command line, validated."""

    rounds: int
    seed: int
    lanes: int
    messages_per_round: int
    put_interval_ms: float
    producer_kill_chance: float
    request_error_rate: float
    entry_error_rate: float
    drop_connection_rate: float
    latency_ms: str
    round_timeout: float
    drain_timeout: float
    outdir: Path
    keep_workdir: bool

    def lanes_of(self, producer: int) -> list[str]:
        """Lanes are dealt to producers like cards: each lane has exactly one producer."""
        return [f"ChaosP{producer}L{lane}" for lane in range(producer, self.lanes, PRODUCERS)]

    def all_lanes(self) -> list[str]:
        return [lane for producer in range(PRODUCERS) for lane in self.lanes_of(producer)]


@dataclass(slots=True)
class Tally:
    """What the harness itself did to the processes."""

    deliverer_kills: int = 0
    producer_kills: int = 0
    deliverer_exits: list[int] = field(default_factory=list)
    """Exit codes of deliverers that stopped before they were killed: each one is a finding."""
    producer_failures: list[int] = field(default_factory=list)
    """Exit codes of producers that failed without being killed."""


def parse_arguments(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--rounds", type=int, default=10, help="Rounds, each ending in a SIGKILL of the deliverer.")
    add("--seed", type=int, default=1, help="Seed of kill points and of the emulator's faults.")
    add("--lanes", type=int, default=8, help="Lanes (inputs), dealt to the two producers.")
    add("--messages-per-round", type=int, default=200, help="Puts per round, both producers.")
    add("--put-interval-ms", type=float, default=5.0, help="Pause between a producer's puts.")
    add("--producer-kill-chance", type=float, default=0.3, help="Chance a producer is killed.")
    add("--request-error-rate", type=float, default=0.1, help="Whole requests 429/500/503.")
    add("--entry-error-rate", type=float, default=0.1, help="Transient error entries.")
    add("--drop-connection-rate", type=float, default=0.05, help="Answers never sent.")
    add("--latency-ms", default="0,5", help="LOW,HIGH ms the emulator adds to each answer.")
    add("--round-timeout", type=float, default=60.0, help="Longest a round may take, seconds.")
    add("--drain-timeout", type=float, default=300.0, help="Longest the final drain may take.")
    add("--outdir", type=Path, default=HERE / "results", help="Where the JSON and table go.")
    add("--keep-workdir", action="store_true", help="Keep outbox, ledgers and logs afterwards.")
    arguments = parser.parse_args(argv)
    if arguments.rounds < 1 or arguments.messages_per_round < PRODUCERS:
        parser.error("--rounds must be >= 1 and --messages-per-round >= 2")
    if arguments.lanes < PRODUCERS:
        parser.error(f"--lanes must be >= {PRODUCERS}: each producer owns at least one lane")
    return Settings(**vars(arguments))


def child_environment(workdir: Path) -> dict[str, str]:
    """Dummy credentials and no AWS files: the children talk to the emulator and nothing else."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")
    }
    environment.update(
        AWS_ACCESS_KEY_ID="chaos",
        AWS_SECRET_ACCESS_KEY="chaos",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(workdir / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-aws-credentials"),
    )
    return environment


class Harness:
    """Runs the rounds and the drain; owns every child process through ``children``."""

    def __init__(self, settings: Settings, workdir: Path, children: Children) -> None:
        self.settings = settings
        self.workdir = workdir
        self.children = children
        self.random = random.Random(settings.seed)
        self.outbox = workdir / "outbox.db"
        self.environment = child_environment(workdir)
        self.tally = Tally()
        self.emulator = Emulator.start(
            children,
            self.environment,
            workdir / "emulator.log",
            [
                f"--seed={settings.seed}",
                f"--request-error-rate={settings.request_error_rate}",
                f"--entry-error-rate={settings.entry_error_rate}",
                # Transient codes only: a permanent refusal would pause a lane by design.
                "--entry-error-codes=ThrottlingException,ServiceUnavailableException,"
                "InternalFailureException",
                f"--drop-connection-rate={settings.drop_connection_rate}",
                f"--latency-ms={settings.latency_ms}",
                *(f"--input={lane}" for lane in settings.all_lanes()),
            ],
        )
        # Created here, so the first deliverer never races a producer to create the file.
        Outbox(self.outbox).close()

    def ledger(self, producer: int) -> Path:
        return self.workdir / f"producer-{producer}.ledger"

    def start_deliverer(self, name: str) -> subprocess.Popen[bytes]:
        command = ordered_sender_command()
        return self.children.start(
            [*command, "run", f"--outbox={self.outbox}", f"--endpoint-url={self.emulator.url}"],
            self.environment,
            self.workdir / f"{name}.log",
        )

    def start_producer(self, producer: int, round_number: int) -> subprocess.Popen[bytes]:
        lanes = self.settings.lanes_of(producer)
        return self.children.start(
            [
                sys.executable,
                str(HERE / "chaos_producer.py"),
                f"--outbox={self.outbox}",
                f"--ledger={self.ledger(producer)}",
                *(f"--lane={lane}" for lane in lanes),
                f"--count={self.settings.messages_per_round // PRODUCERS}",
                f"--interval-ms={self.settings.put_interval_ms}",
            ],
            self.environment,
            self.workdir / f"producer-{producer}-round-{round_number}.log",
        )

    def acknowledged_count(self, producer: int) -> int:
        path = self.ledger(producer)
        return len(read_ledger(path.read_text()).acknowledged) if path.exists() else 0

    def play_round(self, round_number: int) -> None:
        """One deliverer SIGKILLed at a seeded point; producers put meanwhile, some killed too."""
        per_producer = self.settings.messages_per_round // PRODUCERS
        kill_after_processed = self.random.randint(0, self.settings.messages_per_round)
        producer_kill_after = [
            self.acknowledged_count(p) + self.random.randint(0, per_producer - 1)
            if self.random.random() < self.settings.producer_kill_chance
            else None
            for p in range(PRODUCERS)
        ]
        processed_before = self.emulator.stats()["messages_processed"]
        deliverer = self.start_deliverer(f"deliverer-round-{round_number}")
        producers = [self.start_producer(p, round_number) for p in range(PRODUCERS)]
        deadline = time.monotonic() + self.settings.round_timeout
        producers_done_at: float | None = None
        while deliverer.poll() is None or any(p.poll() is None for p in producers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"round {round_number} overran {self.settings.round_timeout} s")
            self.kill_producers_due(producers, producer_kill_after)
            if producers_done_at is None and all(p.poll() is not None for p in producers):
                producers_done_at = time.monotonic()
            processed = self.emulator.stats()["messages_processed"] - processed_before
            # Killed producers may leave fewer messages than the target: then kill a second after.
            backlog_ran_out = producers_done_at is not None and (
                time.monotonic() - producers_done_at > 1.0
            )
            if deliverer.poll() is None and (processed >= kill_after_processed or backlog_ran_out):
                self.children.kill(deliverer)
                self.tally.deliverer_kills += 1
            time.sleep(POLL_SECONDS)
        if deliverer.returncode != -signal.SIGKILL:
            self.tally.deliverer_exits.append(deliverer.returncode)
        for process in producers:
            if process.returncode not in (0, -signal.SIGKILL):
                self.tally.producer_failures.append(process.returncode)

    def kill_producers_due(
        self, producers: list[subprocess.Popen[bytes]], kill_after: list[int | None]
    ) -> None:
        """SIGKILL each running producer whose ledger reached its seeded number of puts."""
        for producer, process in enumerate(producers):
            target = kill_after[producer]
            due = target is not None and self.acknowledged_count(producer) >= target
            if due and process.poll() is None:
                self.children.kill(process)
                self.tally.producer_kills += 1

    def drain(self) -> tuple[float, int, int, int]:
        """A clean deliverer until the outbox is empty, then SIGTERM.

        Returns the seconds it took, the messages pending before and after, and paused lanes.
        """
        started = time.monotonic()
        deliverer = self.start_deliverer("deliverer-drain")
        with Outbox(self.outbox) as outbox:
            counts = outbox.counts()
            pending_before = counts.pending
            while counts.pending > 0 and time.monotonic() - started < self.settings.drain_timeout:
                if deliverer.poll() is not None:
                    self.tally.deliverer_exits.append(deliverer.returncode)
                    break
                time.sleep(0.2)
                counts = outbox.counts()
        seconds = time.monotonic() - started
        self.children.stop(deliverer, timeout=30.0)
        return seconds, pending_before, counts.pending, counts.paused_lanes

    def producers_ledgers(self) -> list[Ledger]:
        ledgers = []
        for producer in range(PRODUCERS):
            path = self.ledger(producer)
            ledgers.append(read_ledger(path.read_text() if path.exists() else ""))
        return ledgers


def report(
    settings: Settings,
    harness: Harness,
    verdict: Verdict,
    faults: dict[str, int],
    drained: tuple[float, int, int, int],
    seconds: float,
) -> dict[str, Any]:
    drain_seconds, pending_at_drain, left_pending, paused_lanes = drained
    stats = harness.emulator.stats()
    return {
        "rounds": settings.rounds,
        "seed": settings.seed,
        "lanes": settings.lanes,
        "messages_per_round": settings.messages_per_round,
        "kills": harness.tally.deliverer_kills,
        "producer_kills": harness.tally.producer_kills,
        "acknowledged": verdict.acknowledged,
        "processed": verdict.processed,
        "processed_in_doubt": verdict.processed_in_doubt,
        "lost": verdict.lost,
        "gaps": verdict.gaps,
        "reordered": verdict.reordered,
        "duplicates_processed": verdict.duplicates_processed,
        "resends_deduplicated": stats["duplicates_ignored"],
        "requests": stats["requests"],
        "faults": faults,
        "pending_at_drain": pending_at_drain,
        "left_pending": left_pending,
        "paused_lanes": paused_lanes,
        "drain_seconds": round(drain_seconds, 1),
        "seconds": round(seconds, 1),
        "lost_examples": list(verdict.lost_examples),
        "reordered_examples": list(verdict.reordered_examples),
        "sound": verdict.sound,
        "problems": problems(harness.tally, verdict, left_pending, paused_lanes),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
    }


def problems(tally: Tally, verdict: Verdict, left_pending: int, paused_lanes: int) -> list[str]:
    """What makes a run fail besides loss and reordering: a run that proved nothing proves no 0."""
    found = []
    if verdict.acknowledged == 0:
        found.append("no put was acknowledged: the producers never ran (see their logs)")
    if tally.deliverer_exits:
        found.append(f"deliverers stopped by themselves, exit codes {tally.deliverer_exits}")
    if tally.producer_failures:
        found.append(f"producers failed, exit codes {tally.producer_failures}")
    if left_pending or paused_lanes:
        found.append(f"the drain left {left_pending} pending, {paused_lanes} paused lanes")
    return found


ROWS = (
    ("rounds", "rounds"),
    ("deliverer SIGKILLs", "kills"),
    ("producer SIGKILLs", "producer_kills"),
    ("messages acknowledged (put returned)", "acknowledged"),
    ("messages processed by the endpoint", "processed"),
    ("  of which put in doubt (producer killed in put)", "processed_in_doubt"),
    ("lost", "lost"),
    ("  of which gaps", "gaps"),
    ("reordered", "reordered"),
    ("duplicates processed (same messageId)", "duplicates_processed"),
    ("resends de-duplicated by the endpoint", "resends_deduplicated"),
    ("BatchPutMessage requests", "requests"),
    ("pending when the final drain started", "pending_at_drain"),
    ("final drain, seconds", "drain_seconds"),
    ("left pending / paused lanes", None),
    ("whole run, seconds", "seconds"),
)


def render(document: dict[str, Any], out: TextIO | None = None) -> str:
    """Print the table and return it as text, for the .txt beside the JSON."""
    console = Console(record=True, file=out)
    table = Table(title=f"Chaos: {document['rounds']} rounds, seed {document['seed']}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, key in ROWS:
        value = document[key] if key else f"{document['left_pending']} / {document['paused_lanes']}"
        table.add_row(label, f"{value:,}" if isinstance(value, int) else str(value))
    for kind, count in document["faults"].items():
        table.add_row(f"fault: {kind}", f"{count:,}")
    console.print(table)
    passed = document["sound"] and not document["problems"]
    console.print("PASS: 0 lost, 0 reordered" if passed else "FAIL")
    for key in ("lost_examples", "reordered_examples", "problems"):
        if document[key]:
            console.print(f"{key}: {document[key]}")
    return console.export_text()


@contextmanager
def working_directory(keep: bool) -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="ordered-sender-chaos-"))
    try:
        yield workdir
    finally:
        if keep:
            print(f"outbox, ledgers and logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_arguments(argv)
    started = time.monotonic()
    with working_directory(settings.keep_workdir) as workdir, Children() as children:
        harness = Harness(settings, workdir, children)
        for round_number in range(1, settings.rounds + 1):
            harness.play_round(round_number)
            print(f"round {round_number}/{settings.rounds} done", file=sys.stderr, flush=True)
        drained = harness.drain()
        processed = harness.emulator.get("processed")["processed"]
        requests = harness.emulator.get("requests")["requests"]
        acknowledged = [a for ledger in harness.producers_ledgers() for a in ledger.acknowledged]
        verdict = judge(acknowledged, processed, settings.all_lanes())
        document = report(
            settings,
            harness,
            verdict,
            faults_by_kind(requests, processed),
            drained,
            time.monotonic() - started,
        )
    text = render(document)
    settings.outdir.mkdir(parents=True, exist_ok=True)
    stem = settings.outdir / f"chaos-rounds{settings.rounds}-seed{settings.seed}"
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")
    stem.with_suffix(".txt").write_text(text)
    return 0 if document["sound"] and not document["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())

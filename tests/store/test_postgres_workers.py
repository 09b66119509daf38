"""Several `ordered-sender run` workers, real processes, delivering one PostgreSQL outbox while
two producer processes put into it, with faults and latency at the endpoint; one worker is
SIGKILLed mid-run and another loses its connections to the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ordered_sender.emulator import Emulator, Faults

psycopg = pytest.importorskip("psycopg", reason="pip install 'ordered-sender[postgres]'")

COMMAND = str(Path(sys.executable).parent / "ordered-sender")
LANES = 6
PER_PRODUCER_PER_LANE = 40
DEADLINE_SECONDS = 120.0


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Look at ``condition`` until it holds (other processes make it so) or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.05)


def leases_of(connection: Any, pid: int) -> list[str]:
    """The lanes whose lease the worker of process ``pid`` holds."""
    rows = connection.execute(
        "SELECT lane FROM ordered_sender.lane_leases WHERE owner LIKE %s ORDER BY lane",
        [f"%:{pid}:%"],
    ).fetchall()
    return [lane for (lane,) in rows]


def producer_file(folder: Path, producer: int) -> Path:
    path = folder / f"producer-{producer}.jsonl"
    with path.open("w") as lines:
        for n in range(PER_PRODUCER_PER_LANE):
            for lane in range(LANES):
                message = {
                    "inputName": f"Input{lane}",
                    "payload": {"producer": producer, "n": n},
                    "messageId": f"p{producer}-l{lane}-{n:03d}",
                }
                lines.write(json.dumps(message) + "\n")
    return path


@pytest.fixture
def workers(postgres_url: str, emulator: Emulator) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for worker in started:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in started:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@pytest.mark.slow
def test_three_workers_deliver_everything_in_order_through_a_kill_and_a_lost_connection(
    postgres_url: str,
    emulator: Emulator,
    tmp_path: Path,
    workers: list[subprocess.Popen[bytes]],
) -> None:
    for lane in range(LANES):
        emulator.create_input(f"Input{lane}")
    # Answers slow enough that a worker almost always has requests in flight, so lanes leased.
    emulator.set_faults(Faults(request_error_rate=0.1, entry_error_rate=0.05, latency_ms=(40, 120)))
    # Leases as short as the default request_timeout (10 s) allows, for a quick takeover.
    url = postgres_url + "?lease_seconds=16"
    first_put = subprocess.run(
        [COMMAND, "send", os.devnull, "--outbox", url, "--no-wait"],
        capture_output=True, text=True, env=environment(), timeout=60,
    )  # fmt: skip
    assert first_put.returncode == 0, first_put.stderr
    run = [COMMAND, "run", "--outbox", url, "--endpoint-url", emulator.endpoint_url]
    # Into a file: a pipe nobody reads could fill up and block a worker.
    with (tmp_path / "workers.log").open("w") as log:
        for _ in range(3):
            workers.append(subprocess.Popen(run, stdout=log, stderr=log, env=environment()))
    producers = [
        subprocess.Popen(
            [COMMAND, "send", str(producer_file(tmp_path, p)), "--outbox", url, "--no-wait"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(),
        )
        for p in range(2)
    ]
    total = 2 * LANES * PER_PRODUCER_PER_LANE
    wait_until(lambda: emulator.stats().messages_processed >= total // 4, "a quarter is processed")

    with psycopg.connect(postgres_url, autocommit=True) as admin:
        # Killed: a worker caught holding a lease, stopped first so that it cannot give it back.
        caught: list[subprocess.Popen[bytes]] = []

        def catch_one_holding_a_lease() -> bool:
            for worker in workers:
                worker.send_signal(signal.SIGSTOP)
                if leases_of(admin, worker.pid):
                    caught.append(worker)
                    return True
                worker.send_signal(signal.SIGCONT)
            return False

        wait_until(catch_one_holding_a_lease, "a worker is caught holding a lease")
        (killed,) = caught
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=10) == -signal.SIGKILL
        # Its lease rows outlive it: these lanes wait for lease_seconds, then go to another.
        orphaned = leases_of(admin, killed.pid)
    assert orphaned
    cut_off = next(w for w in workers if w is not killed)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        (terminated,) = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name LIKE %s",
            [f"ordered-sender %:{cut_off.pid}:%"],
        ).fetchone()
    assert terminated >= 1

    for producer in producers:
        out, err = producer.communicate(timeout=DEADLINE_SECONDS)
        assert producer.returncode == 0, out + err
    wait_until(lambda: emulator.stats().messages_processed >= total, "everything is processed")

    # Every message exactly once, each producer's messages of a lane in its order.
    processed = emulator.processed()
    assert sorted(m.message_id for m in processed) == sorted(
        f"p{p}-l{lane}-{n:03d}"
        for p in range(2)
        for lane in range(LANES)
        for n in range(PER_PRODUCER_PER_LANE)
    )
    order: dict[tuple[str, int], list[int]] = defaultdict(list)
    for message in processed:
        payload = json.loads(message.payload)
        order[(message.input_name, payload["producer"])].append(payload["n"])
    assert all(ns == list(range(PER_PRODUCER_PER_LANE)) for ns in order.values())

    # Never two distinct messages of a lane in flight at once; resends carry the same id.
    spans: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for request in emulator.requests():
        end = request.received_at + request.latency_ms / 1000
        for carried in request.messages:
            spans[carried.input_name].append((request.received_at, end, carried.message_id))
    overlaps = [
        (lane, a, b)
        for lane, lane_spans in spans.items()
        for i, a in enumerate(sorted(lane_spans))
        for b in sorted(lane_spans)[i + 1 :]
        if b[0] < a[1] and a[2] != b[2]
    ]
    assert overlaps == []
    # The killed worker's lanes went to the others, and so did all the work after it.
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        assert leases_of(admin, killed.pid) == []  # taken over
    # It reconnected and went on.
    assert cut_off.poll() is None, (tmp_path / "workers.log").read_text()[-4000:]

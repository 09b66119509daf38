"""``ordered-sender run``'s last line: what this run delivered and what the outbox keeps, from a
real ``run`` subprocess delivering to the emulator and stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ordered_sender import Outbox
from ordered_sender.emulator import Emulator

DEADLINE_SECONDS = 60.0


@contextmanager
def running(outbox: Path, emulator: Emulator) -> Iterator[subprocess.Popen[str]]:
    """``run`` on ``outbox``, its progress a line every 0.1 s; killed at the deadline, so that a
    line that never comes ends the reading instead of hanging the test."""
    command = [
        str(Path(sys.executable).parent / "ordered-sender"), "run", "--outbox", str(outbox),
        "--endpoint-url", emulator.endpoint_url, "--progress-every", "0.1",
    ]  # fmt: skip
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    watchdog = threading.Timer(DEADLINE_SECONDS, process.kill)
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
        process.kill()
        process.communicate()


def read_until(process: subprocess.Popen[str], wanted: Callable[[str], bool]) -> str:
    """Read stdout until a line is ``wanted``; fails if the output ends first."""
    assert process.stdout is not None
    for line in process.stdout:
        if wanted(line):
            return line
    raise AssertionError("run's output ended before the line looked for")


def stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=DEADLINE_SECONDS)
    return process.returncode, stdout, stderr


def test_the_last_line_says_what_this_run_delivered_and_what_it_kept(
    outbox: Path, emulator: Emulator
) -> None:
    emulator.create_input("Pressure")
    with Outbox(outbox) as filling:
        filling.put_many([("Pressure", {"n": n}) for n in range(20)])
        filling.put_many([("Missing", {"n": n}) for n in range(3)])  # no such input: pauses

    with running(outbox, emulator) as first:
        read_until(first, lambda line: line.startswith("20 delivered") and "1 paused" in line)
        status, stdout, stderr = stop(first)
    assert (status, stderr.count("Traceback")) == (0, 0), stderr
    assert stdout.splitlines()[-1] == (
        f"stopped: 3 messages kept in {outbox} (1 paused lane, 0 dead letters); "
        "20 messages delivered"
    )

    # The count is this run's, not the outbox's history.
    with running(outbox, emulator) as second:
        read_until(second, lambda line: line.startswith("delivering"))
        status, stdout, stderr = stop(second)
    assert status == 0, stderr
    assert stdout.splitlines()[-1].endswith("(1 paused lane, 0 dead letters); 0 messages delivered")

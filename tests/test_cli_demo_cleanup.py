"""``ordered-sender demo`` cut short, and the demo against a standalone endpoint: run as a user
runs it, a subprocess with real signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from ordered_sender.emulator import Emulator

COMMAND = str(Path(sys.executable).parent / "ordered-sender")
DEADLINE_SECONDS = 60.0


def test_demo_cut_short_by_ctrl_c_exits_130_and_reports_only_what_happened() -> None:
    demo = subprocess.Popen(
        [COMMAND, "demo", "--messages", "20000", "--lanes", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert demo.stdout is not None
    try:
        # Once it says it is putting, Ctrl-C stops the delivery cleanly.
        for line in demo.stdout:
            if line.startswith("putting"):
                break
        demo.send_signal(signal.SIGINT)
        rest, stderr = demo.communicate(timeout=DEADLINE_SECONDS)
    finally:
        demo.kill()

    assert demo.returncode == 130, rest + stderr
    assert "Traceback" not in stderr
    summary = re.search(r"(\d+) messages not delivered \(stopped by a signal", rest)
    assert summary is not None, rest
    assert "the outbox was temporary and is gone" in rest
    assert "ordered-sender run" not in rest
    retries = re.search(r"retries \(sends beyond one per message\)\s*│\s*(-?\d+)", rest)
    assert retries is not None, rest
    assert int(retries.group(1)) >= 0
    throughput = re.search(r"│\s*(\d+) messages delivered/s", rest)
    elapsed = re.search(r"elapsed\s*│\s*([\d.]+) s", rest)
    assert throughput is not None and elapsed is not None, rest
    delivered = 20000 - int(summary.group(1))
    # From messages delivered, not put: a rate at most what was delivered in that time.
    assert int(throughput.group(1)) <= delivered / float(elapsed.group(1)) + 1
    assert "stopped early: what arrived, arrived in order and without duplicates" in rest
    # Stopped by a signal, the demo does not go on to its second part.
    assert "Why order matters" not in rest


def test_demo_on_a_standalone_endpoint_leaves_nothing_of_its_own_there() -> None:
    with Emulator(seed=5) as emulator:
        control = emulator.client("iotevents")
        control.create_input(
            inputName="Theirs", inputDefinition={"attributes": [{"jsonPath": "x"}]}
        )
        result = subprocess.run(
            [COMMAND, "demo", "--messages", "40", "--lanes", "2",
             "--endpoint-url", emulator.endpoint_url],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
            timeout=DEADLINE_SECONDS,
        )  # fmt: skip
        inputs = [summary["inputName"] for summary in control.list_inputs()["inputSummaries"]]
        models = control.list_detector_models()["detectorModelSummaries"]

    assert result.returncode == 0, result.stdout + result.stderr
    # The motor comparison ran there (so it created its model and input) ...
    assert "ordered: 0 of 20 wrong" in result.stdout
    # ... and the demo deleted what it created, and only that.
    assert models == []
    assert inputs == ["Theirs"]


def test_demo_of_one_message_in_one_lane_reads_in_the_singular() -> None:
    result = subprocess.run(
        [COMMAND, "demo", "--messages", "1", "--lanes", "1", "--no-detectors", "--no-faults"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=DEADLINE_SECONDS,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "putting 1 message into 1 lane (" in result.stdout
    assert "everything delivered in" in result.stdout
    assert "OK: the 1 lane arrived complete and in order" in result.stdout

"""``ordered-sender emulator``: started as a real process, stopped by SIGTERM; bad options."""

from __future__ import annotations

import base64
import json
import select
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from click.testing import CliRunner

from ordered_sender.emulator.cli import emulator_command

START = "from ordered_sender.emulator.cli import emulator_command; emulator_command()"


@pytest.fixture
def running() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The command in a subprocess, and the endpoint URL it printed first."""
    process = subprocess.Popen(
        [sys.executable, "-c", START, "--port", "0", "--seed", "3", "--input", "PressureInput"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the emulator printed no endpoint URL within 30 s"
        yield process, process.stdout.readline().strip()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_the_command_serves_boto3_until_sigterm(
    running: tuple[subprocess.Popen[str], str],
) -> None:
    process, endpoint_url = running
    assert endpoint_url.startswith("http://127.0.0.1:")
    client = boto3.client(
        "iotevents-data",
        endpoint_url=endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    message = {"messageId": "m1", "inputName": "PressureInput", "payload": b'{"p": 1}'}
    assert client.batch_put_message(messages=[message])["BatchPutMessageErrorEntries"] == []
    with urllib.request.urlopen(f"{endpoint_url}/_emulator/processed", timeout=5) as response:
        (processed,) = json.load(response)["processed"]
    assert base64.b64decode(processed["payload"]) == b'{"p": 1}'
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert process.stderr is not None
    assert "emulator stopped" in process.stderr.read()


def test_a_bad_fault_option_is_a_usage_error_naming_it() -> None:
    result = CliRunner().invoke(emulator_command, ["--request-error-rate", "2"])
    assert result.exit_code == 2
    assert "--request-error-rate" in result.output
    assert "'2' is not a probability from 0 to 1" in result.output


def test_a_latency_that_is_not_two_numbers_is_a_usage_error() -> None:
    result = CliRunner().invoke(emulator_command, ["--latency-ms", "fast"])
    assert result.exit_code == 2
    assert "--latency-ms" in result.output


def test_a_bad_input_name_is_a_usage_error_naming_it() -> None:
    result = CliRunner().invoke(emulator_command, ["--input", "bad-name"])
    assert result.exit_code == 2
    assert "bad-name" in result.output
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

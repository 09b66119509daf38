"""Small fixes to the ``ordered-sender`` command, each driven as a user would: a subprocess."""

from __future__ import annotations

import logging
import os
import pty
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ordered_sender.emulator import Emulator
from ordered_sender.store.sqlite import SqliteStore

CliRunner = Callable[..., subprocess.CompletedProcess[str]]
"""The ``cli`` fixture of conftest.py: runs ``ordered-sender ARGS...`` as a subprocess."""

COMMANDS = [
    (),
    ("send",),
    ("run",),
    ("status",),
    ("resume",),
    ("dead-letters",),
    ("dead-letters", "list"),
    ("demo",),
    ("emulator",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_dash_h_shows_the_same_help_as_dash_dash_help(
    cli: CliRunner, command: tuple[str, ...]
) -> None:
    short = cli(*command, "-h")
    long = cli(*command, "--help")
    assert short.returncode == 0, short.stderr
    assert short.stdout == long.stdout
    assert "-h, --help" in short.stdout


def test_python_dash_m_runs_the_command(cli: CliRunner) -> None:
    as_module = subprocess.run(
        [sys.executable, "-m", "ordered_sender", "--help"], capture_output=True, text=True
    )
    assert as_module.returncode == 0, as_module.stderr
    assert as_module.stdout == cli("--help").stdout


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "soon"])
def test_send_refuses_a_timeout_that_is_not_a_positive_finite_number_of_seconds(
    cli: CliRunner, tmp_path: Path, timeout: str
) -> None:
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"inputName": "motors", "payload": {"rpm": 1}}\n')
    outbox = tmp_path / "outbox.db"
    result = cli("send", str(lines), "--outbox", str(outbox), f"--timeout={timeout}")
    assert result.returncode == 2
    assert "--timeout" in result.stderr
    assert repr(timeout) in result.stderr
    assert "Traceback" not in result.stderr
    assert not outbox.exists()


UNREACHABLE = "http://127.0.0.1:1"
"""Nothing listens on port 1: every request fails to connect, so messages stay pending."""


def test_counts_of_one_read_in_the_singular(cli: CliRunner, tmp_path: Path) -> None:
    lines = tmp_path / "one.jsonl"
    lines.write_text('{"inputName": "motors", "payload": {"rpm": 1}}\n')
    outbox = tmp_path / "outbox.db"

    stored = cli("send", str(lines), "--outbox", str(outbox), "--no-wait")
    timed_out = cli(
        "send", str(lines), "--outbox", str(tmp_path / "other.db"),
        "--endpoint-url", UNREACHABLE, "--timeout", "1",
    )  # fmt: skip
    run = subprocess.Popen(
        [cli_command(), "run", "--outbox", str(outbox), "--endpoint-url", UNREACHABLE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    started = run.stdout.readline()
    run.send_signal(signal.SIGTERM)
    rest, _ = run.communicate(timeout=30)

    assert stored.returncode == 0, stored.stderr
    assert f"stored 1 message from {lines}" in stored.stdout
    assert f"1 message stored in {outbox}" in stored.stdout
    assert timed_out.returncode == 1
    assert "1 message not delivered (the timeout passed; last error: " in timed_out.stdout
    assert "1 message pending in 1 lane;" in started
    assert "stopped: 1 message kept in" in rest
    assert "(0 paused lanes, 0 dead letters)" in rest


def cli_command() -> str:
    return str(Path(sys.executable).parent / "ordered-sender")


@pytest.mark.parametrize("port", ["-1", "65536", "70000"])
def test_emulator_refuses_a_port_out_of_range_naming_option_and_value(
    cli: CliRunner, port: str
) -> None:
    result = cli("emulator", f"--port={port}")
    assert result.returncode == 2
    assert "--port" in result.stderr
    assert port in result.stderr
    assert "Traceback" not in result.stderr


def test_emulator_on_a_port_in_use_names_the_host_and_port(cli: CliRunner) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("emulator", "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr
    assert "in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_send_refuses_a_latin_1_file_naming_the_line_and_byte_and_stores_nothing(
    cli: CliRunner, tmp_path: Path
) -> None:
    lines = tmp_path / "latin-1.jsonl"
    lines.write_bytes(
        '{"inputName": "motors", "payload": {"site": "Zurich"}}\n'
        '{"inputName": "motors", "payload": {"site": "Z\u00fcrich"}}\n'.encode("latin-1")
    )
    outbox = tmp_path / "outbox.db"

    result = cli("send", str(lines), "--outbox", str(outbox), "--no-wait")

    assert result.returncode == 1
    assert f"{lines}:2: line=" in result.stderr
    assert "is not UTF-8 (byte 0xfc at column 47)" in result.stderr
    assert "Traceback" not in result.stderr
    store = SqliteStore(outbox)
    try:
        assert store.counts().pending == 0
    finally:
        store.close()


ANSI_ESCAPE = "\x1b["


def stderr_of_an_undeliverable_send(tmp_path: Path, *, terminal: bool, no_color: bool) -> str:
    """What ``send`` to an endpoint that refuses connections logs on stderr (a warning at the
    default level), with stderr a pseudo-terminal or a pipe."""
    lines = tmp_path / "one.jsonl"
    lines.write_text('{"inputName": "motors", "payload": {"rpm": 1}}\n')
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    if no_color:
        env["NO_COLOR"] = "1"
    command = [
        cli_command(), "send", str(lines), "--outbox", str(tmp_path / f"{terminal}{no_color}.db"),
        "--endpoint-url", UNREACHABLE, "--timeout", "1",
    ]  # fmt: skip
    if not terminal:
        return subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        ).stderr
    primary, secondary = pty.openpty()
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=secondary, env=env):
        os.close(secondary)
        written = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            written += chunk
    os.close(primary)
    return written.decode()


@pytest.mark.parametrize(
    ("terminal", "no_color", "coloured"),
    [(False, False, False), (True, True, False), (True, False, True)],
    ids=["pipe", "terminal-with-NO_COLOR", "terminal"],
)
def test_log_lines_are_coloured_only_on_a_terminal_without_no_color(
    tmp_path: Path, terminal: bool, no_color: bool, coloured: bool
) -> None:
    stderr = stderr_of_an_undeliverable_send(tmp_path, terminal=terminal, no_color=no_color)
    assert "endpoint.unavailable" in stderr
    assert (ANSI_ESCAPE in stderr) is coloured


def test_emulator_stays_quiet_when_a_client_resets_its_connection(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="ordered_sender.emulator.server")
    with Emulator() as emulator:
        host, port = emulator.endpoint_url.removeprefix("http://").split(":")
        for _ in range(3):
            with socket.create_connection((host, int(port))) as client:
                client.sendall(b"POST /inputs HTTP/1.1\r\nHost: x\r\n")
                # Linger 0: close() sends a reset while the server waits for the rest.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The server says at debug level when it met each reset: wait for those three.
        deadline = time.monotonic() + 30
        while sum("dropped the connection" in r.getMessage() for r in caplog.records) < 3:
            assert time.monotonic() < deadline, "the server never met the resets"
            time.sleep(0.01)
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert "ConnectionResetError" not in stderr

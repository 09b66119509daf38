"""Small fixes to the ``ordered-sender`` command, each driven as a user would: a subprocess."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

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

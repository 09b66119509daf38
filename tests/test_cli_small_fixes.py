"""Small fixes to the ``ordered-sender`` command, each driven as a user would: a subprocess."""

from __future__ import annotations

import subprocess
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

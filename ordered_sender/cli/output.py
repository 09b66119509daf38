"""What the commands write to stdout: a console that suits where stdout goes, and JSON.

On a terminal, rich lays tables out to the window. Elsewhere (a pipe, a file) nothing is cut or
folded to a width: an id in a table stays whole on its line, for grep and scripts, and
``--output json`` gives the same data for programs.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])

UNLIMITED_WIDTH = 1_000_000
"""Width of a console that is not a terminal: wider than any row, so none is folded."""


def stdout_console() -> Console:
    """Plain lines are never wrapped (soft wrap) nor coloured by guesswork (no highlighting);
    a table is as wide as its content when stdout is not a terminal. Strings are never read as
    rich markup: they carry lane names, paths and error texts, whose brackets ("[Errno 111]")
    must print as they are; styled output is built from ``rich.text.Text``."""
    terminal = sys.stdout.isatty()
    return Console(
        soft_wrap=True,
        highlight=False,
        markup=False,
        width=None if terminal else UNLIMITED_WIDTH,
    )


output_option = click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: for people; json: one JSON document on stdout, for programs.",
)


def print_json(document: object) -> None:
    """``document`` (dataclasses included) as indented JSON on stdout."""
    click.echo(json.dumps(document, indent=2, default=_plain, sort_keys=False))


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")

"""The ``ordered-sender`` command: demo, send, run, status, pause, resume and the local endpoint.

The command is an application, so it is the one place that configures structlog (the library only
logs). Every error a user can act on becomes a one-line message and a non-zero exit, never a
traceback: ``OrderedSenderGroup.invoke`` translates them in one place.
"""

from __future__ import annotations

import importlib
import signal
from typing import Any

import botocore.exceptions
import click

from ordered_sender.cli.jsonl import BadLine
from ordered_sender.errors import OrderedSenderError
from ordered_sender.logs import configure_logging

LOG_LEVELS = ("debug", "info", "warning", "error")
HELP_OPTION_NAMES = ["-h", "--help"]
"""Every command takes ``-h`` as well as ``--help``; subcommands inherit it from the group."""


INTERRUPTED_EXIT_STATUS = 128 + signal.SIGINT
"""130: what a shell reports for a command that Ctrl-C ended."""


COMMANDS = {
    "send": "ordered_sender.cli.send:send_command",
    "run": "ordered_sender.cli.run:run_command",
    "status": "ordered_sender.cli.operate:status_command",
    "pause": "ordered_sender.cli.operate:pause_command",
    "resume": "ordered_sender.cli.operate:resume_command",
    "dead-letters": "ordered_sender.cli.operate:dead_letters_group",
    "demo": "ordered_sender.cli.demo.command:demo_command",
    "emulator": "ordered_sender.emulator.cli:emulator_command",
}
"""Each command's module, imported only when the command runs (or help lists it): `send` does
not pay for importing the demo and the emulator."""


class OrderedSenderGroup(click.Group):
    """The command group; turns errors a user can act on into a message and exit status 1
    (usage errors are click's, status 2)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (OrderedSenderError, BadLine) as error:
            raise click.ClickException(str(error)) from error
        except botocore.exceptions.NoRegionError as error:
            raise click.ClickException(
                "no AWS region is configured: pass --region or set AWS_REGION (or "
                "AWS_DEFAULT_REGION, or the profile's region)"
            ) from error
        except botocore.exceptions.BotoCoreError as error:
            # The AWS configuration itself is wrong (a profile that refers to a missing one,
            # partial credentials, an unknown service): botocore's message names what.
            raise click.ClickException(f"AWS configuration: {error}") from error
        except OSError as error:
            # A missing directory or a file without permission, named by the OS.
            raise click.ClickException(f"{error.strerror}: {error.filename}") from error
        except KeyboardInterrupt:
            # Ctrl-C outside the parts that stop cleanly (starting up, say): the shell's
            # status for SIGINT, as there, instead of click's "Aborted!" and 1.
            click.echo("interrupted", err=True)
            raise click.exceptions.Exit(INTERRUPTED_EXIT_STATUS) from None


@click.group(cls=OrderedSenderGroup, context_settings={"help_option_names": HELP_OPTION_NAMES})
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS),
    default="warning",
    show_default=True,
    help="Least severe library event written to stderr.",
)
@click.option("--log-json", is_flag=True, help="Write log events as JSON lines.")
@click.version_option(package_name="ordered-sender")
def main(log_level: str, log_json: bool) -> None:
    """Send messages to AWS IoT Events in guaranteed per-lane order, durably.

    Start with `ordered-sender demo`: it needs no AWS account.
    """
    configure_logging(json=log_json, level=log_level)

"""The ``ordered-sender`` command: demo, send, run, status, resume and the local endpoint.

The command is an application, so it is the one place that configures structlog (the library only
logs). Every error a user can act on becomes a one-line message and a non-zero exit, never a
traceback: ``OrderedSenderGroup.invoke`` translates them in one place.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import click

from ordered_sender.cli.demo.command import demo_command
from ordered_sender.cli.jsonl import BadLine
from ordered_sender.cli.operate import dead_letters_group, resume_command, status_command
from ordered_sender.cli.run import run_command
from ordered_sender.cli.send import send_command
from ordered_sender.emulator.cli import emulator_command
from ordered_sender.errors import OrderedSenderError
from ordered_sender.logs import configure_logging

LOG_LEVELS = ("debug", "info", "warning", "error")
HELP_OPTION_NAMES = ["-h", "--help"]
"""Every command takes ``-h`` as well as ``--help``; subcommands inherit it from the group."""


class OrderedSenderGroup(click.Group):
    """The command group; turns errors a user can act on into a message and exit status 1."""

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


main.add_command(send_command)
main.add_command(run_command)
main.add_command(status_command)
main.add_command(resume_command)
main.add_command(dead_letters_group)
main.add_command(demo_command)
main.add_command(emulator_command)

"""Options shared by several commands, and how a command opens an outbox or a sender.

What a user types is checked here (a number of seconds, an endpoint URL) so that a bad value is a
usage error naming the option, before anything is opened or stored.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ordered_sender.config import SenderConfig
from ordered_sender.sender import OrderedSender
from ordered_sender.store.sqlite import SqliteStore
from ordered_sender.transport import Transport
from ordered_sender.transport.http import HttpTransport
from ordered_sender.transport.iotevents import IotEventsTransport, build_client


class PositiveSeconds(click.ParamType[float, "str | float"]):
    """A positive, finite number of seconds: 0, negatives, nan and inf are usage errors."""

    name = "seconds"

    def convert(
        self, value: str | float, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not (math.isfinite(seconds) and seconds > 0):
            self.fail(f"takes a positive finite number of seconds, got {value!r}", param, ctx)
        return seconds


endpoint_option = click.option(
    "--endpoint-url",
    help="IoT Events endpoint, e.g. the URL `ordered-sender emulator` prints. Default: the "
    "configured one (AWS_ENDPOINT_URL_IOTEVENTS_DATA, AWS_ENDPOINT_URL, the profile's "
    "endpoint_url), else AWS for the region.",
)
region_option = click.option("--region", help="AWS region. Default: from the environment.")
TRANSPORTS = ("http", "boto3")
transport_option = click.option(
    "--transport",
    type=click.Choice(TRANSPORTS),
    default="http",
    show_default=True,
    help="http: the lean transport (botocore's credentials and signer, its own keep-alive "
    "HTTP; over 2x boto3's requests per CPU second). boto3: an iotevents-data client, for "
    "whoever needs boto3's own behaviour. Both read the same AWS configuration.",
)
policy_option = click.option(
    "--on-permanent-failure",
    type=click.Choice(["pause", "dead_letter"]),
    default="pause",
    show_default=True,
    help="A message that fails for good pauses its lane until `resume`, or moves to the dead "
    "letters (`dead-letters list|redrive|drop`) while its lane goes on.",
)


def open_sender(
    outbox: Path,
    endpoint_url: str | None,
    region: str | None,
    config: SenderConfig,
    *,
    deliver: bool,
    create: bool = True,
    transport: str = "http",
) -> OrderedSender:
    """A sender on ``outbox`` with a ``transport`` (one of TRANSPORTS) to the endpoint;
    ``deliver=False`` sends nothing, ``create=False`` refuses a file that is not an outbox
    already."""
    sends: Transport
    if transport == "boto3":
        client = build_client(
            timeout=config.request_timeout, endpoint_url=endpoint_url, region_name=region
        )
        sends = IotEventsTransport(client)
    else:
        sends = HttpTransport.from_environment(
            endpoint_url=endpoint_url,
            region_name=region,
            timeout=config.request_timeout,
            max_connections=config.concurrency,
        )
    return OrderedSender(outbox, config=config, transport=sends, autostart=deliver, create=create)


outbox_option = click.option(
    "--outbox",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The outbox file (SQLite).",
)


@contextmanager
def opened_store(outbox: Path, *, read_only: bool = False) -> Iterator[SqliteStore]:
    """An existing outbox without the sender's lock, for reading and operating while a sender
    runs."""
    store = SqliteStore(outbox, create=False, read_only=read_only)
    try:
        yield store
    finally:
        store.close()

"""Options shared by several commands, and how a command opens an outbox or a sender.

What a user types is checked here (a number of seconds, an endpoint URL) so that a bad value is a
usage error naming the option, before anything is opened or stored.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import botocore.exceptions
import botocore.session
import botocore.utils
import click

from ordered_sender.config import SenderConfig
from ordered_sender.sender import OrderedSender
from ordered_sender.store import Store
from ordered_sender.store.open import OutboxTarget, open_store, outbox_target
from ordered_sender.transport import Transport
from ordered_sender.transport.http import HttpTransport
from ordered_sender.transport.iotevents import IotEventsTransport, build_client

F = TypeVar("F", bound=Callable[..., Any])

ENDPOINT_HELP = (
    "IoT Events endpoint, e.g. the URL `ordered-sender emulator` prints. Default: the configured "
    "one (AWS_ENDPOINT_URL_IOTEVENTS_DATA, AWS_ENDPOINT_URL, the profile's endpoint_url), else "
    "AWS for the region."
)
PROGRESS_LINE_SECONDS = 10.0
"""Default interval of the progress lines written where stdout is not a terminal."""
NO_CREDENTIALS = (
    "no AWS credentials found (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, --profile or "
    "AWS_PROFILE, ~/.aws/credentials); a local endpoint such as `ordered-sender emulator` takes "
    "any: export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
)


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


class EndpointUrl(click.ParamType[str, str]):
    """An http(s) URL with a host, checked as botocore checks an endpoint, so that a bad one is
    a usage error naming the option instead of botocore's ValueError."""

    name = "url"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not is_endpoint_url(value):
            self.fail(
                f"{value!r} is not an endpoint URL; give scheme and host, e.g. "
                "http://127.0.0.1:4566 or https://data.iotevents.us-east-1.amazonaws.com",
                param,
                ctx,
            )
        return value


def is_endpoint_url(value: str) -> bool:
    """Whether botocore would take ``value`` as an endpoint, with an http or https scheme and,
    if it has one, a port in range."""
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 -- read for its check: ValueError when out of range
    except ValueError:  # "http://[::1", "http://host:99999"
        return False
    scheme = parts.scheme
    valid = botocore.utils.is_valid_endpoint_url(
        value
    ) or botocore.utils.is_valid_ipv6_endpoint_url(value)
    return scheme in ("http", "https") and bool(valid)


def endpoint_option(help_text: str = ENDPOINT_HELP) -> Callable[[F], F]:
    return click.option("--endpoint-url", type=EndpointUrl(), help=help_text)


def use_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check that the named profile exists, then make it the process's AWS profile, so that every
    botocore session the command opens (transport, demo clients) reads it."""
    if value is None:
        return None
    profiles = botocore.session.Session().available_profiles
    if value not in profiles:
        raise click.BadParameter(
            f"no AWS profile {value!r} in the AWS config or credentials files "
            f"(profiles: {', '.join(sorted(profiles)) or 'none'})",
            ctx,
            param,
        )
    os.environ["AWS_PROFILE"] = value
    return value


profile_option = click.option(
    "--profile",
    envvar="AWS_PROFILE",
    show_envvar=True,
    callback=use_profile,
    expose_value=False,
    is_eager=True,
    help="AWS profile of the config and credentials files.",
)


def region_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An AWS region name as botocore accepts one (a host label), else a usage error."""
    if not value:
        return None
    try:
        botocore.utils.validate_region_name(value)
    except botocore.exceptions.InvalidRegionError:
        raise click.BadParameter(
            f"{value!r} is not a region name (e.g. us-east-1)", ctx, param
        ) from None
    return value


region_option = click.option(
    "--region",
    callback=region_name,
    envvar="AWS_REGION",
    show_envvar=True,
    help="AWS region. Default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region.",
)
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
    outbox: OutboxTarget,
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
    require_credentials()
    try:
        sends = build_transport(endpoint_url, region, config, transport)
    except ValueError as error:
        # An endpoint URL from the environment or the profile that botocore or urllib3 cannot
        # use (one given with --endpoint-url was checked as the option was read).
        if isinstance(error, botocore.exceptions.BotoCoreError):
            raise
        raise click.ClickException(
            f"{error}; check AWS_ENDPOINT_URL_IOTEVENTS_DATA, AWS_ENDPOINT_URL and the "
            "profile's endpoint_url"
        ) from error
    return OrderedSender(outbox, config=config, transport=sends, autostart=deliver, create=create)


def require_credentials() -> None:
    """Fail before anything is stored or sent when botocore finds no credentials at all: every
    request would be refused, and the sender would hold and wait for them forever."""
    if botocore.session.Session().get_credentials() is None:
        raise click.ClickException(NO_CREDENTIALS)


def build_transport(
    endpoint_url: str | None, region: str | None, config: SenderConfig, transport: str
) -> Transport:
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
    return sends


class OutboxArgument(click.ParamType[OutboxTarget, "str | OutboxTarget"]):
    """An SQLite file's path, or a postgresql:// URL (its parameters checked here)."""

    name = "outbox"

    def convert(
        self, value: str | OutboxTarget, param: click.Parameter | None, ctx: click.Context | None
    ) -> OutboxTarget:
        try:
            return outbox_target(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


outbox_option = click.option(
    "--outbox",
    required=True,
    type=OutboxArgument(),
    help="The outbox: an SQLite file, or a PostgreSQL database as "
    "postgresql://USER@HOST/DB (optional parameters: schema, lease_seconds), which any number "
    "of `run` workers on any hosts may deliver together.",
)


@contextmanager
def opened_store(outbox: OutboxTarget, *, read_only: bool = False) -> Iterator[Store]:
    """An existing outbox without the sender's lock, for reading and operating while a sender
    runs."""
    store = open_store(outbox, create=False, read_only=read_only)
    try:
        yield store
    finally:
        store.close()


progress_option = click.option(
    "--progress-every",
    type=PositiveSeconds(),
    default=PROGRESS_LINE_SECONDS,
    show_default=True,
    help="Where stdout is not a terminal, a progress line at most this often (a terminal shows "
    "a live line instead).",
)

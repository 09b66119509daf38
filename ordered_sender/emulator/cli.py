"""``ordered-sender emulator``: run the local IoT Events endpoint until Ctrl-C or SIGTERM.

The first line printed is the endpoint URL, so a script (or a test) that starts the command can
read it and point boto3 at it. Faults set here can be replaced at runtime over HTTP
(``PUT /_emulator/faults``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ordered_sender.emulator.durable import StateFileError
from ordered_sender.emulator.emulator import Emulator
from ordered_sender.emulator.faults import Faults
from ordered_sender.emulator.wire import ApiError

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _faults(
    request_error_rate: float,
    request_error_codes: str,
    entry_error_rate: float,
    entry_error_codes: str,
    latency_ms: str,
    drop_connection_rate: float,
) -> Faults:
    """Faults from the command line; a bad value becomes a usage error naming its option."""
    try:
        statuses = tuple(int(part) for part in _split(request_error_codes))
        low, high = (int(part) for part in _split(latency_ms))
    except ValueError as error:
        raise click.BadParameter(
            f"--request-error-codes takes statuses like 429,503 and --latency-ms takes LOW,HIGH "
            f"milliseconds; got {request_error_codes!r} and {latency_ms!r}"
        ) from error
    try:
        return Faults(
            request_error_rate=request_error_rate,
            request_error_codes=statuses,
            entry_error_rate=entry_error_rate,
            entry_error_codes=tuple(_split(entry_error_codes)),
            latency_ms=(low, high),
            drop_connection_rate=drop_connection_rate,
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


def _secrets(credentials: tuple[str, ...]) -> dict[str, str]:
    """``--credential`` values as access key id -> secret; a bad one is a usage error."""
    secrets: dict[str, str] = {}
    for credential in credentials:
        access_key, separator, secret = credential.partition(":")
        if not (access_key and separator and secret):
            raise click.BadParameter(
                f"takes ACCESS_KEY:SECRET, got {credential!r}", param_hint="--credential"
            )
        secrets[access_key] = secret
    return secrets


@contextmanager
def _listening(emulator: Emulator, host: str, port: int) -> Iterator[Emulator]:
    """``emulator`` started and stopped on the way out; a bind the OS refuses (the port is in
    use, the host is not this machine's) is a usage error naming the address."""
    try:
        emulator.start()
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {error.strerror or error}; "
            "pick another --port (0 picks a free one) or --host"
        ) from error
    try:
        yield emulator
    finally:
        emulator.stop()


class _Probability(click.ParamType[float, "str | float"]):
    """A number from 0 to 1 (not NaN)."""

    name = "probability"

    def convert(
        self, value: str | float, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not 0.0 <= number <= 1.0:  # False for NaN too
            self.fail(f"{value!r} is not a probability from 0 to 1", param, ctx)
        return number


PROBABILITY = _Probability()


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind; 0 picks a free one.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of shuffling and faults.")
@click.option("--no-shuffle", is_flag=True, help="Process a request's messages in request order.")
@click.option(
    "--input",
    "input_names",
    multiple=True,
    help="Create this input at start (repeatable).",
)
@click.option(
    "--request-error-rate",
    default=0.0,
    show_default=True,
    type=PROBABILITY,
    help="Probability that a request fails whole (nothing processed).",
)
@click.option(
    "--request-error-codes",
    default="429,500,503",
    show_default=True,
    help="HTTP statuses a failing request gets, comma-separated.",
)
@click.option(
    "--entry-error-rate",
    default=0.0,
    show_default=True,
    type=PROBABILITY,
    help="Probability that one message gets an error entry (not processed).",
)
@click.option(
    "--entry-error-codes",
    default="ThrottlingException,ServiceUnavailableException,InternalFailureException",
    show_default=True,
    help="Error codes a failing message gets, comma-separated.",
)
@click.option(
    "--latency-ms",
    default="0,0",
    show_default=True,
    help="LOW,HIGH milliseconds added before each answer, drawn uniformly.",
)
@click.option(
    "--drop-connection-rate",
    default=0.0,
    show_default=True,
    type=PROBABILITY,
    help="Probability that, after processing, the connection closes without an answer.",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=(
        "SQLite file keeping inputs, detector models, detectors, their timers and the "
        "de-duplication window across restarts (created if missing); without it, state is in "
        "memory only."
    ),
)
@click.option(
    "--verify-signatures",
    is_flag=True,
    help="Check every request's SigV4 signature and refuse a bad one with 403, as AWS does.",
)
@click.option(
    "--credential",
    "credentials",
    multiple=True,
    default=("testing:testing",),
    show_default=True,
    help="ACCESS_KEY:SECRET that --verify-signatures accepts (repeatable).",
)
def emulator_command(
    host: str,
    port: int,
    seed: int,
    no_shuffle: bool,
    input_names: tuple[str, ...],
    state_path: Path | None,
    verify_signatures: bool,
    credentials: tuple[str, ...],
    **fault_options: Any,
) -> None:
    """Run a local AWS IoT Events endpoint (BatchPutMessage and inputs) with fault injection.

    Prints the endpoint URL, then serves until Ctrl-C or SIGTERM. Recordings and the active
    faults are under /_emulator/ (processed, requests, stats, unusable, faults: PUT to replace
    them, which also allows targeted faults; DELETE /_emulator/record forgets the record).
    With --state, a restart (even after SIGKILL) resumes every input, detector model, detector
    and timer, and the de-duplication window.
    """
    faults = _faults(**fault_options)
    secrets = _secrets(credentials) if verify_signatures else None
    try:
        emulator = Emulator(
            seed=seed,
            faults=faults,
            shuffle=not no_shuffle,
            host=host,
            port=port,
            verify_signatures=secrets,
            state_path=state_path,
        )
    except StateFileError as error:
        raise click.BadParameter(str(error), param_hint="--state") from error
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Restored on the way out so an in-process caller (CliRunner, a test) keeps its handlers.
    previous = {number: signal.signal(number, request_stop) for number in _STOP_SIGNALS}
    try:
        with _listening(emulator, host, port) as emu:
            for name in input_names:
                if state_path is not None and emu.inputs.exists(name):
                    continue  # restored from --state
                try:
                    emu.create_input(name)
                except ApiError as error:
                    raise click.BadParameter(error.message, param_hint="--input") from error
            click.echo(emu.endpoint_url)
            click.echo(f"inputs: {', '.join(input_names) or '(none)'}; {faults}", err=True)
            stop.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    click.echo("emulator stopped", err=True)

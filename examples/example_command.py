"""The command line the example scripts share: options, running the demonstration, exit status.

What the examples send and how they read detectors back is ``ordered_sender.demos.endpoint``;
this module only turns ``--endpoint-url``, ``--region``, ``--seed`` and each example's sizes into
a call of its ``run`` and prints the report.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog

from ordered_sender.demos.endpoint import EndpointUnfit, SendFailed


class Demonstration(Protocol):
    """What an example's ``run()`` returns."""

    @property
    def as_expected(self) -> bool:
        """Whether the run in order came out right, as the example says it does."""
        ...

    def report(self) -> str:
        """The account of both runs that the command prints."""
        ...


def command_line(
    doc: str | None,
    sizes: Mapping[str, tuple[int, str]],
    run: Callable[..., Demonstration],
    argv: Sequence[str] | None,
) -> int:
    """An example's command: parse the options, ``run(**options)``, print the report.

    ``sizes`` maps option names to (default, help); they become ``--<name>`` options and keyword
    arguments of ``run``, beside ``endpoint_url``, ``region`` and ``seed``. Exit status 0 when
    the demonstration came out as expected, 1 when not or when the endpoint cannot run it.
    """
    options = _options(doc, sizes, argv)
    try:
        result = run(**options)
    except (EndpointUnfit, SendFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.report())
    return 0 if result.as_expected else 1


def _options(
    doc: str | None, sizes: Mapping[str, tuple[int, str]], argv: Sequence[str] | None
) -> dict[str, Any]:
    """The options as keyword arguments; the library's logs are quietened, as they would drown
    the example's story in per-message events."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument(
        "--endpoint-url",
        help="an IoT Events endpoint with detector models (default: the embedded local one)",
    )
    parser.add_argument("--region", default="us-east-1", help="AWS region (default: us-east-1)")
    parser.add_argument(
        "--seed", type=int, default=7, help="seed of the traces and of the embedded endpoint"
    )
    for name, (default, meaning) in sizes.items():
        parser.add_argument(
            f"--{name}", type=_positive, default=default, help=f"{meaning} (default: {default})"
        )
    options = vars(parser.parse_args(argv))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return options


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)

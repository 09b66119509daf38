"""``configure_logging``: the structlog set-up the ``ordered-sender`` command uses, for applications
that want the same.

The library itself never configures logging (events.py): an application calls this once, at
start, or sets structlog up its own way. Three renderings, chosen once, when it is called:

- ``json=True``: one JSON object per line (``timestamp``, ``level``, ``event`` and the event's
  fields), for log collectors in production;
- on a terminal: readable console output, in colour unless ``NO_COLOR`` is set to anything
  (https://no-color.org);
- anywhere else (a file, a pipe, a journal): the same text without colour codes, tracebacks as
  plain text.

Payloads and credentials are never in the events, whichever rendering.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog

LEVELS = ("debug", "info", "warning", "error", "critical")
"""The level names ``configure_logging`` takes, least severe first."""


def configure_logging(
    *, json: bool = False, level: str = "info", stream: TextIO | None = None
) -> None:
    """Send ordered_sender's events (and the application's structlog events) to ``stream``.

    ``json`` writes JSON lines; otherwise text, coloured only for a terminal without NO_COLOR.
    ``level`` is the least severe event written, one of LEVELS (any case). ``stream`` defaults to
    standard error, looked up at each event, so that whoever replaces ``sys.stderr`` meanwhile
    (a progress bar, a test's capture) receives the lines. Raises ValueError naming an unknown
    level.
    """
    if not isinstance(level, str) or level.lower() not in LEVELS:
        raise ValueError(
            f"configure_logging(level={level!r}): not a log level; use one of {', '.join(LEVELS)}"
        )
    target = sys.stderr if stream is None else stream
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    elif wants_colors(target):
        processors.append(structlog.dev.ConsoleRenderer(colors=True))
    else:
        processors.append(
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            )
        )
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=_StreamLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


def wants_colors(stream: TextIO) -> bool:
    """Colours only for a person at a terminal: not in a file or a pipe, and never when NO_COLOR
    is set to anything."""
    isatty = getattr(stream, "isatty", None)
    return callable(isatty) and bool(isatty()) and not os.environ.get("NO_COLOR")


class _StreamLoggerFactory:
    """A PrintLogger on ``stream``, or on whatever ``sys.stderr`` is at each event."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def __call__(self, *args: Any) -> structlog.PrintLogger:
        return structlog.PrintLogger(sys.stderr if self._stream is None else self._stream)

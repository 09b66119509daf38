"""psycopg's errors turned into ours, in one place: a table by SQLSTATE, then by its class.

``translate`` maps one psycopg error met on a PostgreSQL outbox to StoreError or NotAnOutbox,
with a message that names the outbox (its URL without password), PostgreSQL's code and what to
do; ``translated_errors`` runs a block with every psycopg error raised that way. Every store
operation and every connection runs inside it, so no psycopg exception reaches a caller as itself.

This module only classifies errors: it connects to nothing and runs no statement.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

import psycopg

from ordered_sender.errors import NotAnOutbox, StoreError

_REPORT_IT: Final = "this is a bug in ordered-sender; please report it with this message"
_TRY_AGAIN: Final = "nothing of the failed call was stored; try again"

POSTGRES_ERRORS: Final[Mapping[str, tuple[type[StoreError] | type[NotAnOutbox], str]]] = {
    # Exact SQLSTATEs first where they say more than their class (the first two characters).
    # {code} is the SQLSTATE, {detail} PostgreSQL's message (bound values never appear in it).
    "53100": (
        StoreError,
        "the server's disk is full ({code}); " + _TRY_AGAIN + " once space is freed there",
    ),
    "53300": (
        StoreError,
        "the server has no free connection slot ({code}); raise max_connections or use fewer "
        "clients; try again",
    ),
    "25006": (
        StoreError,
        "the server accepts no writes ({code}: {detail}); a standby or a read-only database: "
        "give the URL of the primary",
    ),
    "42501": (
        StoreError,
        "this user may not do it ({code}: {detail}); grant the user CREATE on the database (for "
        "the outbox's schema) and use of that schema's tables",
    ),
    "42P01": (
        StoreError,
        "a table of the outbox is missing ({code}: {detail}); another program dropped or "
        "altered the outbox's schema; restore it from a backup",
    ),
    "42703": (
        StoreError,
        "a column of the outbox is missing ({code}: {detail}); another program altered the "
        "outbox's schema; restore it from a backup",
    ),
    "40001": (StoreError, "PostgreSQL could not serialise the call ({code}); " + _TRY_AGAIN),
    "40P01": (
        StoreError,
        "the call deadlocked with another transaction ({code}); " + _TRY_AGAIN + "; a "
        "transaction that puts into several lanes in several calls locks them in that order",
    ),
    "57014": (StoreError, "the statement was cancelled ({code}: {detail}); " + _TRY_AGAIN),
    "55P03": (StoreError, "a lock could not be had in time ({code}); " + _TRY_AGAIN),
    "08": (
        StoreError,
        "the connection to PostgreSQL failed ({code}: {detail}); check that the server runs and "
        "is reachable; the outbox is opened again at the next call",
    ),
    "53": (StoreError, "the server ran out of a resource ({code}: {detail}); try again"),
    "54": (StoreError, "a limit of the server was passed ({code}: {detail}); " + _REPORT_IT),
    "57": (
        StoreError,
        "the server stopped or was stopped ({code}: {detail}); the outbox is opened again at "
        "the next call once it is back",
    ),
    "58": (
        StoreError,
        "the server reported an I/O error ({code}: {detail}); check the server's disk",
    ),
    "XX": (
        StoreError,
        "the server failed inside ({code}: {detail}); data may be damaged: check the server's log",
    ),
    "40": (StoreError, "the transaction was rolled back ({code}); " + _TRY_AGAIN),
    "23": (StoreError, "a constraint failed ({code}: {detail}); " + _REPORT_IT),
    "22": (StoreError, "a value was refused ({code}: {detail}); " + _REPORT_IT),
    "42": (StoreError, "a statement was refused ({code}: {detail}); " + _REPORT_IT),
}
"""psycopg errors by SQLSTATE or SQLSTATE class: the class raised and its problem text."""


def translate(error: psycopg.Error, where: str) -> StoreError | NotAnOutbox:
    """The error of our tree for ``error`` met on the outbox ``where`` (a URL without its
    password); its message says what to do."""
    code = error.sqlstate
    detail = _first_line(error)
    if code is None:
        if isinstance(error, psycopg.OperationalError):
            # No SQLSTATE: the connection failed (refused, unknown host, no such database or
            # user, credentials refused); libpq's message, kept whole, says which.
            return StoreError(
                where,
                f"cannot connect to PostgreSQL ({detail}); check that the server runs, and the "
                "host, port, database, user and password (PGPASSWORD, ~/.pgpass) of the URL",
            )
        return StoreError(
            where, f"psycopg refused a call ({type(error).__name__}: {detail}); {_REPORT_IT}"
        )
    entry = POSTGRES_ERRORS.get(code) or POSTGRES_ERRORS.get(code[:2])
    if entry is None:
        return StoreError(where, f"PostgreSQL failed with {code} ({detail}); {_REPORT_IT}")
    error_class, problem = entry
    text = problem.format(code=code, detail=detail)
    if error_class is NotAnOutbox:
        return NotAnOutbox(f"outbox {where}: {text}")
    return StoreError(where, text)


@contextmanager
def translated_errors(where: str) -> Iterator[None]:
    """Run the block with every psycopg error raised as ``translate(error, where)``, its cause
    kept as ``__cause__``; errors of our tree pass through unchanged."""
    try:
        yield
    except psycopg.Error as error:
        raise translate(error, where) from error


def _first_line(error: psycopg.Error) -> str:
    diagnostic = error.diag.message_primary
    text = diagnostic if diagnostic else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__

"""sqlite3's errors turned into ours, in one place: a table by SQLite result code.

``translate`` maps one sqlite3 error met on an outbox file to StoreError or NotAnOutbox, with a
message that names the file, SQLite's code and what to do; ``translated_errors`` runs a block with
every sqlite3 error raised that way. Every store operation and every open runs inside it, so no
sqlite3 exception reaches a caller as itself.

This module only classifies errors: it opens no file and runs no statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from ordered_sender.errors import NotAnOutbox, StoreError

_REPORT_IT: Final = "this is a bug in ordered-sender; please report it with this message"

SQLITE_ERRORS: Final[Mapping[int, tuple[type[StoreError] | type[NotAnOutbox], str]]] = {
    # Extended codes first where they say more than their family; ``translate`` looks one up
    # before its primary code (the low byte). {name} is SQLite's code name, {detail} its message.
    sqlite3.SQLITE_FULL: (
        StoreError,
        "the disk is full ({name}); nothing of the failed call was stored; free space on the "
        "file system that holds it, then try again",
    ),
    sqlite3.SQLITE_IOERR: (
        StoreError,
        "the operating system reported an I/O error ({name}); check the disk and its file "
        "system (dmesg), then try again",
    ),
    sqlite3.SQLITE_READONLY: (
        StoreError,
        "cannot be written: it, its folder or its file system is read-only ({name}); "
        "`ordered-sender status` can still read it; to put or deliver, make it writable",
    ),
    sqlite3.SQLITE_READONLY_DBMOVED: (
        StoreError,
        "was deleted, moved or replaced while open ({name}); messages not yet delivered are only "
        "in the removed file; open the outbox again",
    ),
    sqlite3.SQLITE_READONLY_ROLLBACK: (
        StoreError,
        "has a hot journal left by a writer that crashed ({name}), which a read-only open cannot "
        "roll back; open it once where it can be written",
    ),
    sqlite3.SQLITE_CORRUPT: (
        StoreError,
        "is damaged ({name}: {detail}); stop every sender on it, keep a copy, and restore it from "
        "a backup or rescue what is left with `sqlite3 FILE .recover`",
    ),
    sqlite3.SQLITE_NOTADB: (
        NotAnOutbox,
        "is not an SQLite database, so not an ordered-sender outbox ({name}); check the path, "
        "or if it was an outbox, restore it from a backup. It was not changed.",
    ),
    sqlite3.SQLITE_CANTOPEN: (
        StoreError,
        "cannot be opened ({name}); check that it and its folder exist and that this user may "
        "read and write both",
    ),
    sqlite3.SQLITE_PERM: (
        StoreError,
        "access was refused by the operating system ({name}); check the permissions of the "
        "file, its -wal and -shm files and its folder",
    ),
    sqlite3.SQLITE_AUTH: (
        StoreError,
        "an SQLite authorizer refused a statement ({name}); remove the authorizer set on this "
        "connection",
    ),
    sqlite3.SQLITE_BUSY: (
        StoreError,
        "another process held its write lock longer than the busy timeout ({name}); a long "
        "transaction or a stuck process is using it (`fuser FILE` names it); try again",
    ),
    sqlite3.SQLITE_LOCKED: (
        StoreError,
        "a table was locked by another statement on the same connection ({name}); try again; "
        "if it persists, " + _REPORT_IT,
    ),
    sqlite3.SQLITE_PROTOCOL: (
        StoreError,
        "SQLite's locking failed ({name}), which happens on network file systems; keep the "
        "outbox on a local disk",
    ),
    sqlite3.SQLITE_NOLFS: (
        StoreError,
        "outgrew what its file system allows for one file ({name}); move the outbox to another "
        "file system",
    ),
    sqlite3.SQLITE_NOMEM: (
        StoreError,
        "SQLite ran out of memory ({name}); free memory, then retry",
    ),
    sqlite3.SQLITE_TOOBIG: (
        StoreError,
        "a value is larger than SQLite's size limit ({name}); send smaller payloads",
    ),
    sqlite3.SQLITE_INTERRUPT: (StoreError, "an operation was interrupted ({name}); try again"),
    sqlite3.SQLITE_ABORT: (StoreError, "a transaction was rolled back ({name}); try again"),
    sqlite3.SQLITE_SCHEMA: (
        StoreError,
        "its tables changed while a statement ran ({name}); another program is altering it; "
        "stop that program",
    ),
    sqlite3.SQLITE_ERROR: (
        StoreError,
        "a statement failed ({name}: {detail}); if another program changed the file, restore it "
        "from a backup; otherwise " + _REPORT_IT,
    ),
    # Codes below mean our statements or SQLite itself went wrong, not the file.
    sqlite3.SQLITE_CONSTRAINT: (
        StoreError,
        "a constraint failed ({name}: {detail}); " + _REPORT_IT,
    ),
    sqlite3.SQLITE_MISMATCH: (StoreError, "a value had the wrong type ({name}); " + _REPORT_IT),
    sqlite3.SQLITE_RANGE: (StoreError, "a parameter was out of range ({name}); " + _REPORT_IT),
    sqlite3.SQLITE_MISUSE: (StoreError, "SQLite was used wrongly ({name}); " + _REPORT_IT),
    sqlite3.SQLITE_INTERNAL: (StoreError, "SQLite failed inside ({name}); " + _REPORT_IT),
}
"""sqlite3 errors by SQLite result code: the class raised and its problem text."""

CODES_THAT_ARE_NOT_ERRORS: Final = frozenset(
    {
        sqlite3.SQLITE_OK,
        sqlite3.SQLITE_ROW,
        sqlite3.SQLITE_DONE,
        sqlite3.SQLITE_NOTICE,  # these two go to SQLite's log, never to a caller
        sqlite3.SQLITE_WARNING,
        sqlite3.SQLITE_NOTFOUND,  # internal to file controls
        sqlite3.SQLITE_EMPTY,  # unused by SQLite
        sqlite3.SQLITE_FORMAT,  # unused by SQLite
    }
)
"""Primary result codes no sqlite3 exception carries; every other one is in SQLITE_ERRORS."""

SQLITE3_MODULE_ERRORS: Final[Mapping[str, str]] = {
    "Cannot operate on a closed database.": (
        "was closed by this process, so it can no longer be used; open the outbox again (a new "
        "Outbox or OrderedSender) to go on"
    ),
    "Cannot operate on a closed cursor.": (
        "was closed by this process, so it can no longer be used; open the outbox again (a new "
        "Outbox or OrderedSender) to go on"
    ),
}
"""Errors the sqlite3 module raises itself, with no SQLite code, by their exact text."""


def translate(error: sqlite3.Error, path: Path) -> StoreError | NotAnOutbox:
    """The error of our tree for ``error`` met on the outbox at ``path``; its message names the
    file and says what to do. Bound values (payloads) are never part of SQLite's messages."""
    code: int | None = getattr(error, "sqlite_errorcode", None)
    if code is None:
        known = SQLITE3_MODULE_ERRORS.get(str(error))
        if known is not None:
            return StoreError(path, known)
        return StoreError(
            path, f"sqlite3 refused a call ({type(error).__name__}: {error}); {_REPORT_IT}"
        )
    name = getattr(error, "sqlite_errorname", None) or f"SQLite error {code}"
    entry = SQLITE_ERRORS.get(code) or SQLITE_ERRORS.get(code & 0xFF)
    if entry is None:
        return StoreError(path, f"SQLite failed with {name} ({error}); {_REPORT_IT}")
    error_class, problem = entry
    text = problem.format(name=name, detail=error)
    if error_class is NotAnOutbox:
        return NotAnOutbox(f"{path} {text}")
    return StoreError(path, text)


@contextmanager
def translated_errors(path: Path) -> Iterator[None]:
    """Run the block with every sqlite3 error raised as ``translate(error, path)``, its cause
    kept as ``__cause__`` for tracebacks; errors of our tree pass through unchanged."""
    try:
        yield
    except sqlite3.Error as error:
        raise translate(error, path) from error

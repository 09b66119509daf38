"""The table from sqlite3's errors to ours: every code mapped, and each error provoked for real.

Each provoked error comes out of ``translated_errors`` as StoreError or NotAnOutbox naming the file
and SQLite's code, with the sqlite3 error kept as its cause.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from ordered_sender.errors import NotAnOutbox, StoreError
from ordered_sender.store.sqlite_errors import (
    CODES_THAT_ARE_NOT_ERRORS,
    SQLITE_ERRORS,
    translate,
    translated_errors,
)

# --- the translation table ------------------------------------------------------------------

# fmt: off
PRIMARY_CODE_NAMES = (
    "OK", "ERROR", "INTERNAL", "PERM", "ABORT", "BUSY", "LOCKED", "NOMEM", "READONLY", "INTERRUPT",
    "IOERR", "CORRUPT", "NOTFOUND", "FULL", "CANTOPEN", "PROTOCOL", "EMPTY", "SCHEMA", "TOOBIG",
    "CONSTRAINT", "MISMATCH", "MISUSE", "NOLFS", "AUTH", "FORMAT", "RANGE", "NOTADB", "NOTICE",
    "WARNING", "ROW", "DONE",
)
# fmt: on
"""SQLite's primary result codes (https://sqlite.org/rescode.html)."""


def error_with_code(name: str) -> sqlite3.Error:
    error = sqlite3.OperationalError(f"SQLite said {name}")
    error.sqlite_errorcode = getattr(sqlite3, name)
    error.sqlite_errorname = name
    return error


def extended_code_names() -> list[str]:
    return sorted(
        name
        for name in dir(sqlite3)
        for primary in PRIMARY_CODE_NAMES
        if name.startswith(f"SQLITE_{primary}_") and getattr(sqlite3, name) > 0xFF
    )


def test_every_primary_code_an_error_can_carry_is_in_the_table() -> None:
    codes = {getattr(sqlite3, f"SQLITE_{name}") for name in PRIMARY_CODE_NAMES}
    assert codes - CODES_THAT_ARE_NOT_ERRORS == set(SQLITE_ERRORS) & codes
    assert all(code & 0xFF in codes for code in SQLITE_ERRORS)


@pytest.mark.parametrize(
    "name",
    [f"SQLITE_{n}" for n in PRIMARY_CODE_NAMES if n not in {"OK", "ROW", "DONE"}]
    + extended_code_names(),
)
def test_every_code_becomes_an_error_of_our_tree_naming_the_file_and_the_code(
    tmp_path: Path, name: str
) -> None:
    translated = translate(error_with_code(name), tmp_path / "outbox.db")
    assert isinstance(translated, StoreError | NotAnOutbox)
    assert str(tmp_path / "outbox.db") in str(translated)
    assert name in str(translated)


def test_an_unknown_code_still_names_itself(tmp_path: Path) -> None:
    error = sqlite3.OperationalError("odd")
    error.sqlite_errorcode = 0x7F
    error.sqlite_errorname = "SQLITE_SOMETHING_NEW"
    translated = translate(error, tmp_path / "o.db")
    assert isinstance(translated, StoreError)
    assert "SQLITE_SOMETHING_NEW" in str(translated)
    assert "report" in str(translated)


def provoke_busy(path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        with closing(sqlite3.connect(path, timeout=0)) as waiter:
            waiter.execute("BEGIN IMMEDIATE")


def provoke_read_only(path: Path) -> None:
    sqlite3.connect(path).close()
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as connection:
        connection.execute("CREATE TABLE t (x)")


def provoke_cantopen(path: Path) -> None:
    sqlite3.connect(path.parent / "no-such-folder" / "o.db").execute("SELECT 1")


def provoke_constraint(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection:
        connection.executescript("CREATE TABLE t (x UNIQUE); INSERT INTO t VALUES (1), (1);")


def provoke_mismatch(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection:
        connection.executescript(
            "CREATE TABLE t (x INTEGER PRIMARY KEY); INSERT INTO t VALUES ('a')"
        )


def provoke_too_big(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection:
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100)
        connection.execute("SELECT ?", (b"x" * 1000,))


def provoke_interrupt(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection:
        connection.set_progress_handler(lambda: 1, 1)
        connection.execute("SELECT 1")


def provoke_auth(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection:
        connection.set_authorizer(lambda *_: sqlite3.SQLITE_DENY)
        connection.execute("SELECT 1")


def provoke_error(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("SELECT * FROM no_such_table")


def provoke_not_a_database(path: Path) -> None:
    path.write_bytes(os.urandom(4096))
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("SELECT * FROM sqlite_schema")


def provoke_closed(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.close()
    connection.execute("SELECT 1")


@pytest.mark.parametrize(
    ("provoke", "expected", "problem"),
    [
        (provoke_busy, StoreError, r"write lock longer than the busy timeout \(SQLITE_BUSY\)"),
        (provoke_read_only, StoreError, r"read-only \(SQLITE_READONLY\)"),
        (provoke_cantopen, StoreError, r"cannot be opened \(SQLITE_CANTOPEN\)"),
        (provoke_constraint, StoreError, r"SQLITE_CONSTRAINT_UNIQUE.*report"),
        (provoke_mismatch, StoreError, r"wrong type \(SQLITE_MISMATCH\)"),
        (provoke_too_big, StoreError, r"size limit \(SQLITE_TOOBIG\)"),
        (provoke_interrupt, StoreError, r"interrupted \(SQLITE_INTERRUPT\)"),
        (provoke_auth, StoreError, r"authorizer refused a statement \(SQLITE_AUTH\)"),
        (provoke_error, StoreError, r"SQLITE_ERROR: no such table: no_such_table"),
        (provoke_not_a_database, NotAnOutbox, r"is not an SQLite database, .*SQLITE_NOTADB"),
        (provoke_closed, StoreError, r"was closed by this process.*open the outbox again"),
    ],
)
def test_errors_provoked_for_real_come_out_as_our_errors(
    tmp_path: Path,
    provoke: Callable[[Path], None],
    expected: type[Exception],
    problem: str,
) -> None:
    path = tmp_path / "outbox.db"
    with pytest.raises(expected, match=problem) as raised, translated_errors(path):
        provoke(path)
    assert str(path) in str(raised.value)
    assert isinstance(raised.value.__cause__, sqlite3.Error)


def test_translated_errors_lets_other_exceptions_through(tmp_path: Path) -> None:
    with pytest.raises(KeyError), translated_errors(tmp_path / "o.db"):
        raise KeyError("not ours to translate")

"""Opening an outbox file safely: checked before anything is written, created 0600, migrated.

An outbox file is marked twice in its SQLite header: ``PRAGMA application_id`` holds
``APPLICATION_ID`` (0x4F534E44, the bytes "OSND" at offset 68, so ``file`` or a hex dump shows whose
it is) and ``PRAGMA user_version`` its schema version. Files of the first release carry neither
mark (application_id 0, user_version 1); they are recognised by their ``messages`` and ``lanes``
tables as version 1 and migrated.

``open_outbox`` works in two steps. First it looks, without writing: it reads the marks and the
tables through a read-only connection and refuses anything that is not an outbox it can use,
naming the file and the problem. Only then does it open for writing, and under SQLite's write lock
it reads the marks again (another process may have created or upgraded the file meanwhile),
creates or migrates, and switches to WAL. So a file it refuses (another application's database,
a newer outbox, random bytes) is never altered: not its bytes, its journal mode or its marks, and
no -wal or -shm file is left beside it.

sqlite3's errors met while opening become StoreError or NotAnOutbox through ``sqlite_errors``.

This module holds no outbox queries and keeps no state; the store owns the connection it returns.
It never opens the outbox file with plain ``open()``: closing any descriptor of a file drops every
POSIX lock this process holds on it, SQLite's included.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ordered_sender.errors import NotAnOutbox, StoreError
from ordered_sender.store.lock import creation_refused
from ordered_sender.store.sqlite_errors import translated_errors

APPLICATION_ID: Final = 0x4F534E44
"""``PRAGMA application_id`` of every outbox: "OSND" in ASCII; not in SQLite's list of used ids."""

SYNCHRONOUS_LEVELS: Final = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

_FIRST_RELEASE_TABLES: Final = frozenset({"messages", "lanes"})
_FIRST_RELEASE_COLUMNS: Final = frozenset({"seq", "message_id", "lane", "input_name", "payload"})

_HOW_TO_CREATE: Final = "`ordered-sender send` or Outbox.put creates an outbox; check the path"


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What an SQLite file says about itself: its marks, its tables and the columns of its
    ``messages`` table (to recognise files of the first release, which carry no marks)."""

    application_id: int
    user_version: int
    tables: frozenset[str]
    message_columns: frozenset[str]

    @property
    def blank(self) -> bool:
        """An SQLite database with nothing in it: safe to make an outbox of."""
        return self.application_id == 0 and self.user_version == 0 and not self.tables


def open_outbox(
    path: Path,
    *,
    schema: str,
    schema_version: int,
    migrations: Mapping[int, str],
    create: bool,
    read_only: bool = False,
    synchronous: str = "FULL",
    busy_timeout: float = 30.0,
) -> sqlite3.Connection:
    """A connection to the outbox at ``path``, at ``schema_version``, in autocommit mode
    (``isolation_level=None``: the caller runs its own BEGIN/COMMIT) and usable from any thread
    (the caller serialises use).

    ``schema`` creates a new outbox at ``schema_version``; ``migrations[v]`` takes one of version
    v to v + 1, each in one transaction. ``create=False`` refuses a missing or empty file; only
    ``create=True`` makes one, readable and writable by its owner alone (0600) whatever the umask.
    ``read_only`` opens for reading only, and works on a read-only file or file system.
    Read-write opens set WAL and ``PRAGMA synchronous``; ``busy_timeout`` is how many seconds a
    statement waits for another process's write lock.

    Raises NotAnOutbox for a missing (without ``create``), empty, non-SQLite or foreign file, or an
    outbox of a newer version; StoreError for a file that cannot be read or written, is damaged,
    or needs an upgrade that ``read_only`` cannot make. A refused file is left exactly as it was.
    """
    if synchronous.upper() not in SYNCHRONOUS_LEVELS:
        raise ValueError(
            f"synchronous={synchronous!r}: must be one of {sorted(SYNCHRONOUS_LEVELS)}"
        )
    if read_only and create:
        raise ValueError("read_only=True cannot create an outbox; pass create=False")
    expected_tables = _tables_made_by(schema)
    with translated_errors(path):
        if not _created_new_file(path, create):
            identity = _inspect(path, busy_timeout)
            version = _outbox_version(identity, path, schema_version, expected_tables, create)
            if read_only:
                return _open_for_reading(path, version, schema_version, busy_timeout)
            _check_writable(path)
        connection = _connect(path, "mode=rw", busy_timeout)
        try:
            _bring_up_to_date(connection, path, schema, schema_version, migrations, expected_tables)
            _use_wal(connection, path, synchronous.upper())
        except BaseException:
            connection.close()
            raise
        return connection


def _created_new_file(path: Path, create: bool) -> bool:
    """True when this call made ``path`` (an empty 0600 file); NotAnOutbox when it is missing
    and may not be made."""
    if not create:
        if not os.path.lexists(path):
            raise NotAnOutbox(f"outbox {path} does not exist; {_HOW_TO_CREATE}")
        return False
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as error:
        raise creation_refused(path, error) from None
    try:
        # The umask can only take bits away from 0600, but an odd one (0o277) would leave the
        # owner unable to write; set the mode outright. SQLite gives the -wal, -shm and -journal
        # files it creates later the mode of this file.
        os.fchmod(descriptor, 0o600)
    finally:
        # Safe to close: nobody can hold a lock on a file that did not exist a moment ago.
        os.close(descriptor)
    return True


def _inspect(path: Path, busy_timeout: float) -> FileIdentity | None:
    """The identity of the existing file at ``path`` (None when it is empty), read without
    writing anything, and with every table's first page read, so damage there shows now."""
    try:
        status = os.stat(path)
    except OSError as error:
        raise StoreError(path, f"cannot be read: {error.strerror}") from None
    if stat.S_ISDIR(status.st_mode):
        raise NotAnOutbox(f"{path} is a folder, not an outbox file; give the path of an outbox")
    if not stat.S_ISREG(status.st_mode):
        raise NotAnOutbox(f"{path} is not a regular file; give the path of an outbox file")
    if status.st_size == 0:
        return None
    if not os.access(path, os.R_OK):
        raise StoreError(path, "cannot be read: permission denied; check the file's permissions")
    # A read-only connection to a WAL database creates -wal and -shm files and leaves them
    # behind. With no -wal and no -journal beside it, nobody is writing the file and the main
    # file holds everything, so it is read as immutable, which creates nothing. Otherwise a writer
    # may be at work and SQLite's locks are needed (the -shm then exists or is theirs anyway).
    if _has_journal(path):
        return _identity_through(path, "mode=ro", busy_timeout)
    try:
        return _identity_through(path, "immutable=1", busy_timeout)
    except sqlite3.Error:
        # A writer that started during the immutable read may have changed pages under it; read
        # again with locks before calling the file damaged.
        if not _has_journal(path):
            raise
    return _identity_through(path, "mode=ro", busy_timeout)


def _identity_through(path: Path, query: str, busy_timeout: float) -> FileIdentity:
    with closing(_connect(path, query, busy_timeout)) as connection:
        identity = _read_identity(connection)
        for table in sorted(identity.tables):
            connection.execute(f"SELECT * FROM {_quoted(table)} LIMIT 1").fetchall()
    return identity


def _read_identity(connection: sqlite3.Connection) -> FileIdentity:
    (application_id,) = connection.execute("PRAGMA application_id").fetchone()
    (user_version,) = connection.execute("PRAGMA user_version").fetchone()
    tables = frozenset(
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\'"
        )
    )
    columns = frozenset(row[1] for row in connection.execute("PRAGMA table_info(messages)"))
    return FileIdentity(application_id, user_version, tables, columns)


def _outbox_version(
    identity: FileIdentity | None,
    path: Path,
    schema_version: int,
    expected_tables: frozenset[str],
    create: bool,
) -> int:
    """The schema version of the outbox ``identity`` describes, 0 for a file to create one in;
    NotAnOutbox for anything else. Pure: the same verdict before and under the write lock."""
    if identity is None or identity.blank:
        if create:
            return 0
        what = "an empty file" if identity is None else "an empty SQLite database"
        raise NotAnOutbox(f"{path} is {what}, not an ordered-sender outbox; {_HOW_TO_CREATE}")
    if identity.application_id == APPLICATION_ID and identity.user_version > 0:
        version = identity.user_version
    elif (
        identity.application_id == 0
        and identity.user_version == 1
        and identity.tables >= _FIRST_RELEASE_TABLES
        and identity.message_columns >= _FIRST_RELEASE_COLUMNS
    ):
        version = 1
    else:
        tables = ", ".join(sorted(identity.tables)[:6]) or "none"
        raise NotAnOutbox(
            f"{path} is not an ordered-sender outbox: it is the SQLite database of another "
            f"application (application_id {identity.application_id:#010x}, user_version "
            f"{identity.user_version}, tables: {tables}); check the path. It was not changed."
        )
    if version > schema_version:
        raise NotAnOutbox(
            f"{path} is an outbox of a newer ordered-sender (schema version {version}; this one "
            f"knows up to {schema_version}); upgrade ordered-sender to use it. It was not changed."
        )
    missing = expected_tables - identity.tables
    if version == schema_version and missing:
        raise NotAnOutbox(
            f"{path} is marked as an ordered-sender outbox but lacks its tables "
            f"{', '.join(sorted(missing))}; another program changed it; restore it from a backup"
        )
    return version


def _open_for_reading(
    path: Path, version: int, schema_version: int, busy_timeout: float
) -> sqlite3.Connection:
    if version < schema_version:
        raise StoreError(
            path,
            f"has schema version {version} and this ordered-sender reads {schema_version}; a "
            "read-only open cannot upgrade it: run `ordered-sender run` (or any sender) on it "
            "once, where it can be written",
        )
    # SQLite reads a WAL database through its -shm index and, read-only, can create that index
    # only where it may write. Where it may not (a read-only disk or folder) and no -wal is left,
    # the last writer closed cleanly, nobody can be writing, and the main file holds everything:
    # immutable=1 then reads it without the index (SQLite's wal.html, "Read-Only Databases").
    # Anywhere else mode=ro shares the index with writers, so their commits are seen.
    cannot_write_beside = not os.access(path.resolve().parent, os.W_OK)
    if cannot_write_beside and not _has_journal(path):
        return _connect(path, "immutable=1", busy_timeout)
    return _connect(path, "mode=ro", busy_timeout)


def _check_writable(path: Path) -> None:
    """StoreError before SQLite would fail with a vaguer "unable to open database file"."""
    real = path.resolve()
    # os.access is also False on a read-only file system, even for root.
    if not os.access(real, os.W_OK):
        raise StoreError(
            path,
            "is read-only (the file or its file system); `ordered-sender status` can still read "
            "it; to put or deliver, make it writable",
        )
    if not os.access(real.parent, os.W_OK):
        raise StoreError(
            path,
            f"its folder {real.parent} is not writable, and SQLite must create {real.name}-wal "
            "and -shm beside it; make the folder writable",
        )


def _bring_up_to_date(
    connection: sqlite3.Connection,
    path: Path,
    schema: str,
    schema_version: int,
    migrations: Mapping[int, str],
    expected_tables: frozenset[str],
) -> None:
    """Create the schema in a blank file, or migrate one version per transaction, and mark the
    file; each step re-reads the file under the write lock, so racing openers do each step once."""
    identity = _read_identity(connection)
    if identity.application_id == APPLICATION_ID and identity.user_version == schema_version:
        return  # the usual case: nothing to do, so no need to wait for the write lock
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            identity = _read_identity(connection)
            version = _outbox_version(identity, path, schema_version, expected_tables, True)
            if version == schema_version and identity.application_id == APPLICATION_ID:
                connection.execute("COMMIT")
                return
            if version == 0:
                script, target = schema, schema_version
            elif version == schema_version:
                script, target = "", version  # a first-release file at that version: mark it
            elif version in migrations:
                script, target = migrations[version], version + 1
            else:
                raise StoreError(
                    path,
                    f"has schema version {version}, which this ordered-sender cannot upgrade; "
                    "deliver its messages with the release that wrote it first",
                )
            for statement in _statements(script):
                connection.execute(statement)
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version = {int(target)}")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def _use_wal(connection: sqlite3.Connection, path: Path, synchronous: str) -> None:
    (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode != "wal":
        raise StoreError(
            path,
            f"SQLite cannot use write-ahead logging on its file system (journal mode stayed "
            f"{mode}); keep the outbox on a local disk",
        )
    connection.execute(f"PRAGMA synchronous = {synchronous}")


def open_reader(path: Path, busy_timeout: float = 30.0) -> sqlite3.Connection:
    """A second, read-only connection to an outbox that ``open_outbox`` opened for writing in
    this process: its reads see every committed write and never wait for a commit's fsync."""
    with translated_errors(path):
        return _connect(path, "mode=ro", busy_timeout)


def _connect(path: Path, query: str, busy_timeout: float) -> sqlite3.Connection:
    # A URI, so that SQLite never creates the file itself: only _created_new_file does, 0600.
    return sqlite3.connect(
        f"{path.absolute().as_uri()}?{query}",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=busy_timeout,
    )


def _has_journal(path: Path) -> bool:
    """Whether a -wal or -journal file lies beside the file (SQLite names them after the real
    file, symbolic links resolved)."""
    real = path.resolve()
    return any(
        os.path.lexists(real.with_name(real.name + suffix)) for suffix in ("-wal", "-journal")
    )


def _tables_made_by(schema: str) -> frozenset[str]:
    """The tables ``schema`` creates, found by running it on an empty in-memory database."""
    with closing(sqlite3.connect(":memory:")) as scratch:
        scratch.executescript(schema)
        return _read_identity(scratch).tables


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` one by one. sqlite3's ``executescript`` commits any open
    transaction first, which would split a migration from the version check before it."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        # A ';' inside a string, a comment or a trigger body does not end a statement.
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"the script ends inside a statement: {pending.strip()[:60]!r}")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

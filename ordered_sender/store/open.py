"""Which store an outbox argument names, and opening it: the one place that chooses.

An outbox is a path to an SQLite file, or a ``postgresql://`` (or ``postgres://``) URL of a
PostgreSQL database. ``outbox_target`` tells them apart; ``open_store`` opens the store;
``hold_for_delivery`` takes what a delivering sender must hold: the file lock of an SQLite outbox
(one sender per file), or for PostgreSQL the outbox's delivery lock in the server.

A URL may carry a password: ``DatabaseUrl`` keeps it for connecting and shows it nowhere, so logs
and messages name the database by ``redacted(url)``. psycopg is imported only when a URL is
opened, so SQLite users need not install it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ordered_sender.store import NewEntry, PendingLimits, Store, StoredMessage

DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")

_INSTALL_DRIVER = "pip install 'ordered-sender[postgres]'"


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A PostgreSQL outbox: its URL, shown without password."""

    url: str = field(repr=False)

    def __str__(self) -> str:
        return redacted(self.url)

    def __repr__(self) -> str:
        return f"DatabaseUrl({redacted(self.url)!r})"


OutboxTarget = Path | DatabaseUrl


class OutboxHold(Protocol):
    """What a delivering sender holds so that no other sender delivers the same lanes."""

    def problem(self) -> str | None:
        """None while the hold is good; else why delivery must stop."""
        ...

    def release(self) -> None: ...


def outbox_target(outbox: str | os.PathLike[str] | DatabaseUrl) -> OutboxTarget:
    """A PostgreSQL URL as DatabaseUrl, anything else as the path of an SQLite file."""
    if isinstance(outbox, DatabaseUrl):
        return outbox
    text = os.fspath(outbox)
    if text.startswith(DATABASE_URL_SCHEMES):
        return DatabaseUrl(text)
    return Path(text)


def open_store(
    target: OutboxTarget,
    *,
    synchronous: str = "FULL",
    create: bool = True,
    read_only: bool = False,
) -> Store:
    """The store of ``target``; ``create=False`` refuses (NotAnOutbox) to make one, and
    ``read_only`` opens it for reading alone. ``synchronous`` is SQLite's alone."""
    if isinstance(target, DatabaseUrl):
        _check_driver(target)
        from ordered_sender.store.postgres import PostgresStore

        return PostgresStore(target.url, create=create, read_only=read_only)
    from ordered_sender.store.sqlite import SqliteStore

    return SqliteStore(target, synchronous=synchronous, create=create, read_only=read_only)


def hold_for_delivery(target: OutboxTarget, *, create: bool) -> OutboxHold:
    """Take the delivery lock of ``target``: OutboxInUse while another sender delivers it."""
    if isinstance(target, DatabaseUrl):
        _check_driver(target)
        from ordered_sender.store.postgres_lock import PostgresDeliveryLock

        return PostgresDeliveryLock(target.url)
    from ordered_sender.store.lock import OutboxLock

    return OutboxLock(target, create=create)


def add_in_transaction(
    target: OutboxTarget,
    store: Store,
    connection: object,
    entries: Sequence[NewEntry],
    now: float,
    limits: PendingLimits | None,
) -> list[StoredMessage]:
    """Put ``entries`` into the store of ``target`` through the caller's open transaction on
    ``connection`` (the transactional outbox, PostgreSQL only); ValueError naming the argument
    and what was wrong otherwise."""
    if not isinstance(target, DatabaseUrl):
        raise ValueError(
            f"connection=: puts inside the caller's PostgreSQL transaction, and the outbox "
            f"{target} is an SQLite file; put without connection=, or use a postgresql:// outbox"
        )
    import psycopg

    from ordered_sender.store.postgres import PostgresStore

    if not isinstance(connection, psycopg.Connection):
        raise ValueError(
            f"connection={connection!r}: must be a psycopg 3 connection (psycopg.connect) to "
            f"the outbox's database, {target}"
        )
    assert isinstance(store, PostgresStore)
    return store.add_in_transaction(connection, entries, now, limits)


def redacted(url: str) -> str:
    """``url`` without its password (in the user part or as a ``password`` parameter)."""
    parts = urlsplit(url)
    user, at, hosts = parts.netloc.rpartition("@")
    netloc = f"{user.partition(':')[0]}{at}{hosts}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"], safe=",")
    shown = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    # urlunsplit drops an empty netloc's "//", which a URL of the local socket needs.
    return re.sub(r"^(postgres(?:ql)?):(?!//)", r"\1://", shown)


def _check_driver(target: DatabaseUrl) -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        from ordered_sender.errors import StoreError

        raise StoreError(
            target, f"a PostgreSQL outbox needs the psycopg driver: {_INSTALL_DRIVER}"
        ) from None

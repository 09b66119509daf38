"""Which store an outbox argument names, and opening it: the one place that chooses.

An outbox is a path to an SQLite file, or a ``postgresql://`` (or ``postgres://``) URL of a
PostgreSQL database. ``outbox_target`` tells them apart; ``open_store`` opens the store;
``hold_for_delivery`` takes what a delivering sender must hold: the file lock of an SQLite outbox
(one sender per file); a PostgreSQL outbox takes any number of senders, as its store leases each
lane to one of them at a time.

A URL may carry a password: ``DatabaseUrl`` keeps it for connecting and shows it nowhere, so logs
and messages name the database by ``redacted(url)``. psycopg is imported only when a URL is
opened, so SQLite users need not install it.
"""

from __future__ import annotations

import math
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


DEFAULT_SCHEMA = "ordered_sender"
DEFAULT_LEASE_SECONDS = 30.0
"""Far below IoT Events' 5 minutes of de-duplication, far above a request's 10 s timeout."""
LEASE_SECONDS_RANGE = (1.0, 240.0)
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A PostgreSQL outbox: the URL libpq connects with (shown nowhere with its password), the
    schema that holds the outbox, and how long a lane stays with a worker that stopped renewing
    its lease. ``parse`` reads the last two from the URL's ``schema`` and ``lease_seconds``
    parameters."""

    url: str = field(repr=False)
    schema: str = DEFAULT_SCHEMA
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    def __post_init__(self) -> None:
        if not _SCHEMA_NAME.fullmatch(self.schema):
            raise ValueError(
                f"outbox URL parameter schema={self.schema!r}: must be a lower-case name of "
                "letters, digits and _ (at most 63), not starting with a digit"
            )
        low, high = LEASE_SECONDS_RANGE
        if not (math.isfinite(self.lease_seconds) and low <= self.lease_seconds <= high):
            raise ValueError(
                f"outbox URL parameter lease_seconds={self.lease_seconds!r}: must be from {low:g} "
                f"to {high:g} seconds (far below IoT Events' 300 s of de-duplication, above "
                "1.5 times request_timeout)"
            )

    @classmethod
    def parse(cls, text: str) -> DatabaseUrl:
        """``text`` with its ``schema`` and ``lease_seconds`` parameters taken out (libpq would
        refuse them); the rest goes to libpq as it is."""
        parts = urlsplit(text)
        ours = {"schema": DEFAULT_SCHEMA, "lease_seconds": str(DEFAULT_LEASE_SECONDS)}
        kept = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in ours:
                ours[key] = value
            else:
                kept.append((key, value))
        try:
            lease_seconds = float(ours["lease_seconds"])
        except ValueError:
            raise ValueError(
                f"outbox URL parameter lease_seconds={ours['lease_seconds']!r}: not a number of "
                "seconds"
            ) from None
        url = urlunsplit(parts._replace(query=urlencode(kept, safe=",")))
        return cls(_keep_slashes(url), ours["schema"], lease_seconds)

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


class SharedDelivery:
    """A PostgreSQL outbox is delivered by any number of senders at once: each sends only the
    lanes it holds the lease of (postgres_leases), so there is nothing to hold for the whole."""

    def problem(self) -> str | None:
        return None

    def release(self) -> None:
        """Nothing to release: the store gives its leases back when it closes."""


def outbox_target(outbox: str | os.PathLike[str] | DatabaseUrl) -> OutboxTarget:
    """A PostgreSQL URL as DatabaseUrl, anything else as the path of an SQLite file."""
    if isinstance(outbox, DatabaseUrl):
        return outbox
    text = os.fspath(outbox)
    if text.startswith(DATABASE_URL_SCHEMES):
        return DatabaseUrl.parse(text)
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

        return PostgresStore(
            target.url,
            schema=target.schema,
            create=create,
            read_only=read_only,
            lease_seconds=target.lease_seconds,
        )
    from ordered_sender.store.sqlite import SqliteStore

    return SqliteStore(target, synchronous=synchronous, create=create, read_only=read_only)


def hold_for_delivery(
    target: OutboxTarget, *, create: bool, request_timeout: float | None = None
) -> OutboxHold:
    """What a sender holds to deliver ``target``: the file lock of an SQLite outbox (OutboxInUse
    while another sender delivers it); nothing for PostgreSQL, whose lanes are leased one by one,
    where InvalidConfig refuses a ``request_timeout`` its leases could not outlast."""
    if isinstance(target, DatabaseUrl):
        if request_timeout is not None and request_timeout * 1.5 >= target.lease_seconds:
            from ordered_sender.errors import InvalidConfig

            raise InvalidConfig(
                "request_timeout",
                request_timeout,
                f"must be under two thirds of the outbox's lease_seconds ({target.lease_seconds:g}"
                "): a head is sent only under a lease with two thirds of its time left, and its "
                "request must end before the lease can pass to another worker; raise "
                "lease_seconds in the outbox URL or lower request_timeout",
            )
        return SharedDelivery()
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
    return _keep_slashes(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def _keep_slashes(url: str) -> str:
    """urlunsplit drops an empty host's "//", which a URL of the local socket needs."""
    return re.sub(r"^(postgres(?:ql)?):(?!//)", r"\1://", url)


def _check_driver(target: DatabaseUrl) -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        from ordered_sender.errors import StoreError

        raise StoreError(
            target, f"a PostgreSQL outbox needs the psycopg driver: {_INSTALL_DRIVER}"
        ) from None

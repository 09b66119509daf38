"""PostgresDeliveryLock: one delivering sender per PostgreSQL outbox, held in the server.

Two senders delivering the same lanes would each send a lane's head. Until lanes are leased one
by one, a sender delivers a PostgreSQL outbox only while it holds the outbox's session advisory
lock, on a connection of its own kept for that alone. The server drops the lock when that
connection ends in any way (the process killed, the host lost, the network cut), so a dead sender
never blocks the next one; and a sender whose lock connection failed must stop at once, since
another may already deliver: ``problem`` says so at the next upkeep (about once a second).
Putting, reading and operating the outbox need no lock.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ordered_sender.errors import OutboxInUse, StoreError
from ordered_sender.store.open import redacted
from ordered_sender.store.postgres import DEFAULT_SCHEMA
from ordered_sender.store.postgres_errors import translated_errors

APPLICATION_NAME = "ordered-sender delivery lock"
"""How the lock's connection shows in pg_stat_activity."""
TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext('ordered_sender:deliver:' || %(schema)s))"
UNLOCK = "SELECT pg_advisory_unlock(hashtext('ordered_sender:deliver:' || %(schema)s))"


class PostgresDeliveryLock:
    """The delivery lock of the outbox in ``schema`` of the database at ``url``."""

    def __init__(self, url: str, *, schema: str = DEFAULT_SCHEMA) -> None:
        self._location = redacted(url)
        self._schema = schema
        self._released = False
        with translated_errors(self._location):
            self._connection: psycopg.Connection[Any] = psycopg.connect(
                url, autocommit=True, application_name=APPLICATION_NAME
            )
            row = self._connection.execute(TRY_LOCK, {"schema": schema}).fetchone()
        if row is None or not row[0]:
            self._connection.close()
            raise OutboxInUse(
                f"outbox {self._location} (schema {schema}) is being delivered by another "
                "sender; one sender delivers a PostgreSQL outbox at a time: stop it first, or "
                "only put into this outbox"
            )

    def problem(self) -> str | None:
        """None while the lock's connection answers; else why delivery must stop."""
        try:
            with translated_errors(self._location):
                self._connection.execute("SELECT 1")
        except StoreError as error:
            return (
                f"outbox {self._location}: the connection holding the delivery lock failed "
                f"({error.problem}), so another sender may deliver now; delivery stopped, start "
                "this sender again to go on"
            )
        return None

    def release(self) -> None:
        """Let another sender in; calling it again does nothing."""
        if self._released:
            return
        self._released = True
        try:
            self._connection.execute(UNLOCK, {"schema": self._schema})
        except psycopg.Error:
            pass  # closing the connection below drops the lock all the same
        finally:
            self._connection.close()

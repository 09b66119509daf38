"""Group commit: writes that wait at the same time share one transaction, so one fsync.

With ``synchronous=FULL`` each commit waits for the disk; most of a put's time is that wait. When
several threads write at once (producers putting, workers recording outcomes), the first becomes
the leader: it runs every write waiting at that moment in one transaction, each inside a SAVEPOINT
of its own (so one refused write, a reused id or a full outbox, is rolled back alone), commits
once, and hands the lead to the first write that arrived meanwhile. A write that says which
refusals it raises only before changing anything (a one-message put) needs no savepoint: a
refusal leaves nothing to undo. Should it raise anything else, the group is rolled back and run
again with a savepoint for every write, so a write may run twice and must do nothing but its
statements. Each caller returns only once the commit that holds its write is durable, and
writes run in arrival order, so commit order is still the order of every lane. Alone, a write
leads itself: one transaction, as without this. A write that is a single statement (a one-message
put, the deliveries of one request) runs alone without BEGIN and COMMIT: SQLite commits the
statement by itself, fsync included. Every statement lets go of the interpreter lock and must
take it back, behind whatever the other threads are doing meanwhile; a put of one statement
instead of three, or deliveries of one instead of four, is that many such waits fewer.

A new leader gathers before it commits. The writers of the group just committed are only now
waking up; a leader that committed at once would commit alone while they queue behind it, and
groups would alternate between one write and all the others (half the fsyncs wasted). So a leader
waits until as many writes are queued as the last group held (when it held at least
``GATHER_FROM``), at most as long as that group's commit took (never longer than
``MOST_GATHER_SECONDS``): one or two writers never wait, and a writer that stopped costs one
short wait, after which the expected size follows it down.

No threads of its own: callers lead in turn.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from ordered_sender.store.sqlite_errors import translate

T = TypeVar("T")

MOST_GATHER_SECONDS = 0.002
"""The longest a leader waits for the writes it expects before committing."""
GATHER_FROM = 3
"""A leader gathers only after a group of at least this many writes. Two writers taking turns
(a producer and a delivery worker, say) gain nothing from waiting for each other: a put would
wait for an outcome that is not coming, and the other way round."""


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False, slots=True)
class _Write(Generic[T]):
    work: Callable[[sqlite3.Connection], T]
    refusals: tuple[type[BaseException], ...]
    """What ``work`` raises only before it changed anything: in a group it needs no savepoint."""
    one_statement: bool
    """``work`` runs one statement: alone, it needs no transaction around it."""
    wake: threading.Lock = field(default_factory=_held_lock)
    """Held from the start; released once by another thread (to lead, or: finished). A lock
    costs less than an Event, and each write is woken at most once."""
    lead: bool = False
    finished: bool = False
    result: T | None = None
    error: BaseException | None = None


class GroupCommit:
    """Runs writes on one connection, grouping those that wait at the same time."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        using: Callable[[], AbstractContextManager[sqlite3.Connection]],
        path: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connection = connection
        self._clock = clock
        self._using = using
        self._path = path
        self._queue_lock = threading.Lock()
        self._arrived = threading.Condition(self._queue_lock)
        self._queue: list[_Write[Any]] = []
        self._leading = False
        self._gathering = False
        self._last_size = 1
        self._last_seconds = 0.0

    @property
    def waiting(self) -> int:
        """Writes queued for the next commit (the one being committed is not counted)."""
        with self._queue_lock:
            return len(self._queue)

    def run(
        self,
        work: Callable[[sqlite3.Connection], T],
        *,
        refusals: tuple[type[BaseException], ...] = (),
        one_statement: bool = False,
    ) -> T:
        """Run ``work`` in a transaction and return its result once that is committed; raise
        what it raised (only its own changes are rolled back), or the commit's error.

        ``refusals``: exceptions ``work`` raises only before it changed anything (its own checks,
        or a statement SQLite undid whole), so that in a group it needs no savepoint. Any
        ``work`` may run twice (its group is run again, each write in a savepoint, when a write
        without one raises what it did not declare): it must do nothing but its statements.

        ``one_statement``: ``work`` runs a single statement (triggers included, atomic as a
        whole), so alone it runs outside any transaction and SQLite commits it; in a group it
        joins the group's transaction as any write.
        """
        write: _Write[T] = _Write(work, refusals, one_statement)
        with self._queue_lock:
            self._queue.append(write)
            if not self._leading:
                self._leading = write.lead = True
            elif self._gathering and len(self._queue) >= self._last_size:
                self._arrived.notify()  # the leader has what it waits for
        while not write.finished:
            if write.lead:
                self._lead(write)
            else:
                write.wake.acquire()
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[return-value]

    def _lead(self, leader: _Write[Any]) -> None:
        with self._queue_lock:
            self._gather()
            group, self._queue = self._queue, []
        started = self._clock()
        try:
            self._commit(group)
        except BaseException as error:
            # Whatever broke the transaction, no write of it may look committed.
            for write in group:
                if write.error is None:
                    write.error, write.result = error, None
        finally:
            self._last_seconds = self._clock() - started
            self._last_size = len(group)
            with self._queue_lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.release()
                else:
                    self._leading = False
            for write in group:
                write.lead = False
                write.finished = True
                if write is not leader:  # the leader is not waiting
                    write.wake.release()

    def _gather(self) -> None:
        """Wait (holding the queue lock's condition) for the writes the last group suggests."""
        expected = self._last_size
        if expected < GATHER_FROM or len(self._queue) >= expected:
            return
        deadline = self._clock() + min(self._last_seconds, MOST_GATHER_SECONDS)
        self._gathering = True
        try:
            while len(self._queue) < expected and (remaining := deadline - self._clock()) > 0:
                # Woken once the queue holds ``expected`` writes, or at the deadline.
                self._arrived.wait(remaining)
        finally:
            self._gathering = False

    def _commit(self, group: list[_Write[Any]]) -> None:
        with self._using() as connection:
            if len(group) == 1 and group[0].one_statement:
                self._run_statement(connection, group[0])
                return
            try:
                connection.execute("BEGIN IMMEDIATE")
                if len(group) == 1:
                    self._run_alone(connection, group[0])
                elif not self._run_group(connection, group, careful=False):
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    for write in group:
                        write.error = write.result = None
                    connection.execute("BEGIN IMMEDIATE")
                    self._run_group(connection, group, careful=True)
                if connection.in_transaction:
                    connection.execute("COMMIT")
            except sqlite3.Error as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                for write in group:
                    if write.error is None:
                        write.error, write.result = _handed_over(error, self._path), None

    def _run_statement(self, connection: sqlite3.Connection, write: _Write[Any]) -> None:
        """A single statement alone, in SQLite's own transaction: it commits whole (its fsync
        done) or not at all."""
        try:
            write.result = write.work(connection)
        except BaseException as error:  # handed to its own caller, whatever it is
            write.error = _handed_over(error, self._path)

    def _run_alone(self, connection: sqlite3.Connection, write: _Write[Any]) -> None:
        """A write with the transaction to itself needs no savepoint: if it raises, all goes."""
        try:
            write.result = write.work(connection)
        except BaseException as error:  # handed to its own caller, whatever it is
            connection.execute("ROLLBACK")
            write.error = _handed_over(error, self._path)

    def _run_group(
        self, connection: sqlite3.Connection, group: list[_Write[Any]], *, careful: bool
    ) -> bool:
        """Run each write of the group, in order: in a savepoint of its own when ``careful`` or
        when it declared no refusals. False, at once, when a write without a savepoint raised
        what it did not declare: some of its changes may be in the transaction."""
        for index, write in enumerate(group):
            if careful or not write.refusals:
                self._run_one(connection, f"write_{index}", write)
                continue
            try:
                write.result = write.work(connection)
            except write.refusals as refusal:
                write.error = refusal
            except BaseException:  # run again, carefully: the same error lands on its own write
                return False
        return True

    def _run_one(self, connection: sqlite3.Connection, savepoint: str, write: _Write[Any]) -> None:
        """One write inside its own savepoint: if it raises, only its changes are undone."""
        connection.execute(f"SAVEPOINT {savepoint}")
        try:
            write.result = write.work(connection)
        except BaseException as error:  # handed to its own caller, whatever it is
            connection.execute(f"ROLLBACK TO {savepoint}")
            write.error = _handed_over(error, self._path)
        connection.execute(f"RELEASE {savepoint}")


def _handed_over(error: BaseException, path: Path) -> BaseException:
    """What a write's caller gets for what its work raised: an sqlite3 error as ours (its cause
    kept for tracebacks), anything else as it is."""
    if not isinstance(error, sqlite3.Error):
        return error
    translated = translate(error, path)
    translated.__cause__ = error
    return translated

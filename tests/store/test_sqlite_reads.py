"""Reads of a SQLite outbox go through a read-only connection of their own: they see every
committed write and never wait behind a commit that holds the writing connection."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ordered_sender.message import build_message
from ordered_sender.store import NewEntry
from ordered_sender.store.sqlite import SqliteStore


def entry(lane: str, message_id: str) -> NewEntry:
    message = build_message(
        lane, b'{"a":1}', message_id=message_id, timestamp_ms=None, max_payload_bytes=1000
    )
    return NewEntry(message, lane)


def test_reads_answer_while_a_write_holds_the_writing_connection(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "outbox.db")
    try:
        store.add([entry("L1", "m1")], now=1.0)
        inside, release = threading.Event(), threading.Event()

        def slow_write(connection: sqlite3.Connection) -> None:
            connection.execute("UPDATE lanes SET retry_wait = 1 WHERE lane = 'L1'")
            inside.set()
            assert release.wait(timeout=10)

        writer = threading.Thread(target=store._writes.run, args=(slow_write,))
        writer.start()
        assert inside.wait(timeout=10)
        answers: dict[str, object] = {}

        def read() -> None:
            answers["heads"] = [h.message.message_id for h in store.ready_heads(2.0, (), 10)]
            answers["status"] = store.status("m1")
            answers["counts"] = store.counts().pending

        reader = threading.Thread(target=read)
        reader.start()
        reader.join(timeout=10)
        read_while_writing = not reader.is_alive()
        release.set()
        writer.join(timeout=10)
        reader.join(timeout=10)
        assert read_while_writing, "a read waited for the write holding the connection"
        assert answers["heads"] == ["m1"]  # the committed state; the open write is not seen
        assert answers["counts"] == 1
    finally:
        store.close()


def test_a_read_sees_a_write_as_soon_as_it_is_committed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "outbox.db")
    try:
        for n in range(50):
            store.add([entry(f"L{n % 3}", f"m{n}")], now=float(n))
            status = store.status(f"m{n}")
            assert status is not None and status.message_id == f"m{n}"
            assert store.counts().pending == n + 1
        assert len(store.ready_heads(time.time(), (), 10)) == 3
    finally:
        store.close()

"""Forgetting delivered ids in a SQLite outbox goes in short transactions: a daemon delivering
thousands of messages a second forgets hundreds of thousands once a minute, and one long delete
would hold every put and outcome behind it for seconds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ordered_sender.message import build_message
from ordered_sender.store import Delivered, NewEntry
from ordered_sender.store.sqlite import SqliteStore


def entry(lane: str, message_id: str) -> NewEntry:
    message = build_message(
        lane, b'{"a":1}', message_id=message_id, timestamp_ms=None, max_payload_bytes=1000
    )
    return NewEntry(message, lane)


def test_delivered_ids_are_forgotten_in_transactions_of_at_most_a_chunk(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "outbox.db")
    try:
        old = [entry(f"L{n}", f"old{n}") for n in range(2_300)]
        added = store.add(old, now=1.0)
        store.apply([Delivered(stored.seq) for stored in added], now=10.0)
        recent = store.add([entry("R", "recent")], now=11.0)
        store.apply([Delivered(recent[0].seq)], now=20.0)
        pending = store.add([entry("P", "pending")], now=21.0)
        transactions: list[int] = []
        run = store._writes.run

        def counted(work: Callable[[Any], Any]) -> Any:
            result = run(work)
            transactions.append(result)
            return result

        store._writes.run = counted  # type: ignore[method-assign,assignment]
        assert store.forget_delivered(before=15.0, chunk=500) == 2_300
        assert transactions == [500, 500, 500, 500, 300]
        assert store.status("old0") is None and store.status("old2299") is None
        assert store.status("recent") is not None
        assert [h.seq for h in store.ready_heads(30.0, (), 10)] == [pending[0].seq]
        assert store.forget_delivered(before=15.0, chunk=500) == 0
    finally:
        store.close()

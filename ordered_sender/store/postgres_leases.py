"""Lane leases: how several workers deliver one PostgreSQL outbox, one lane each at a time.

A worker sends a lane's head only under a lease on that lane (``lane_leases``): taken when the
lane is due and nobody holds a live lease on it, renewed while the head is in flight, and given
back in the very transaction that records the head's outcome, so the lane's next head may go to
any worker, and only after this one's outcome is stored. Each taking draws a new token; the head
is handed out with it, and an outcome is recorded only while the lease still carries that token
(``fence``). A worker that dies, hangs or loses the server stops renewing; after ``seconds``
(the server's clock) another worker takes the lane, and whatever the first one records later is
refused: it cannot record over its successor.

The guarantee: at most one distinct message of a lane in flight at a time, as long as a request
ends within two thirds of ``seconds`` (a head is handed out only under a lease with at least that
much left; requests time out after ``request_timeout``). After a takeover the head may be sent
again with the same messageId, which IoT Events ignores within 5 minutes: so ``seconds`` must be
far shorter than that.

Workers share the lanes: each says it is live (``workers``, renewed with its leases) and takes
no more than its fair share of the due lanes, counting those it holds: ceil(due lanes / live
workers), rounded up to whole requests of 10 heads so that its requests stay full (30 lanes and
3 workers: 10 each; 30 and 4: 10, 10, 10 and none, not 8 each in requests of 8, which measured
slower). Without a share, a worker giving a lane back with its outcome and planning again at
once would take it back, and with few lanes one worker would do nearly all the work. The share
only limits what a worker takes; it never moves a lease, so the guarantee is the same.

This module holds the leases' state in memory (the heads handed out, and when leases were last
renewed); the store runs it under its own lock and connection. It opens nothing itself.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

import psycopg

from ordered_sender.events import log
from ordered_sender.limits import MAX_MESSAGES_PER_REQUEST
from ordered_sender.store import Decision, StoredMessage
from ordered_sender.store import postgres_schema as sql
from ordered_sender.store.open import DEFAULT_LEASE_SECONDS
from ordered_sender.store.rows import stored_message

Connection = psycopg.Connection[tuple[Any, ...]]


class Leases:
    """One worker's leases on the lanes of one outbox schema."""

    def __init__(
        self,
        statements: Any,
        seconds: float = DEFAULT_LEASE_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` (monotonic seconds) times renewals; the leases' own times are the
        server's."""
        self.seconds = seconds
        self._clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        """Who holds a lease, as ``lane_leases.owner`` shows it: host, process, this store."""
        self._statements = statements
        self._handed: dict[int, tuple[str, int]] = {}
        """Heads handed out and not yet recorded: seq -> (lane, token of the lease)."""
        self._renewed_at = 0.0

    def renew_if_due(self, connection: Connection) -> None:
        """Renew every lease this worker holds once a third of their time passed, so that each
        has at least two thirds left whenever a head is handed out, and say this worker is live
        (``workers``; one round trip, every few seconds, held leases or not)."""
        if self._clock() - self._renewed_at < self.seconds / 3:
            return
        started = self._clock()
        params = {"owner": self.owner, "seconds": self.seconds}
        with connection.pipeline():  # one round trip
            connection.execute(self._statements(sql.SEEN_WORKER), params)
            rows = connection.execute(self._statements(sql.RENEW_LEASES), params).fetchall()
        self._renewed_at = started
        held = {(lane, token) for lane, token in rows}
        for seq, handed in list(self._handed.items()):
            if handed not in held:
                # Taken over (this worker stalled past its lease): its outcome will be refused.
                log.warning("lease.lost", lane=handed[0], seq=seq, owner=self.owner)

    def take_heads(
        self, connection: Connection, now: float, exclude_lanes: Collection[str], limit: int
    ) -> list[StoredMessage]:
        """Lease due lanes nobody holds, up to this worker's fair share of the due lanes
        (ceil(due lanes / live workers) in whole requests, counting those it holds), then hand
        out the due heads of this worker's lanes."""
        self.renew_if_due(connection)
        params = {
            "owner": self.owner,
            "seconds": self.seconds,
            "now": now,
            "exclude": list(exclude_lanes),
            "limit": limit,
            "request": MAX_MESSAGES_PER_REQUEST,
        }
        # Leases taken now have their whole time left, more than renewed ones. One round trip.
        with connection.pipeline():
            connection.execute(self._statements(sql.ACQUIRE_LEASES), params)
            rows = connection.execute(self._statements(sql.LEASED_HEADS), params).fetchall()
        heads = []
        for row in rows:
            head = stored_message(row[:-1])
            self._handed[head.seq] = (head.lane, row[-1])
            heads.append(head)
        return heads

    def next_attempt_at(self, connection: Connection, exclude_lanes: Collection[str]) -> Any:
        self.renew_if_due(connection)
        row = connection.execute(
            self._statements(sql.NEXT_ATTEMPT_AT_FOR),
            {"owner": self.owner, "exclude": list(exclude_lanes)},
        ).fetchone()
        return None if row is None else row[0]

    def fence(self, connection: Connection, decisions: Sequence[Decision]) -> list[Decision]:
        """The decisions this worker may still record (the caller's transaction holds the lanes'
        rows), with their leases locked and then given back; the others are logged and dropped.

        A head handed out under a lease may be recorded only while the lease is this worker's
        with the same token. A decision on a head never handed out here (a tool's own call) may
        be recorded unless another worker holds a live lease on its lane."""
        rows = connection.execute(
            self._statements(sql.LOCK_LEASES_OF), {"seqs": [d.seq for d in decisions]}
        ).fetchall()
        refused: set[int] = set()
        lanes: set[str] = set()
        for seq, lane, owner, token, expired in rows:
            handed = self._handed.get(seq)
            if handed is not None:
                allowed = owner == self.owner and token == handed[1]
            else:
                allowed = owner is None or owner == self.owner or bool(expired)
            if allowed:
                lanes.add(lane)
            else:
                refused.add(seq)
                log.warning("lease.outcome_refused", lane=lane, seq=seq, owner=self.owner)
        connection.execute(
            self._statements(sql.RELEASE_LEASES), {"owner": self.owner, "lanes": sorted(lanes)}
        )
        return [d for d in decisions if d.seq not in refused]

    def recorded(self, decisions: Sequence[Decision]) -> None:
        """The transaction of ``fence`` committed: those heads are no longer in flight."""
        for decision in decisions:
            self._handed.pop(decision.seq, None)

    def release_all(self, connection: Connection) -> None:
        """Give every lease back (closing), so another worker need not wait for them to lapse,
        and count this worker no longer among the live ones."""
        with connection.pipeline(), connection.transaction():
            connection.execute(self._statements(sql.RELEASE_ALL_LEASES), {"owner": self.owner})
            connection.execute(self._statements(sql.GONE_WORKER), {"owner": self.owner})
        self._handed.clear()

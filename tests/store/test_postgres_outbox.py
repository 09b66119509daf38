"""A PostgreSQL outbox chosen by its URL: Outbox and OrderedSender deliver through it end to end
(real boto3 over HTTP to the emulator), the transactional outbox, the delivery lock, and the
URL's password kept out of logs and messages."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import tenacity
from structlog.testing import capture_logs

from ordered_sender import InvalidConfig, NotAnOutbox, OrderedSender, Outbox, SenderConfig
from ordered_sender.emulator import Emulator, Faults
from ordered_sender.store.open import DatabaseUrl

psycopg = pytest.importorskip("psycopg", reason="pip install 'ordered-sender[postgres]'")

FAST_RETRIES = SenderConfig(retry_wait=tenacity.wait_fixed(0.002), idle_poll_seconds=0.05)
WAIT_SECONDS = 30.0


def lanes_as_processed(emu: Emulator) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = defaultdict(list)
    for processed in emu.processed():
        seen[processed.input_name].append(json.loads(processed.payload)["n"])
    return dict(seen)


def with_password(url: str) -> str:
    # The suite's server trusts local connections, so any password is let in.
    return url.replace("postgres@", "postgres:s3cret-pw@")


def test_an_outbox_url_is_put_into_from_one_side_and_delivered_in_order_from_another(
    postgres_url: str, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for lane in range(4):
        emulator.create_input(f"Input{lane}")
    emulator.set_faults(Faults(request_error_rate=0.2, entry_error_rate=0.1))
    with Outbox(postgres_url, FAST_RETRIES) as producer:
        for n in range(25):
            producer.put_many([(f"Input{lane}", {"n": n}) for lane in range(4)])
    with OrderedSender(
        postgres_url, client=emulator.client("iotevents-data"), config=FAST_RETRIES
    ) as sender:
        assert isinstance(sender.path, DatabaseUrl)
        assert sender.flush(timeout=WAIT_SECONDS)
        assert sender.counts().pending == 0
    assert lanes_as_processed(emulator) == {f"Input{lane}": list(range(25)) for lane in range(4)}
    assert emulator.stats().request_errors_injected > 0
    assert list(tmp_path.iterdir()) == []  # no SQLite file was made of the URL


def test_a_running_sender_notices_another_process_s_puts_without_polling(
    postgres_url: str, emulator: Emulator
) -> None:
    emulator.create_input("A")
    # A poll of an hour: only the server's notification can wake the sender in time.
    config = SenderConfig(idle_poll_seconds=3600)
    with OrderedSender(
        postgres_url, client=emulator.client("iotevents-data"), config=config
    ) as sender:
        assert sender.flush(timeout=WAIT_SECONDS)
        with Outbox(postgres_url, config) as producer:
            receipt = producer.put("A", {"n": 1})
        sender.outbox.wait_delivered(receipt.message_id, timeout=WAIT_SECONDS)
    assert lanes_as_processed(emulator) == {"A": [1]}


def test_a_rolled_back_business_transaction_leaves_no_message_and_a_committed_one_delivers(
    postgres_url: str, emulator: Emulator
) -> None:
    emulator.create_input("Orders")
    with psycopg.connect(postgres_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    with (
        OrderedSender(
            postgres_url, client=emulator.client("iotevents-data"), config=FAST_RETRIES
        ) as sender,
        psycopg.connect(postgres_url) as business,
    ):
        business.execute("INSERT INTO orders VALUES (1)")
        sender.put_many([("Orders", {"n": 1}, "order-1")], connection=business)
        business.rollback()
        assert sender.flush(timeout=WAIT_SECONDS)
        assert sender.outbox.store.status("order-1") is None
        assert sender.counts().pending == 0

        with business.transaction():
            business.execute("INSERT INTO orders VALUES (2)")
            sender.outbox.put_many([("Orders", {"n": 2}, "order-2")], connection=business)
            # Not committed yet: no worker can see it.
            assert sender.outbox.store.status("order-2") is None
        sender.outbox.wait_delivered("order-2", timeout=WAIT_SECONDS)
        orders = business.execute("SELECT id FROM orders").fetchall()
    assert orders == [(2,)]
    assert lanes_as_processed(emulator) == {"Orders": [2]}


def test_a_put_that_fails_inside_a_business_transaction_leaves_it_usable(
    postgres_url: str,
) -> None:
    with Outbox(postgres_url) as outbox, psycopg.connect(postgres_url) as business:
        outbox.put("A", {"n": 0}, message_id="taken")
        business.execute("CREATE TABLE orders (id int)")
        business.execute("INSERT INTO orders VALUES (1)")
        with pytest.raises(ValueError, match="message_id='taken'"):
            outbox.put_many(
                [("A", {"n": 1}, "fresh"), ("A", {"n": 2}, "taken")], connection=business
            )
        business.execute("INSERT INTO orders VALUES (2)")
        business.commit()
        assert business.execute("SELECT count(*) FROM orders").fetchone() == (2,)
        assert outbox.store.status("fresh") is None


def test_connection_is_refused_where_it_cannot_hold_the_put(
    postgres_url: str, tmp_path: Path
) -> None:
    with (
        Outbox(tmp_path / "outbox.db") as sqlite_outbox,
        pytest.raises(ValueError, match=r"connection=: .* is an SQLite file"),
    ):
        sqlite_outbox.put_many([("A", {})], connection=object())
    with Outbox(postgres_url) as outbox:
        with pytest.raises(ValueError, match="must be a psycopg 3 connection"):
            outbox.put_many([("A", {})], connection="not a connection")
        with (
            psycopg.connect(postgres_url, autocommit=True) as autocommitting,
            pytest.raises(ValueError, match="must be in a transaction"),
        ):
            outbox.put_many([("A", {})], connection=autocommitting)
        assert outbox.counts().pending == 0


def test_two_senders_deliver_one_postgresql_outbox_each_lane_in_order(
    postgres_url: str, emulator: Emulator
) -> None:
    for lane in range(5):
        emulator.create_input(f"Input{lane}")
    client = emulator.client("iotevents-data")
    first = OrderedSender(postgres_url, client=client, config=FAST_RETRIES, autostart=False)
    second = OrderedSender(postgres_url, client=client, config=FAST_RETRIES, autostart=False)
    try:
        for n in range(4):
            first.put_many([(f"Input{lane}", {"n": n}) for lane in range(5)])
        # The second leases two lanes (as its dispatcher would, before sending their heads):
        # the first delivers every other lane to the end, and never those two.
        leased = second.store.ready_heads(second.clock(), frozenset(), 2)
        assert [head.lane for head in leased] == ["Input0", "Input1"]
        first.deliver_due()
        assert set(lanes_as_processed(emulator)) == {"Input2", "Input3", "Input4"}
        second.deliver_due()
        assert (first.stats().delivered, second.stats().delivered) == (12, 8)
    finally:
        first.close()
        second.close()
    assert lanes_as_processed(emulator) == {f"Input{lane}": [0, 1, 2, 3] for lane in range(5)}


def test_a_sender_on_a_postgresql_outbox_leaves_no_lease_behind_when_it_closes(
    postgres_url: str, emulator: Emulator
) -> None:
    emulator.create_input("A")
    emulator.set_faults(Faults(request_error_rate=1.0))
    sender = OrderedSender(
        postgres_url, client=emulator.client("iotevents-data"), config=FAST_RETRIES
    )
    sender.put("A", {"n": 1})
    deadline = time.monotonic() + WAIT_SECONDS
    while not emulator.requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    sender.close()
    with psycopg.connect(postgres_url) as connection:
        leases = connection.execute("SELECT count(*) FROM ordered_sender.lane_leases").fetchone()
    assert emulator.requests()
    assert leases == (0,)


def test_the_url_s_password_appears_in_no_log_and_no_message(
    postgres_url: str, emulator: Emulator
) -> None:
    url = with_password(postgres_url)
    emulator.create_input("A")
    with capture_logs() as logs:
        with OrderedSender(url, client=emulator.client("iotevents-data")) as sender:
            sender.put("A", {"n": 1}).result(timeout=WAIT_SECONDS)
            shown = [str(sender.path), repr(sender.path)]
        with pytest.raises(NotAnOutbox) as refused:
            Outbox(url + "?schema=no_outbox_here", create=False)
    texts: list[Any] = [*shown, str(refused.value), *logs]
    assert any("postgresql://postgres@127.0.0.1" in str(text) for text in texts)
    assert not [text for text in texts if "s3cret-pw" in str(text)]


def test_a_request_timeout_the_leases_could_not_outlast_is_refused_naming_both(
    postgres_url: str, emulator: Emulator
) -> None:
    short = postgres_url + "?lease_seconds=12"
    with pytest.raises(InvalidConfig, match=r"request_timeout=10\.0.*lease_seconds \(12\)"):
        OrderedSender(short, client=emulator.client("iotevents-data"), autostart=False)
    quick = SenderConfig(request_timeout=7.0)
    OrderedSender(short, client=emulator.client("iotevents-data"), config=quick).close()
    with Outbox(short) as producer:  # putting needs no lease
        producer.put("A", {"n": 1})


def test_a_receipt_of_a_put_in_the_caller_s_transaction_waits_for_its_commit(
    postgres_url: str, emulator: Emulator
) -> None:
    emulator.create_input("Orders")
    with (
        OrderedSender(
            postgres_url, client=emulator.client("iotevents-data"), config=FAST_RETRIES
        ) as sender,
        psycopg.connect(postgres_url) as business,
    ):
        with business.transaction():
            (receipt,) = sender.put_many([("Orders", {"n": 1}, "order-1")], connection=business)
            # Not committed: the message does not exist for anyone else yet.
            assert not receipt.delivered()
            with pytest.raises(TimeoutError, match=r"order-1 did not appear .* has not committed"):
                receipt.result(timeout=0.2)
        receipt.result(timeout=WAIT_SECONDS)  # committed: it appears, then is delivered
        assert receipt.delivered()
        assert sender.outbox.store.status("order-1") is not None
    assert lanes_as_processed(emulator) == {"Orders": [1]}


def test_a_receipt_of_a_rolled_back_put_never_says_delivered_and_its_wait_says_why(
    postgres_url: str, emulator: Emulator
) -> None:
    emulator.create_input("Orders")
    with (
        OrderedSender(
            postgres_url, client=emulator.client("iotevents-data"), config=FAST_RETRIES
        ) as sender,
        psycopg.connect(postgres_url) as business,
    ):
        (receipt,) = sender.put_many([("Orders", {"n": 1}, "order-1")], connection=business)
        business.rollback()
        assert sender.flush(timeout=WAIT_SECONDS)
        assert not receipt.delivered()
        with pytest.raises(
            TimeoutError, match=r"order-1 did not appear .*: the transaction .* rolled back"
        ):
            receipt.result(timeout=0.2)
    assert emulator.processed() == []

"""Opening outbox files, on real files, real bytes and real mounts.

Refused files are compared byte for byte (and by mtime and mode) before and after, with no -wal,
-shm or -journal left beside them. The full disk and the read-only disk are real tmpfs mounts
(these tests run as root; elsewhere they are skipped with the reason).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing
from pathlib import Path

import pytest

from ordered_sender.errors import NotAnOutbox, StoreError
from ordered_sender.message import Message
from ordered_sender.store import Delivered, NewEntry, sqlite_schema
from ordered_sender.store.sqlite import SqliteStore
from ordered_sender.store.sqlite_errors import translated_errors
from ordered_sender.store.sqlite_file import APPLICATION_ID, open_outbox

# The outbox format of the first release, as its sqlite.py created it: no application_id, and
# user_version 1 set after the tables. Kept here as a fixture of the old format.
FIRST_RELEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    lane TEXT NOT NULL,
    input_name TEXT NOT NULL,
    payload BLOB NOT NULL,
    timestamp_ms INTEGER,
    enqueued_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    first_attempt_at REAL,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    solo INTEGER NOT NULL DEFAULT 0,
    last_error_code TEXT,
    last_error_text TEXT,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS messages_pending_by_lane
    ON messages (lane, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS messages_delivered_at
    ON messages (delivered_at) WHERE state = 'delivered';
CREATE TABLE IF NOT EXISTS lanes (
    lane TEXT PRIMARY KEY,
    head_seq INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    paused_at REAL,
    pause_code TEXT,
    pause_text TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lanes_ready
    ON lanes (next_attempt_at, head_seq) WHERE paused_at IS NULL;
"""

# A small schema history of our own, so these tests pin the mechanics, not today's tables.
TO_VERSION_2 = """
ALTER TABLE messages ADD COLUMN retry_wait REAL NOT NULL DEFAULT 0;
CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL DEFAULT 'a;b');
CREATE TRIGGER noted AFTER INSERT ON lanes BEGIN INSERT INTO notes (text) VALUES ('x;y'); END;
"""
TO_VERSION_3 = "CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY);"
SCHEMA_2 = FIRST_RELEASE_SCHEMA + TO_VERSION_2
SCHEMA_3 = SCHEMA_2 + TO_VERSION_3
MIGRATIONS = {1: TO_VERSION_2, 2: TO_VERSION_3}

INSERT = (
    "INSERT INTO messages (message_id, lane, input_name, payload, enqueued_at) "
    "VALUES (?, 'lane', 'input', ?, 0)"
)

TmpfsMount = Callable[[Path, str], AbstractContextManager[Path]]
"""The ``tmpfs`` fixture of conftest.py."""


def open_2(path: Path, **options: object) -> sqlite3.Connection:
    arguments: dict[str, object] = {"create": True, **options}
    return open_outbox(
        path,
        schema=SCHEMA_2,
        schema_version=2,
        migrations=MIGRATIONS,
        **arguments,  # type: ignore[arg-type]
    )


def make_first_release_outbox(path: Path, messages: int = 3) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.executescript(FIRST_RELEASE_SCHEMA)
        connection.execute("PRAGMA user_version = 1")
        for number in range(messages):
            connection.execute(INSERT, (f"m{number}", b"payload"))


def pragma(connection: sqlite3.Connection, name: str) -> object:
    return connection.execute(f"PRAGMA {name}").fetchone()[0]


def tables(connection: sqlite3.Connection) -> set[str]:
    rows = connection.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
    return {name for (name,) in rows if not name.startswith("sqlite_")}


def beside(path: Path) -> list[str]:
    """The SQLite side files that exist next to ``path``."""
    return [s for s in ("-wal", "-shm", "-journal") if Path(f"{path}{s}").exists()]


def fingerprint(path: Path) -> tuple[bytes, int, int, list[str]]:
    status = path.stat()
    return path.read_bytes(), status.st_mtime_ns, status.st_mode, beside(path)


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


# --- creating and marking -------------------------------------------------------------------


def test_a_new_outbox_carries_our_application_id_and_schema_version_in_wal_mode(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new.db"
    with closing(open_2(path, synchronous="NORMAL")) as connection:
        assert pragma(connection, "application_id") == APPLICATION_ID
        assert pragma(connection, "user_version") == 2
        assert pragma(connection, "journal_mode") == "wal"
        assert pragma(connection, "synchronous") == 1  # NORMAL
        assert tables(connection) == {"messages", "lanes", "notes"}
        connection.execute(INSERT, ("m0", b"x"))
    with closing(open_2(path, create=False)) as again:
        assert pragma(again, "synchronous") == 2  # FULL, the default
        assert again.execute("SELECT message_id FROM messages").fetchall() == [("m0",)]


def test_an_empty_file_becomes_an_outbox_only_when_creating(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(NotAnOutbox, match=r"empty\.db is an empty file.*send"):
        open_2(path, create=False)
    assert path.read_bytes() == b""
    with closing(open_2(path)) as connection:
        assert pragma(connection, "application_id") == APPLICATION_ID


def test_a_missing_outbox_is_refused_and_not_created_without_create(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    for read_only in (False, True):
        with pytest.raises(NotAnOutbox, match=r"outbox .*typo\.db does not exist.*send"):
            open_2(path, create=False, read_only=read_only)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no-such-folder does not exist"):
        open_2(tmp_path / "no-such-folder" / "outbox.db")


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o277])
def test_new_outbox_and_its_wal_and_shm_are_readable_by_their_owner_only(
    tmp_path: Path, umask: int
) -> None:
    path = tmp_path / "private.db"
    previous = os.umask(umask)
    try:
        connection = open_2(path)
    finally:
        os.umask(previous)
    with closing(connection):
        connection.execute(INSERT, ("m0", b"secret"))
        modes = {s: Path(f"{path}{s}").stat().st_mode & 0o777 for s in ("", "-wal", "-shm")}
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_an_existing_outbox_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    open_2(path).close()
    path.chmod(0o640)
    open_2(path, create=False).close()
    assert path.stat().st_mode & 0o777 == 0o640


def test_an_outbox_another_connection_is_writing_opens_and_shows_its_commits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "busy.db"
    with closing(open_2(path)) as writer:
        writer.execute(INSERT, ("m0", b"x"))  # only in the -wal while the writer is open
        writer.execute("BEGIN IMMEDIATE")  # and it holds the write lock
        writer.execute(INSERT, ("m1", b"uncommitted"))
        with closing(open_2(path, create=False, read_only=True)) as reader:
            assert reader.execute("SELECT message_id FROM messages").fetchall() == [("m0",)]
        with closing(open_2(path, create=False, busy_timeout=0)) as second:
            assert second.execute("SELECT count(*) FROM messages").fetchone() == (1,)
        writer.execute("COMMIT")


# --- refusing what is not an outbox, without touching it ------------------------------------


def random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def text_file(path: Path) -> None:
    path.write_text("lane,input,payload\nmotor,temp,{}\n")


def other_application(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE notes (text)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")


def other_application_in_wal_mode(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA user_version = 7")
        connection.execute("CREATE TABLE messages (id, body)")


def other_application_id(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("PRAGMA application_id = 1196444487")  # GeoPackage
        connection.execute("CREATE TABLE gpkg_contents (table_name)")


def first_release_tables_missing(path: Path) -> None:
    make_first_release_outbox(path)
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("DROP TABLE lanes")


def newer_outbox(path: Path) -> None:
    open_outbox(path, schema=SCHEMA_3, schema_version=3, migrations=MIGRATIONS, create=True).close()


def marked_outbox_without_its_tables(path: Path) -> None:
    open_2(path).close()
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("DROP TABLE notes")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (random_bytes, "is not an SQLite database"),
        (text_file, "is not an SQLite database"),
        (other_application, r"not an ordered-sender outbox.*tables: notes"),
        (other_application_in_wal_mode, r"another application.*user_version 7"),
        (other_application_id, r"application_id 0x47504b47"),
        (first_release_tables_missing, "another application"),
        (newer_outbox, r"newer ordered-sender \(schema version 3; this one knows up to 2\)"),
        (marked_outbox_without_its_tables, "lacks its tables notes"),
    ],
)
def test_a_file_that_is_not_a_usable_outbox_is_refused_and_left_exactly_as_it_was(
    tmp_path: Path, make: Callable[[Path], None], problem: str
) -> None:
    path = tmp_path / "file.db"
    make(path)
    before = fingerprint(path)
    assert before[3] == []
    for create, read_only in ((True, False), (False, False), (False, True)):
        with pytest.raises(NotAnOutbox, match=problem) as refused:
            open_2(path, create=create, read_only=read_only)
        assert str(path) in str(refused.value)
        assert fingerprint(path) == before


def test_a_folder_is_not_an_outbox(tmp_path: Path) -> None:
    with pytest.raises(NotAnOutbox, match="is a folder"):
        open_2(tmp_path, create=False)


def test_a_truncated_outbox_is_reported_damaged_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "cut.db"
    with closing(open_2(path)) as connection:
        for number in range(300):
            connection.execute(INSERT, (f"m{number}", os.urandom(500)))
    os.truncate(path, path.stat().st_size // 2)
    before = fingerprint(path)
    with pytest.raises(StoreError, match=r"cut\.db: is damaged \(SQLITE_CORRUPT.*backup"):
        open_2(path, create=False)
    assert fingerprint(path) == before


def test_an_outbox_with_overwritten_pages_is_reported_damaged(tmp_path: Path) -> None:
    path = tmp_path / "garbled.db"
    open_2(path).close()
    with path.open("r+b") as file:  # the schema on page 1, after the 100-byte header
        file.seek(100)
        file.write(os.urandom(3000))
    before = fingerprint(path)
    with pytest.raises(StoreError, match="is damaged"):
        open_2(path, create=False)
    assert fingerprint(path) == before


def test_an_outbox_with_an_overwritten_header_is_not_an_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "headless.db"
    open_2(path).close()
    with path.open("r+b") as file:
        file.write(b"\0" * 100)
    with pytest.raises(NotAnOutbox, match=r"headless\.db is not an SQLite database"):
        open_2(path, create=False)


def test_damage_met_after_opening_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    with closing(open_2(path)) as connection:
        for number in range(300):
            connection.execute(INSERT, (f"m{number}", os.urandom(500)))
    with path.open("r+b") as file:  # every page but the first two
        file.seek(2 * 4096)
        file.write(os.urandom(path.stat().st_size - 2 * 4096))
    with (
        closing(sqlite3.connect(path)) as connection,
        pytest.raises(StoreError, match="is damaged") as damaged,
        translated_errors(path),
    ):
        connection.execute("SELECT sum(length(payload)) FROM messages").fetchall()
    assert isinstance(damaged.value.__cause__, sqlite3.DatabaseError)


# --- migrating ------------------------------------------------------------------------------


def test_a_first_release_outbox_is_recognised_and_migrated_keeping_its_messages(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    make_first_release_outbox(path, messages=3)
    with closing(
        open_outbox(path, schema=SCHEMA_3, schema_version=3, migrations=MIGRATIONS, create=False)
    ) as connection:
        assert pragma(connection, "application_id") == APPLICATION_ID
        assert pragma(connection, "user_version") == 3
        assert tables(connection) == {"messages", "lanes", "notes", "dead_letters"}
        rows = connection.execute("SELECT message_id, retry_wait FROM messages ORDER BY seq")
        assert rows.fetchall() == [("m0", 0), ("m1", 0), ("m2", 0)]


def test_a_first_release_outbox_opens_with_todays_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_first_release_outbox(path, messages=2)
    with closing(
        open_outbox(
            path,
            schema=sqlite_schema.SCHEMA,
            schema_version=sqlite_schema.SCHEMA_VERSION,
            migrations=sqlite_schema.MIGRATIONS,
            create=False,
        )
    ) as connection:
        assert pragma(connection, "user_version") == sqlite_schema.SCHEMA_VERSION
        assert connection.execute("SELECT count(*) FROM messages").fetchone() == (2,)


def make_version_2_outbox(path: Path) -> None:
    """A version-2 outbox as that release left it: lane a moving with a delivered message kept,
    lane b paused at its head, lane c paused at c2 with the older c1 redriven while c2 was in
    flight (that release moved the head to the failed message)."""
    make_first_release_outbox(path, messages=0)
    with closing(
        open_outbox(
            path,
            schema=sqlite_schema.SCHEMA,
            schema_version=2,
            migrations={1: sqlite_schema.MIGRATIONS[1]},
            create=False,
        )
    ) as connection:
        for message_id, state in [
            ("a1", "delivered"),
            ("a2", "pending"),
            ("a3", "pending"),
            ("b1", "pending"),
            ("c1", "pending"),
            ("c2", "pending"),
        ]:
            connection.execute(
                "INSERT INTO messages (message_id, lane, input_name, payload, enqueued_at, state)"
                " VALUES (?, ?, 'input', X'7B7D', 1, ?)",
                (message_id, message_id[0], state),
            )
        connection.executemany(
            "INSERT INTO lanes (lane, head_seq, next_attempt_at, paused_at, pause_code)"
            " VALUES (?, ?, 0, ?, ?)",
            [("a", 2, None, None), ("b", 4, 7.0, "InvalidRequestException"), ("c", 6, 8.0, "X")],
        )


def schema_objects(connection: sqlite3.Connection) -> set[tuple[str, ...]]:
    """Every table, index and trigger with its columns: what a migration must make alike."""
    objects: set[tuple[str, ...]] = set()
    for kind, name, table in connection.execute("SELECT type, name, tbl_name FROM sqlite_schema"):
        listing = "table_info" if kind == "table" else "index_info"
        columns = [] if kind == "trigger" else connection.execute(f"PRAGMA {listing}({name})")
        objects.add((kind, name, table, *(str(column[1:3]) for column in columns)))
    return objects


def test_a_version_2_outbox_is_migrated_to_todays_schema_keeping_its_lanes_and_pauses(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.db"
    make_version_2_outbox(path)
    store = SqliteStore(path, create=False)
    try:
        assert [(p.lane, p.message_id) for p in store.paused_lanes()] == [("b", "b1"), ("c", "c2")]
        counts = store.counts()
        assert (counts.pending, counts.blocked, counts.lanes, counts.paused_lanes) == (5, 3, 3, 2)
        assert store.resume("c", now=9.0)
        delivered = []
        while heads := store.ready_heads(100.0, (), 10):
            delivered += [head.message.message_id for head in heads]
            store.apply([Delivered(head.seq) for head in heads], now=10.0)
        # c1, redriven before c2 failed, is c's oldest message: it goes first.
        assert delivered == ["a2", "c1", "a3", "c2"]
        assert store.counts().pending == 1  # b1, paused
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as migrated, closing(sqlite3.connect(":memory:")) as new:
        new.executescript(sqlite_schema.SCHEMA)
        assert pragma(migrated, "user_version") == sqlite_schema.SCHEMA_VERSION == 4
        assert schema_objects(migrated) == schema_objects(new)


def test_a_version_3_outbox_gains_the_triggers_that_open_and_move_on_lanes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v3.db"
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as connection, connection:
        # Version 3 opened a new message's lane and moved a lane on after a delivery with
        # statements of their own, not triggers.
        connection.execute("DROP TRIGGER lane_of_new_message")
        connection.execute("DROP TRIGGER lane_after_delivery")
        connection.execute("PRAGMA user_version = 3")
    store = SqliteStore(path, create=False)
    try:
        entries = [NewEntry(Message(id[0], b"{}", id, 1), id[0]) for id in ("a1", "a2", "b1")]
        store.add(entries[:2], now=1.0)  # one transaction
        store.add(entries[2:], now=1.0)  # one statement
        heads = store.ready_heads(2.0, (), 10)
        assert [head.message.message_id for head in heads] == ["a1", "b1"]
        assert store.counts().lanes == 2
        store.apply([Delivered(head.seq) for head in heads], now=2.0)
        assert [head.message.message_id for head in store.ready_heads(3.0, (), 10)] == ["a2"]
        assert store.counts().lanes == 1
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as migrated, closing(sqlite3.connect(":memory:")) as new:
        new.executescript(sqlite_schema.SCHEMA)
        assert pragma(migrated, "user_version") == 4
        assert schema_objects(migrated) == schema_objects(new)


def test_a_first_release_outbox_at_the_current_version_is_only_marked(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_first_release_outbox(path)
    with closing(
        open_outbox(
            path, schema=FIRST_RELEASE_SCHEMA, schema_version=1, migrations={}, create=False
        )
    ) as connection:
        assert pragma(connection, "application_id") == APPLICATION_ID
        assert pragma(connection, "user_version") == 1


def test_a_failing_migration_leaves_the_outbox_at_its_version_with_nothing_half_done(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    make_first_release_outbox(path)
    broken = {1: "CREATE TABLE notes (id INTEGER);\nALTER TABLE no_such_table ADD COLUMN x;"}
    with pytest.raises(StoreError, match=r"no such table: no_such_table"):
        open_outbox(path, schema=SCHEMA_2, schema_version=2, migrations=broken, create=False)
    with closing(sqlite3.connect(path)) as connection:
        assert pragma(connection, "user_version") == 1
        assert pragma(connection, "application_id") == 0
        assert tables(connection) == {"messages", "lanes"}
        assert connection.execute("SELECT count(*) FROM messages").fetchone() == (3,)


def test_a_read_only_open_refuses_an_outbox_that_needs_upgrading(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_first_release_outbox(path)
    before = fingerprint(path)
    with pytest.raises(StoreError, match=r"schema version 1 .* cannot upgrade it.*run"):
        open_2(path, create=False, read_only=True)
    assert fingerprint(path) == before


# --- read-only files and disks --------------------------------------------------------------


def test_status_reads_an_outbox_on_a_read_only_file_system(
    tmp_path: Path, tmpfs: TmpfsMount
) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        path = disk / "outbox.db"
        with closing(open_2(path)) as connection:
            connection.execute(INSERT, ("m0", b"x"))
        remount_read_only(disk)
        before = fingerprint(path)
        with closing(open_2(path, create=False, read_only=True)) as reader:
            assert reader.execute("SELECT message_id FROM messages").fetchall() == [("m0",)]
        assert fingerprint(path) == before
        with pytest.raises(StoreError, match=r"outbox\.db: is read-only.*status"):
            open_2(path, create=False)


def test_status_sees_commits_left_in_the_wal_by_a_crashed_sender_on_a_read_only_disk(
    tmp_path: Path,
    tmpfs: TmpfsMount,
) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        path = disk / "outbox.db"
        with closing(open_2(path)) as connection:
            connection.execute(INSERT, ("m0", b"x"))
            # What a SIGKILL leaves: the -wal holding the commit, and the -shm.
            left = {s: Path(f"{path}{s}").read_bytes() for s in ("", "-wal", "-shm")}
        for suffix, data in left.items():
            Path(f"{path}{suffix}").write_bytes(data)
        remount_read_only(disk)
        with closing(open_2(path, create=False, read_only=True)) as reader:
            assert reader.execute("SELECT message_id FROM messages").fetchall() == [("m0",)]


def test_status_reads_a_read_only_outbox_file_without_changing_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with closing(open_2(path)) as connection:
        connection.execute(INSERT, ("m0", b"x"))
    path.chmod(0o400)
    with closing(open_2(path, create=False, read_only=True)) as reader:
        assert reader.execute("SELECT count(*) FROM messages").fetchone() == (1,)
        with pytest.raises(StoreError, match="is read-only") as refused, translated_errors(path):
            reader.execute(INSERT, ("m1", b"y"))
    assert isinstance(refused.value.__cause__, sqlite3.OperationalError)
    assert path.stat().st_mode & 0o777 == 0o400


NOBODY = 65534


def as_nobody(action: Callable[[], str]) -> str:
    """What ``action`` returns (or raises) when run as user nobody, in a forked child: file modes
    bind nobody where they do not bind root, who runs these tests."""
    if os.geteuid() != 0:
        pytest.skip("switching to user nobody needs root")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, which leaves by os._exit
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            outcome = action()
        except BaseException as error:
            outcome = f"{type(error).__name__}: {error}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        outcome = reader.read().decode()
    os.waitpid(child, 0)
    return outcome


@pytest.fixture
def folder_nobody_can_only_read() -> Iterator[Path]:
    """A root-owned 0755 folder outside pytest's 0700 tree, so nobody can reach it."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        folder.chmod(0o755)
        yield folder


def test_status_reads_an_outbox_its_user_may_not_write(folder_nobody_can_only_read: Path) -> None:
    path = folder_nobody_can_only_read / "outbox.db"
    with closing(open_2(path)) as connection:
        connection.execute(INSERT, ("m0", b"x"))
    path.chmod(0o644)
    before = fingerprint(path)

    def count_read_only() -> str:
        with closing(open_2(path, create=False, read_only=True)) as reader:
            return str(reader.execute("SELECT count(*) FROM messages").fetchone()[0])

    assert as_nobody(count_read_only) == "1"
    assert as_nobody(lambda: repr(open_2(path, create=False))).startswith(
        f"StoreError: outbox {path}: is read-only"
    )
    assert fingerprint(path) == before


def test_an_outbox_its_user_may_not_read_is_named_with_the_reason(
    folder_nobody_can_only_read: Path,
) -> None:
    path = folder_nobody_can_only_read / "outbox.db"
    open_2(path).close()
    outcome = as_nobody(lambda: repr(open_2(path, create=False, read_only=True)))
    assert outcome == (
        f"StoreError: outbox {path}: cannot be read: permission denied; check the file's "
        "permissions"
    )
    assert beside(path) == []


# --- a full disk ----------------------------------------------------------------------------


def test_a_full_disk_is_a_store_error_and_committed_messages_survive(
    tmp_path: Path, tmpfs: TmpfsMount
) -> None:
    secret = b"PAYLOAD-MARKER" * 70
    with tmpfs(tmp_path / "disk", "256k") as disk:
        path = disk / "outbox.db"
        committed = 0
        with closing(open_2(path)) as connection:
            with pytest.raises(StoreError) as full:
                while True:
                    with translated_errors(path):
                        connection.execute(INSERT, (f"m{committed}", secret))
                    committed += 1
            assert committed > 3
        assert "the disk is full (SQLITE_FULL)" in str(full.value)
        assert str(path) in str(full.value)
        assert "PAYLOAD-MARKER" not in str(full.value)
        with closing(open_2(path, create=False)) as reopened:
            assert reopened.execute("SELECT count(*) FROM messages").fetchone() == (committed,)


def test_bad_arguments_are_refused_before_any_file_is_touched(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous='SOMETIMES'"):
        open_2(tmp_path / "o.db", synchronous="SOMETIMES")
    with pytest.raises(ValueError, match="read_only=True cannot create"):
        open_2(tmp_path / "o.db", read_only=True)
    assert list(tmp_path.iterdir()) == []

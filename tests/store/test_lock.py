"""OutboxLock: one live sender per outbox file, by any name, across processes, without hurting
SQLite's own locks."""

from __future__ import annotations

import os
import select
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ordered_sender.errors import NotAnOutbox, OutboxInUse
from ordered_sender.store.lock import OutboxLock

Take = Callable[[Path], OutboxLock]


@pytest.fixture
def take() -> Iterator[Take]:
    """Takes locks and releases them after the test, so that a failing test holds nothing."""
    taken: list[OutboxLock] = []

    def take(path: Path) -> OutboxLock:
        lock = OutboxLock(path)
        taken.append(lock)
        return lock

    yield take
    for lock in taken:
        lock.release()


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    path = tmp_path / "o.db"
    sqlite3.connect(path).close()
    return path


def test_a_second_lock_in_the_same_process_is_refused_until_the_first_is_released(
    take: Take, outbox: Path
) -> None:
    first = take(outbox)
    with pytest.raises(OutboxInUse, match="another sender in this process"):
        take(outbox)
    first.release()
    take(outbox)


def test_release_twice_does_not_release_the_next_holder(take: Take, outbox: Path) -> None:
    first = take(outbox)
    first.release()
    take(outbox)
    first.release()
    with pytest.raises(OutboxInUse):
        take(outbox)


def test_a_symlink_to_the_outbox_reaches_the_same_lock(
    take: Take, outbox: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "alias.db"
    alias.symlink_to(outbox)
    take(outbox)
    with pytest.raises(OutboxInUse, match=r"alias\.db"):
        take(alias)


def test_a_hard_link_to_the_outbox_reaches_the_same_lock(
    take: Take, outbox: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "hard.db"
    os.link(outbox, alias)
    take(alias)
    with pytest.raises(OutboxInUse):
        take(outbox)


def test_a_relative_and_an_absolute_path_reach_the_same_lock(
    take: Take, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(outbox.parent)
    take(Path("./o.db"))
    with pytest.raises(OutboxInUse):
        take(outbox.resolve())


def test_a_bind_mount_of_the_outbox_folder_reaches_the_same_lock(
    take: Take, tmp_path: Path
) -> None:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode:
        pytest.skip("needs unshare and user namespaces to bind-mount without touching the host")
    real, view = tmp_path / "real", tmp_path / "view"
    real.mkdir()
    view.mkdir()
    take(real / "o.db")
    # The child sees the outbox through the bind mount only, in a mount namespace of its own.
    script = f'mount --bind "{real}" "{view}" && exec "{sys.executable}" -c "$0" "{view}/o.db"'
    completed = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, TRY_LOCK],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert completed.stdout.strip() == "in use"


def test_another_process_holding_the_lock_refuses_it_until_that_process_is_killed(
    take: Take, outbox: Path
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK_THEN_WAIT, str(outbox)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert _line_from(holder, timeout=30) == b"locked\n"
        with pytest.raises(OutboxInUse, match="another live sender"):
            take(outbox)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    take(outbox)


def test_no_lock_file_is_made_beside_the_outbox(take: Take, outbox: Path) -> None:
    before = sorted(outbox.parent.iterdir())
    take(outbox)
    assert sorted(outbox.parent.iterdir()) == before


def test_taking_the_lock_leaves_an_existing_file_unchanged(take: Take, outbox: Path) -> None:
    outbox.chmod(0o640)
    content = outbox.read_bytes()
    take(outbox)
    assert outbox.read_bytes() == content
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o640


def test_a_missing_outbox_is_created_empty_and_owner_only_whatever_the_umask(
    take: Take, tmp_path: Path
) -> None:
    path = tmp_path / "new.db"
    previous = os.umask(0)
    try:
        take(path)
    finally:
        os.umask(previous)
    assert path.read_bytes() == b""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (x)")


def test_a_missing_outbox_is_refused_when_creating_is_not_allowed(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(NotAnOutbox, match=r"typo\.db does not exist"):
        OutboxLock(path, create=False)
    assert not path.exists()


def test_a_directory_is_not_an_outbox(tmp_path: Path) -> None:
    with pytest.raises(NotAnOutbox, match="not a regular file"):
        OutboxLock(tmp_path)


def test_problem_is_none_while_the_path_names_the_locked_file(take: Take, outbox: Path) -> None:
    assert take(outbox).problem() is None


def test_problem_names_the_deletion_of_the_outbox(take: Take, outbox: Path) -> None:
    lock = take(outbox)
    os.unlink(outbox)
    problem = lock.problem()
    assert problem is not None
    assert str(outbox) in problem
    assert "deleted" in problem


def test_problem_names_the_replacement_of_the_outbox(
    take: Take, outbox: Path, tmp_path: Path
) -> None:
    lock = take(outbox)
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    os.replace(other, outbox)
    problem = lock.problem()
    assert problem is not None
    assert str(outbox) in problem
    assert "replaced by another file" in problem


def test_the_file_that_replaced_a_locked_outbox_can_be_locked(
    take: Take, outbox: Path, tmp_path: Path
) -> None:
    take(outbox)
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    os.replace(other, outbox)
    assert take(outbox).problem() is None


def test_release_keeps_the_write_lock_of_an_sqlite_connection_of_this_process(
    take: Take, outbox: Path
) -> None:
    # In rollback-journal mode the write lock is an fcntl lock on the outbox file itself: closing
    # any descriptor of the file in this process would drop it (sqlite.org/howtocorrupt.html 2.2).
    lock = take(outbox)
    connection = sqlite3.connect(outbox, isolation_level=None)
    connection.execute("CREATE TABLE t (x)")
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO t VALUES (1)")
    lock.release()
    assert _write_from_another_process(outbox) == "database is locked"
    connection.execute("COMMIT")
    assert _write_from_another_process(outbox) == "written"
    connection.close()


def test_release_keeps_the_wal_locks_of_an_sqlite_connection_of_this_process(
    take: Take, outbox: Path
) -> None:
    # In WAL mode each connection holds a shared fcntl lock on the outbox file; without it,
    # another process closing its connection believes it is the last one, checkpoints and
    # deletes the WAL under this connection.
    lock = take(outbox)
    connection = sqlite3.connect(outbox, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE t (x)")
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO t VALUES (1)")
    lock.release()
    assert _write_from_another_process(outbox) == "database is locked"
    assert Path(f"{outbox}-wal").exists()
    connection.execute("COMMIT")
    assert [row[0] for row in connection.execute("SELECT x FROM t")] == [1]
    connection.close()


def test_a_refused_lock_keeps_the_locks_of_an_sqlite_connection_of_this_process(
    outbox: Path,
) -> None:
    # A producer's connection in a process whose sender could not start, because another
    # process delivers: the failed attempt must not close a descriptor of the file either.
    connection = sqlite3.connect(outbox, isolation_level=None)
    connection.execute("CREATE TABLE t (x)")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK_THEN_WAIT, str(outbox)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert _line_from(holder, timeout=30) == b"locked\n"
        connection.execute("BEGIN IMMEDIATE")
        with pytest.raises(OutboxInUse):
            OutboxLock(outbox)
        assert _write_from_another_process(outbox) == "database is locked"
        connection.execute("COMMIT")
    finally:
        holder.kill()
        holder.wait(timeout=30)
        connection.close()


HOLD_LOCK_THEN_WAIT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ordered_sender.store.lock import OutboxLock

    lock = OutboxLock(Path(sys.argv[1]))
    sys.stdout.write("locked\\n")
    sys.stdout.flush()
    sys.stdin.read()
    """
)

TRY_LOCK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ordered_sender.errors import OutboxInUse
    from ordered_sender.store.lock import OutboxLock

    try:
        OutboxLock(Path(sys.argv[1]))
    except OutboxInUse:
        print("in use")
    else:
        print("locked")
    """
)

WRITE_ONCE = textwrap.dedent(
    """
    import sqlite3, sys

    connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        print(error)
    else:
        connection.execute("INSERT INTO t VALUES (2)")
        connection.execute("COMMIT")
        print("written")
    connection.close()
    """
)


def _write_from_another_process(path: Path) -> str:
    """What a writer in another process meets: "written", or SQLite's error."""
    completed = subprocess.run(
        [sys.executable, "-c", WRITE_ONCE, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return completed.stdout.strip()


def _line_from(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    assert readable, f"no line from the process within {timeout} s"
    return process.stdout.readline()

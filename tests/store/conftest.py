"""A real PostgreSQL server for the store tests, started by the suite itself and stopped after it.

``postgres_server`` (one per session) runs initdb and pg_ctl into a temporary folder, as an
unprivileged user when the suite runs as root (PostgreSQL refuses to run as root), listening on a
free port of 127.0.0.1 and on a unix socket in that folder. ``postgres_url`` gives each test a
database of its own on it. Without the server binaries or the psycopg driver the tests that need
them are skipped, saying why; under CI (CI=true) they fail instead, since CI must run them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

if os.environ.get("CI") == "true":
    # CI installs the test extra, driver included; a missing one must fail, never skip.
    import psycopg  # noqa: F401

UNPRIVILEGED_USERS = ("postgres", "nobody")
"""Who runs the server when the suite runs as root: the first of these that exists."""


@dataclass(frozen=True)
class PostgresServer:
    """A running server: ``url`` reaches its ``postgres`` database as the superuser."""

    bin_dir: Path
    folder: Path
    port: int
    run_as: str | None

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def command(self, program: str, *args: str) -> list[str]:
        line = [str(self.bin_dir / program), *args]
        if self.run_as is None:
            return line
        return ["runuser", "-u", self.run_as, "--", *line]


def _no_server(reason: str) -> BaseException:
    """Skip with the reason; under CI, fail: CI installs the server, so a missing one is a bug."""
    if os.environ.get("CI") == "true":
        return pytest.fail.Exception(f"CI must run the PostgreSQL tests, but {reason}")
    return pytest.skip.Exception(f"no PostgreSQL server for these tests: {reason}")


def find_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, from ``pg_config --bindir``, or the newest of
    Debian's /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    if shutil.which("pg_config") is not None:
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=_version_of, reverse=True)]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _version_of(bin_dir: str) -> int:
    name = Path(bin_dir).parent.name
    return int(name) if name.isdigit() else 0


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise _no_server(f"running as root and none of the users {UNPRIVILEGED_USERS} exists")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(server: PostgresServer, program: str, *args: str) -> None:
    done = subprocess.run(
        server.command(program, *args), capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        log = server.folder / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise _no_server(f"{program} failed ({done.returncode}): {done.stderr.strip()} {tail}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise _no_server(
            "initdb and pg_ctl were not found (PATH, pg_config, /usr/lib/postgresql/*/bin); "
            "install the server: apt-get install postgresql"
        )
    run_as = _unprivileged_user()
    # The server's user must reach the folder: under /tmp, not a TMPDIR private to root.
    parent = "/tmp" if run_as is not None and os.path.isdir("/tmp") else None
    folder = Path(tempfile.mkdtemp(prefix="ordered-sender-pg-", dir=parent))
    try:
        (folder / "socket").mkdir()
        if run_as is not None:
            user = pwd.getpwnam(run_as)
            for path in (folder, folder / "socket"):
                os.chown(path, user.pw_uid, user.pw_gid)
        server = PostgresServer(bin_dir, folder, _free_port(), run_as)
        _run(server, "initdb", "-D", str(folder / "data"), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--no-sync")  # fmt: skip
        options = (
            f"-h 127.0.0.1 -p {server.port} -k {server.socket_dir} -c max_connections=200 "
            "-c fsync=off -c full_page_writes=off"
        )
        _run(server, "pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "server.log"),
             "-o", options, "-w", "-t", "60", "start")  # fmt: skip
        try:
            yield server
        finally:
            subprocess.run(
                server.command("pg_ctl", "-D", str(folder / "data"), "-m", "fast", "-w", "stop"),
                capture_output=True,
                timeout=120,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_databases = itertools.count()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database on the session's server, dropped after the test."""
    try:
        import psycopg
    except ImportError:
        raise _no_server(
            "the psycopg driver is not installed: pip install 'ordered-sender[postgres]'"
        ) from None
    name = f"test_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        # Copying the template's files is faster than logging them (the default since 15).
        strategy = " STRATEGY FILE_COPY" if admin.info.server_version >= 150000 else ""
        admin.execute(f'CREATE DATABASE "{name}"{strategy}')
    yield postgres_server.url(name)
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

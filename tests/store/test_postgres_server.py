"""The suite's own PostgreSQL server: started for real, reachable, and not run as root."""

from __future__ import annotations

import os

import pytest

psycopg = pytest.importorskip("psycopg", reason="pip install 'ordered-sender[postgres]'")


def test_each_test_gets_its_own_empty_database_on_a_server_not_run_as_root(
    postgres_url: str,
) -> None:
    with psycopg.connect(postgres_url) as connection:
        database, superuser = connection.execute(
            "SELECT current_database(), current_setting('is_superuser')"
        ).fetchone()
        tables = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
            "'information_schema')"
        ).fetchone()
        owner = connection.execute(
            "SELECT usename FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ).fetchone()
        data_directory = connection.execute("SHOW data_directory").fetchone()
    assert database in postgres_url and database.startswith("test_")
    assert superuser == "on" and owner == ("postgres",)
    assert tables == (0,)
    # The server process runs as the data folder's owner, never root.
    assert os.stat(data_directory[0]).st_uid != 0

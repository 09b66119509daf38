"""The `ordered-sender` commands on a PostgreSQL outbox: `--outbox postgresql://...` works on
every command, as real subprocesses, and a bad URL parameter is a usage error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ordered_sender.emulator import Emulator, Faults, TargetedFault

pytest.importorskip("psycopg", reason="pip install 'ordered-sender[postgres]'")

COMMAND = str(Path(sys.executable).parent / "ordered-sender")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "COLUMNS": "200",
    }
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, env=env, timeout=120)


def test_send_status_resume_and_dead_letters_work_on_a_postgresql_outbox(
    postgres_url: str, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.create_input("A")
    emulator.create_input("B")
    emulator.set_faults(
        Faults(targeted=(TargetedFault("InvalidRequestException", message_id="a-1"),))
    )
    source = tmp_path / "messages.jsonl"
    source.write_text(
        "".join(
            json.dumps({"inputName": name, "payload": {"n": n}, "messageId": f"{name.lower()}-{n}"})
            + "\n"
            for n in range(3)
            for name in ("A", "B")
        )
    )
    url = postgres_url.replace("postgres@", "postgres:s3cret-pw@")
    sent = run("send", str(source), "--outbox", url, "--endpoint-url", emulator.endpoint_url)
    # a-1 pauses lane A: send stores all six, delivers B and a-0, and says what waits.
    assert sent.returncode == 1
    assert "stored 6 messages" in sent.stdout
    assert "2 messages not delivered (1 paused lane)" in sent.stdout
    status = run("status", "--outbox", url, "--output", "json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["counts"]["pending"] == 2
    assert [lane["lane"] for lane in shown["paused_lanes"]] == ["A"]
    assert "s3cret-pw" not in sent.stdout + sent.stderr + status.stdout + status.stderr

    emulator.set_faults(Faults())
    resumed = run("resume", "--outbox", url, "A")
    assert resumed.returncode == 0, resumed.stderr
    delivered = run("send", os.devnull, "--outbox", url, "--endpoint-url", emulator.endpoint_url)
    assert delivered.returncode == 0, delivered.stdout + delivered.stderr
    after = json.loads(run("status", "--outbox", url, "--output", "json").stdout)
    assert (after["counts"]["pending"], after["paused_lanes"]) == (0, [])
    dead = run("dead-letters", "list", "--outbox", url)
    assert dead.returncode == 0, dead.stderr
    assert [m.message_id for m in emulator.processed(input_name="A")] == ["a-0", "a-1", "a-2"]


def test_a_bad_outbox_url_parameter_is_a_usage_error_naming_it(postgres_url: str) -> None:
    refused = run("status", "--outbox", postgres_url + "?lease_seconds=900")
    assert refused.returncode == 2
    assert "--outbox" in refused.stderr and "lease_seconds=900.0" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_status_of_a_database_without_an_outbox_fails_without_creating_one(
    postgres_url: str,
) -> None:
    refused = run("status", "--outbox", postgres_url)
    assert refused.returncode == 1
    assert "does not exist" in refused.stderr and "Traceback" not in refused.stderr

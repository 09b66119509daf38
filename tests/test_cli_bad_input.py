"""Every command over bad input, run as a user runs it: one clear line, the right exit status,
never a traceback, and nothing stored.

Exit status 2 is a usage error (an option or argument with a bad value, named); 1 is everything
else a user can act on (a missing outbox, a bad line, missing credentials).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ordered_sender.outbox import Outbox
from ordered_sender.store.sqlite import SqliteStore

COMMAND = str(Path(sys.executable).parent / "ordered-sender")
UNREACHABLE = "http://127.0.0.1:1"
"""Nothing listens on port 1."""

GOOD_LINE = '{"inputName": "motors", "payload": {"rpm": 1}}\n'


@dataclass(frozen=True)
class Case:
    """A command line, what the user sees, and what must not exist afterwards."""

    args: tuple[str, ...]
    status: int
    says: tuple[str, ...]
    env: dict[str, str | None] = field(default_factory=dict)
    """Changes to the environment; None removes a variable."""
    creates_nothing: str | None = "new.db"
    """A file (under the test's directory) that the command must not have created."""


NO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
}

CASES = {
    "send --endpoint-url not-a-url": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--endpoint-url", "not-a-url"),
        2,
        ("--endpoint-url", "'not-a-url' is not an endpoint URL"),
    ),
    "send --endpoint-url http://": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--endpoint-url", "http://"),
        2,
        ("--endpoint-url", "'http://' is not an endpoint URL"),
    ),
    "send --endpoint-url ftp": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--endpoint-url", "ftp://127.0.0.1"),
        2,
        ("'ftp://127.0.0.1' is not an endpoint URL",),
    ),
    "send --endpoint-url with a broken IPv6 host": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--endpoint-url", "http://[::1"),
        2,
        ("'http://[::1' is not an endpoint URL",),
    ),
    "send --endpoint-url with a port out of range": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--endpoint-url", "http://127.0.0.1:99999"),
        2,
        ("'http://127.0.0.1:99999' is not an endpoint URL",),
    ),
    "send --region that is not a region": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--region", "not a region!"),
        2,
        ("--region", "'not a region!' is not a region name"),
    ),
    "AWS_REGION that is not a region": Case(
        ("run", "--outbox", "outbox.db"),
        2,
        ("AWS_REGION", "'eu west' is not a region name"),
        env={"AWS_REGION": "eu west"},
    ),
    "AWS_DEFAULT_REGION that is not a region": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--endpoint-url", UNREACHABLE),
        1,
        ("AWS configuration: Provided region_name 'eu west'",),
        env={"AWS_DEFAULT_REGION": "eu west"},
    ),
    "run --endpoint-url not-a-url": Case(
        ("run", "--outbox", "outbox.db", "--endpoint-url", "not-a-url"),
        2,
        ("--endpoint-url", "'not-a-url'"),
    ),
    "demo --endpoint-url not-a-url": Case(
        ("demo", "--endpoint-url", "not-a-url"), 2, ("--endpoint-url", "'not-a-url'")
    ),
    "AWS_ENDPOINT_URL not a url": Case(
        ("send", "good.jsonl", "--outbox", "new.db"),
        1,
        ("Invalid endpoint: nope", "AWS_ENDPOINT_URL"),
        env={"AWS_ENDPOINT_URL": "nope"},
    ),
    "AWS_PROFILE unknown": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--endpoint-url", UNREACHABLE),
        2,
        ("AWS_PROFILE", "no AWS profile 'nope'"),
        env={"AWS_PROFILE": "nope"},
    ),
    "send --profile unknown": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--profile", "nope"),
        2,
        ("--profile", "no AWS profile 'nope'"),
    ),
    "run --profile unknown": Case(
        ("run", "--outbox", "outbox.db", "--profile", "nope"), 2, ("no AWS profile 'nope'",)
    ),
    "send without credentials": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--endpoint-url", UNREACHABLE),
        1,
        ("no AWS credentials found", "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"),
        env=NO_CREDENTIALS,
    ),
    "run without credentials": Case(
        ("run", "--outbox", "outbox.db", "--endpoint-url", UNREACHABLE),
        1,
        ("no AWS credentials found",),
        env=NO_CREDENTIALS,
    ),
    "demo on another endpoint without credentials": Case(
        ("demo", "--endpoint-url", UNREACHABLE),
        1,
        ("no AWS credentials found", "export AWS_ACCESS_KEY_ID=test"),
        env=NO_CREDENTIALS,
    ),
    "send without a region": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--endpoint-url", UNREACHABLE),
        1,
        ("no AWS region is configured", "AWS_REGION"),
        env={
            "AWS_DEFAULT_REGION": None,
            "AWS_REGION": None,
            "AWS_CONFIG_FILE": "/nonexistent/config",
        },
    ),
    "send a missing file": Case(
        ("send", "missing.jsonl", "--outbox", "new.db"), 2, ("'missing.jsonl'",)
    ),
    "send a payload that is a string": Case(
        ("send", "good.jsonl", "string-payload.jsonl", "--outbox", "new.db", "--no-wait"),
        1,
        ("string-payload.jsonl:1: payload='hello': must be a JSON object",),
    ),
    "send a payload that is a list": Case(
        ("send", "list-payload.jsonl", "--outbox", "new.db", "--no-wait"),
        1,
        ("list-payload.jsonl:1: payload=[1, 2]: must be a JSON object",),
    ),
    "send a timestamp in seconds": Case(
        ("send", "seconds.jsonl", "--outbox", "new.db", "--no-wait"),
        1,
        ("seconds.jsonl:1: timestamp=1700000000: ", "give milliseconds (1700000000000)"),
    ),
    "send a Latin-1 file": Case(
        ("send", "latin-1.jsonl", "--outbox", "new.db", "--no-wait"),
        1,
        ("latin-1.jsonl:1", "is not UTF-8"),
    ),
    "send the same id in two files": Case(
        ("send", "with-id.jsonl", "with-id.jsonl", "--outbox", "new.db", "--no-wait"),
        1,
        ("with-id.jsonl:1: messageId='m-1': is already used at with-id.jsonl:1",),
    ),
    "send --timeout nan": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--timeout", "nan"), 2, ("--timeout",)
    ),
    "send --input-name bad": Case(
        ("send", "good.jsonl", "--outbox", "new.db", "--input-name", "-bad"),
        2,
        ("--input-name", "'-bad'"),
    ),
    "run a missing outbox": Case(("run", "--outbox", "new.db"), 1, ("new.db",)),
    "status of a missing outbox": Case(("status", "--outbox", "new.db"), 1, ("new.db",)),
    "status of a file that is not an outbox": Case(
        ("status", "--outbox", "good.jsonl"), 1, ("good.jsonl",)
    ),
    "status --output yaml": Case(
        ("status", "--outbox", "outbox.db", "--output", "yaml"), 2, ("--output",)
    ),
    "resume a missing outbox": Case(("resume", "--outbox", "new.db", "lane"), 1, ("new.db",)),
    "resume a lane that is not paused": Case(
        ("resume", "--outbox", "outbox.db", "motors"), 1, ("lane 'motors' is not paused",)
    ),
    "dead-letters list of a missing outbox": Case(
        ("dead-letters", "list", "--outbox", "new.db"), 1, ("new.db",)
    ),
    "dead-letters redrive an unknown id": Case(
        ("dead-letters", "redrive", "--outbox", "outbox.db", "m-9"),
        1,
        ("'m-9' is not a dead letter",),
    ),
    "dead-letters drop an unknown id": Case(
        ("dead-letters", "drop", "--outbox", "outbox.db", "m-9"), 1, ("'m-9' is not a dead letter",)
    ),
    "emulator --port -1": Case(("emulator", "--port", "-1"), 2, ("--port",)),
    "emulator --port 70000": Case(("emulator", "--port", "70000"), 2, ("--port",)),
    "emulator --request-error-rate 2": Case(
        ("emulator", "--request-error-rate", "2"), 2, ("--request-error-rate", "'2'")
    ),
    "emulator --drop-connection-rate nan": Case(
        ("emulator", "--drop-connection-rate", "nan"), 2, ("--drop-connection-rate", "'nan'")
    ),
    "send into a folder that makes no files": Case(
        ("send", "--outbox", "/proc/new.db", "good.jsonl"),
        1,
        ("/proc/new.db", "makes no new files"),
        env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    ),
    "demo --messages 0": Case(("demo", "--messages", "0"), 2, ("--messages",)),
    "demo --timeout 0": Case(("demo", "--timeout", "0"), 2, ("--timeout",)),
    "an unknown command": Case(("sned",), 2, ("No such command 'sned'",)),
}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The files the cases name, and an outbox with one pending message."""
    (tmp_path / "good.jsonl").write_text(GOOD_LINE)
    (tmp_path / "string-payload.jsonl").write_text('{"inputName": "A", "payload": "hello"}\n')
    (tmp_path / "list-payload.jsonl").write_text('{"inputName": "A", "payload": [1, 2]}\n')
    (tmp_path / "seconds.jsonl").write_text(
        '{"inputName": "A", "payload": {}, "timestamp": 1700000000}\n'
    )
    (tmp_path / "latin-1.jsonl").write_bytes(
        '{"inputName": "A", "payload": {"city": "Zürich"}}\n'.encode("latin-1")
    )
    (tmp_path / "with-id.jsonl").write_text(
        '{"inputName": "A", "payload": {}, "messageId": "m-1"}\n'
    )
    with Outbox(tmp_path / "outbox.db") as outbox:
        outbox.put("motors", {"rpm": 1})
    return tmp_path


def run_in(
    directory: Path, *args: str, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
        environment.pop(name, None)
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [COMMAND, *args],
        cwd=directory,
        capture_output=True,
        text=True,
        env=environment,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_command_refuses_bad_input_in_one_line_without_a_traceback(
    workdir: Path, case: Case
) -> None:
    result = run_in(workdir, *case.args, env=case.env)

    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == case.status, result.stdout + result.stderr
    for text in case.says:
        assert text in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, result.stderr
    if case.creates_nothing is not None:
        assert not (workdir / case.creates_nothing).exists()
    # The outbox the cases share still holds its one message, nothing more.
    store = SqliteStore(workdir / "outbox.db", create=False, read_only=True)
    try:
        assert store.counts().pending == 1
    finally:
        store.close()

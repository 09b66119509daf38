"""Fixtures shared by the whole suite: an isolated AWS environment, structlog reset, emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import structlog
from hypothesis import settings

from ordered_sender.emulator import Emulator

# CI (a clean clone, so no example database) runs the same hypothesis examples every time, so a
# red run is reproducible as it is; runs on a developer's machine explore new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def isolated_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may read the developer's AWS files or reach an instance-metadata service."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=1234) as emu:
        yield emu


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def cli() -> CliRunner:
    """Runs ``ordered-sender ARGS...`` as a real subprocess with fake AWS credentials."""
    command = str(Path(sys.executable).parent / "ordered-sender")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "COLUMNS": "200",
    }
    env.pop("AWS_ENDPOINT_URL", None)

    def run(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command, *args], capture_output=True, text=True, env=env, timeout=timeout
        )

    return run


TmpfsMount = Callable[[Path, str], AbstractContextManager[Path]]


@pytest.fixture
def tmpfs() -> TmpfsMount:
    """``with tmpfs(where, size) as disk:`` a real tmpfs of ``size`` mounted at ``where``
    (created), unmounted whatever happens; for full and read-only disks. Skips where mounting is
    not permitted (it needs root)."""

    @contextmanager
    def mount(where: Path, size: str) -> Iterator[Path]:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root; run as root to test full and read-only disks")
        where.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if mounted.returncode != 0:
            pytest.skip(f"mount is not permitted here: {mounted.stderr.strip()}")
        try:
            yield where
        finally:
            subprocess.run(["umount", "--lazy", str(where)], check=True)

    return mount

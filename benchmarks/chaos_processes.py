"""Child processes of the chaos harness: started with a log file, always killed on the way out.

``Children`` is the one owner of every process the harness starts, so a failing round, a timeout
or Ctrl-C still leaves nothing running. ``Emulator`` is ``ordered-sender emulator`` in its own
process, read through its ``/_emulator`` inspection paths on 127.0.0.1.
"""

from __future__ import annotations

import json
import selectors
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

STARTUP_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 30.0


def ordered_sender_command() -> list[str]:
    """The installed ``ordered-sender`` of this interpreter's environment, as a user runs it."""
    beside_python = Path(sys.executable).with_name("ordered-sender")
    found = str(beside_python) if beside_python.exists() else shutil.which("ordered-sender")
    if found is None:
        raise RuntimeError("`ordered-sender` is not installed: pip install -e . in the project")
    return [found]


class Children:
    """Every child process the harness started; the ones still running are killed at exit."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        command: list[str],
        environment: dict[str, str],
        log: Path,
        *,
        stdout_pipe: bool = False,
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else log_file,
                stderr=log_file,
                env=environment,
            )
        self._processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL and reap; nothing the process does can delay it."""
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=STARTUP_TIMEOUT_SECONDS)

    def stop(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        """SIGTERM, the clean stop; SIGKILL if it has not stopped within ``timeout``."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(process)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for process in self._processes:
            self.kill(process)


@dataclass(frozen=True, slots=True)
class Emulator:
    """``ordered-sender emulator`` in a process of its own, and its inspection paths."""

    process: subprocess.Popen[bytes]
    url: str

    @classmethod
    def start(
        cls, children: Children, environment: dict[str, str], log: Path, options: list[str]
    ) -> Emulator:
        """Start it on a free port of 127.0.0.1 and read the URL it prints first."""
        command = [*ordered_sender_command(), "emulator", "--host=127.0.0.1", "--port=0"]
        process = children.start([*command, *options], environment, log, stdout_pipe=True)
        assert process.stdout is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or process.poll() is not None:
                    raise RuntimeError(f"the emulator printed no URL; see {log}")
                if selector.select(timeout=remaining):
                    chunk = process.stdout.read1(1)  # type: ignore[attr-defined]
                    if not chunk:
                        raise RuntimeError(f"the emulator closed its output; see {log}")
                    line += chunk
        url = line.decode().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the emulator printed {url!r}, not a URL on 127.0.0.1")
        return cls(process, url)

    def get(self, path: str) -> Any:
        """``GET /_emulator/<path>`` as JSON."""
        with urllib.request.urlopen(
            f"{self.url}/_emulator/{path}", timeout=HTTP_TIMEOUT_SECONDS
        ) as answer:
            return json.loads(answer.read())

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.get("stats")
        return stats

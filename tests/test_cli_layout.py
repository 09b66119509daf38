"""The command is a package of its own beside the library: the library never imports it."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_library_imports_nothing_of_the_command() -> None:
    probe = (
        "import sys, ordered_sender, ordered_sender.testing, ordered_sender.emulator; "
        "print(sorted(m for m in sys.modules if m.startswith('ordered_sender.cli')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.strip() == "[]"


def test_the_demo_support_code_lives_with_the_command() -> None:
    probe = "import importlib.util; print(importlib.util.find_spec('ordered_sender.demos'))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.strip() == "None"

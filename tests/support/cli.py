"""The command line as a user runs it: the installed ``outreach-bot`` in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

EXE = shutil.which("outreach-bot", path=str(Path(sys.executable).parent)) or shutil.which("outreach-bot")


def run(
    args: list[str], stdin: str | bytes = "", env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    command = [EXE, *args] if EXE else [sys.executable, "-m", "bot.cli", *args]
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    full_env = {**os.environ, "OUTREACH_LOG_LEVEL": "WARNING", **(env or {})}
    return subprocess.run(
        command, input=data, capture_output=True, env=full_env, timeout=timeout, check=False
    )


def lines(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, object]]:
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]

"""The real ``outreach-bot serve`` process for end-to-end tests: started with an environment, awaited
until ``/healthz`` answers (and says what the test needs), stopped at the end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.support.waiting import wait_until

EXE = shutil.which("outreach-bot", path=str(Path(sys.executable).parent))


def command() -> list[str]:
    return [EXE] if EXE else [sys.executable, "-m", "bot.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    http: httpx.AsyncClient


@asynccontextmanager
async def serve_process(
    folder: Path,
    env: dict[str, str],
    *,
    ready: Callable[[dict[str, Any]], bool] = lambda _health: True,
    deadline: float = 60,
    port: int | None = None,
) -> AsyncIterator[ServerProcess]:
    """``ready`` looks at /healthz's JSON (e.g. which channels are up); ``port`` when the environment
    must name it (a Telegram webhook's URL), else a free one."""
    port = port or free_port()
    log = folder / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    http = httpx.AsyncClient(timeout=30)

    async def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            response = await http.get(url + "/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and ready(response.json())

    try:
        await wait_until(healthy, "the server to start", deadline, interval=0.1)
        yield ServerProcess(process, url, log, http)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        await http.aclose()

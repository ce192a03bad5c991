"""The idle-connection attack against the real ``outreach-bot serve``: one address opens N idle TCP
connections (default 520, more than the server's 500), then another address asks for /healthz.

    python bench/idle_flood.py [--idle 520] [--sources 1]

Prints how many of the idle connections the server kept, refused (503) or closed, and the other
client's status and time. ``--sources K`` spreads the idle connections over K addresses (127.0.1.x).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.live_server import serve_process


async def status_of(port: int, source: str) -> tuple[int, float]:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 60)
    writer.close()
    return int(raw.split()[1]), time.perf_counter() - start


async def main(idle: int, sources: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
        env["OUTREACH_DATABASE_URL"] = f"sqlite+aiosqlite:///{folder}/bench.db"
        env["OUTREACH_LOG_LEVEL"] = "WARNING"
        async with serve_process(Path(folder), env) as server:
            port = int(server.url.rsplit(":", 1)[1])
            held = []
            for n in range(idle):
                source = "127.0.0.1" if sources == 1 else f"127.0.1.{n % sources + 1}"
                held.append(await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)))
            await asyncio.sleep(0.5)  # let the server read what it refuses
            refused = closed = 0
            for reader, _ in held:
                try:
                    data = await asyncio.wait_for(reader.read(64), 0.01)
                except TimeoutError:
                    continue
                refused += data.startswith(b"HTTP/1.1 503")
                closed += data == b""
            status, seconds = await status_of(port, "127.0.0.2")
            kept = idle - refused - closed
            print(
                f"idle={idle} sources={sources}: kept {kept}, refused 503 {refused}, closed {closed}; "
                f"another client's /healthz: {status} in {seconds * 1000:.0f} ms"
            )
            for _, writer in held:
                writer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=520)
    parser.add_argument("--sources", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.idle, args.sources))

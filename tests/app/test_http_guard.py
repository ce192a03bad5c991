"""One address cannot starve the others: real sockets against an app served by uvicorn with the
server's own guard (bot/http_guard.py). On Linux every 127.x.y.z address is this machine, so clients
come from distinct addresses by binding to them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn

from bot import http_guard
from bot.http_guard import GuardLimits, guard_app, uvicorn_options

pytestmark = pytest.mark.skipif(http_guard.HttpToolsProtocol is None, reason="the guard needs httptools")


class App:
    """Answers with the client address the server believes; /hold waits until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.holding = 0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        if scope["path"] == "/hold":
            self.holding += 1
            await self.release.wait()
        body = str(scope["client"][0]).encode()
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3000):  # a bound, not a timing: the condition normally holds within milliseconds
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


@asynccontextmanager
async def served(app: App, guard: GuardLimits) -> AsyncIterator[int]:
    options = {k: v for k, v in uvicorn_options(False, guard).items() if k != "log_config"}
    config = uvicorn.Config(
        guard_app(app),
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,
        log_level="warning",
        **options,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, "server started")
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        app.release.set()
        server.should_exit = True
        await task
        http_guard._limits = None  # back to the environment's


async def connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def get(port: int, source: str, path: str = "/", forwarded: str | None = None) -> tuple[int, bytes]:
    reader, writer = await connect(port, source)
    extra = f"X-Forwarded-For: {forwarded}\r\n" if forwarded else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 60)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_idle_connections_from_one_address_do_not_starve_another(tmp_path: object) -> None:
    app = App()
    guard = GuardLimits(max_connections=40, per_client_connections=10)
    async with served(app, guard) as port:
        idle = [await connect(port, "127.0.0.1") for _ in range(10)]
        await until(lambda: http_guard._per_address.get("127.0.0.1") == 10, "ten idle connections held")
        # 60 in all from this address: more than the whole server's 40.
        refused = [await connect(port, "127.0.0.1") for _ in range(50)]
        for reader, writer in refused:
            assert (await asyncio.wait_for(reader.read(), 60)).startswith(b"HTTP/1.1 503")
            writer.close()
        assert await get(port, "127.0.0.2") == (200, b"127.0.0.2")  # another address is served
        assert http_guard._per_address.get("127.0.0.1") == 10  # while the ten are still held
        for _, writer in idle:
            writer.close()


async def test_many_addresses_idle_the_server_still_serves_a_request(tmp_path: object) -> None:
    app = App()
    guard = GuardLimits(max_connections=40, per_client_connections=10)
    async with served(app, guard) as port:
        held = [await connect(port, f"127.0.1.{n}") for n in range(1, 61)]  # 60 addresses, one idle each
        assert await get(port, "127.0.0.2") == (200, b"127.0.0.2")  # room made by closing the idlest
        for _, writer in held:
            writer.close()


async def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: object) -> None:
    app = App()
    guard = GuardLimits(per_client_connections=10, per_client_requests=3, trusted_proxies=("127.0.0.1",))
    async with served(app, guard) as port:
        # Through the proxy: each client has its own share of requests in flight.
        held = [asyncio.create_task(get(port, "127.0.0.1", "/hold", "203.0.113.5")) for _ in range(3)]
        await until(lambda: app.holding == 3, "three requests in flight")
        assert await get(port, "127.0.0.1", "/", "203.0.113.5") == (503, b"")
        assert await get(port, "127.0.0.1", "/", "203.0.113.9") == (200, b"203.0.113.9")
        # Not from the proxy: X-Forwarded-For is ignored, a rotating one does not give more shares.
        spoofed = [asyncio.create_task(get(port, "127.0.0.3", "/hold", f"198.51.100.{n}")) for n in range(3)]
        await until(lambda: app.holding == 6, "three more in flight")
        assert await get(port, "127.0.0.3", "/", "198.51.100.77") == (503, b"")
        assert await get(port, "127.0.0.4", "/", "198.51.100.77") == (200, b"127.0.0.4")
        # The proxy's own connections are not capped by address (its limit_conn does that).
        idle = [await connect(port, "127.0.0.1") for _ in range(20)]
        assert await get(port, "127.0.0.1", "/", "203.0.113.10") == (200, b"203.0.113.10")
        app.release.set()
        assert [await t for t in held + spoofed] == [(200, b"203.0.113.5")] * 3 + [(200, b"127.0.0.3")] * 3
        for _, writer in idle:
            writer.close()

"""WeChat callback latency under load (issue 5: answer within 5 s every time, p99 target < 100 ms).

Starts the real `outreach-bot serve` process with the WeChat channel against a fake WeChat API on
127.0.0.1, then sends N signed callbacks (text reports from distinct residents, half of them in AES
safe mode) with C in flight at once over bare keep-alive connections, and prints p50/p90/p99/max
callback latency, callbacks answered per second, how many answers were passive replies, the CPU the
server spent per callback during the burst, and cases stored per second (the conversation core
handles the stored messages after the answers); on SQLite and on PostgreSQL.

Run from the repository root:
    .venv/bin/python bench/wechat_callbacks.py [--n 2000] [--concurrency 200]
        [--backend sqlite|postgres|both] [--workers 1] [--profile FILE]
``--workers N`` runs ``serve --workers N`` (N processes sharing the port and the database).
``--profile FILE`` records the server with py-spy (``pip install py-spy``) during the burst only, as
collapsed stacks (``-f raw``); py-spy itself takes CPU, so the figures of a profiled run are lower.
PostgreSQL is the server at OUTREACH_TEST_PG_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test);
a scratch database is created and dropped. The client shares the machine with the server: note the
load average printed with the figures, and rerun when something else was busy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import fake_wechat as fw  # noqa: E402
from bench.support import wechat_payloads as wx  # noqa: E402
from bench.support.scratch_db import scratch_postgres  # noqa: E402

EXE = shutil.which("outreach-bot", path=str(Path(sys.executable).parent))
PG_URL = os.environ.get("OUTREACH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")

COMMUNITY = """\
community: {name: 压测社区, timezone: Asia/Shanghai}
grids:
  - code: G1
    name: 第一网格
    buildings: ["1-12", "A座"]
    places: [东门, 幸福路, 农贸市场]
    leader: li
    workers:
      - {staff: zhang, categories: [poster, garbage]}
      - {staff: wang, categories: [mosquito, pests, sewage]}
staff:
  - {id: zhang, name: 张伟, role: worker, wechat: oZhang0001}
  - {id: wang, name: 王芳, role: worker, wechat: oWang0001}
  - {id: li, name: 李娜, role: leader}
  - {id: chen, name: 陈静, role: admin}
"""

WARMUP = 20  # reports sent one at a time before the burst

PROBLEMS = [
    "{b}号楼楼道里贴满了小广告",
    "{b}号楼门口垃圾堆了好几天没人清",
    "{b}号楼后面有一大片积水，蚊子很多",
    "{b}号楼地下室有老鼠",
    "{b}号楼下水道堵了，污水漫出来",
]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children alive now (Linux /proc; 0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == pid:
                        pids.append(int(entry))
    for one in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def database(backend: str, folder: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        return
    async with scratch_postgres("outreach_bench") as url:
        yield url


async def prepare(db_url: str, config: Path) -> None:
    """Create the schema and load the community before the server starts: with ``--workers`` the
    processes would otherwise race to create the tables of a new database."""
    from bot.app import load_into
    from storage.database import create_engine
    from storage.migrate import upgrade

    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        await load_into(engine, config)
    finally:
        await engine.dispose()


async def count_cases(db_url: str) -> int:
    from sqlalchemy import func, select

    from handlers.cases.models import Case
    from storage.database import create_engine

    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(Case))).scalar() or 0)
    finally:
        await engine.dispose()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return status, await reader.readexactly(length)


async def wait_healthy(
    http: httpx.AsyncClient, url: str, server: subprocess.Popen[bytes], folder: Path, deadline: float
) -> None:
    while True:
        try:
            if (await http.get(url)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit(f"server did not start:\n{(folder / 'server.log').read_text()}")
        await asyncio.sleep(0.1)


async def run(backend: str, n: int, concurrency: int, workers: int, profile: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = folder / "community.yaml"
        config.write_text(COMMUNITY, encoding="utf-8")
        fake = fw.FakeWeChat(wx.APP_ID, wx.APP_SECRET).start()
        async with database(backend, folder) as db_url:
            await prepare(db_url, config)
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
            env.update(
                OUTREACH_DATABASE_URL=db_url,
                OUTREACH_CONFIG=str(config),
                OUTREACH_LOG_LEVEL="WARNING",
                OUTREACH_WECHAT_TOKEN=wx.TOKEN,
                OUTREACH_WECHAT_APP_ID=wx.APP_ID,
                OUTREACH_WECHAT_APP_SECRET=wx.APP_SECRET,
                OUTREACH_WECHAT_AES_KEY=wx.AES_KEY,
                OUTREACH_WECHAT_COMPAT_MODE="1",  # the bench mixes plaintext and encrypted callbacks
                OUTREACH_WECHAT_API_URL=fake.url,
                # The whole platform's servers, from this one address: not capped like one client.
                OUTREACH_MAX_CONNECTIONS_PER_CLIENT="100000",
                OUTREACH_MAX_REQUESTS_PER_CLIENT="100000",
            )
            command = [EXE] if EXE else [sys.executable, "-m", "bot.cli"]
            log = (folder / "server.log").open("wb")
            server = subprocess.Popen(
                [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                env=env,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            url = f"http://127.0.0.1:{port}/wechat"
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            try:
                async with httpx.AsyncClient(timeout=30, limits=limits) as http:
                    deadline = time.monotonic() + 60
                    await wait_healthy(http, f"http://127.0.0.1:{port}/healthz", server, folder, deadline)
                    # The workers write once, so their customer-service window is open.
                    for worker in ("oZhang0001", "oWang0001"):
                        signed = wx.sign(wx.text(worker, "任务"))
                        await http.post(url, params=signed.params, content=signed.body)
                    # Warm up as a server that has been running would be (imports, the classifier,
                    # the access token, connection pools): a few reports, one at a time.
                    rng = random.Random(5)
                    for i in range(WARMUP):
                        text = rng.choice(PROBLEMS).format(b=rng.randint(1, 12))
                        signed = wx.sign(wx.text(f"oWarm{i:04d}{uuid.uuid4().hex[:6]}", text), aes=i % 2 == 1)
                        await http.post(url, params=signed.params, content=signed.body)
                    while await count_cases(db_url) < WARMUP and time.monotonic() < deadline + 120:
                        await asyncio.sleep(0.1)
                    await asyncio.sleep(1.0)  # the outbox sends what the warm-up produced

                    requests = []
                    for i in range(n):
                        openid = f"oBench{i:06d}{uuid.uuid4().hex[:6]}"
                        text = rng.choice(PROBLEMS).format(b=rng.randint(1, 12))
                        requests.append(wx.sign(wx.text(openid, text), aes=i % 2 == 1))
                    latencies: list[float] = []
                    statuses: dict[int, int] = {}
                    passive = 0
                    queue: asyncio.Queue[wx.Signed] = asyncio.Queue()
                    for signed in requests:
                        queue.put_nowait(signed)

                    async def connection() -> None:
                        # A bare keep-alive HTTP/1.1 connection: the client must cost next to nothing,
                        # or on a small machine it measures itself (httpx spends ~4 ms CPU a request).
                        nonlocal passive
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                        try:
                            while not queue.empty():
                                signed = queue.get_nowait()
                                query = "&".join(f"{k}={v}" for k, v in signed.params.items())
                                head = (
                                    f"POST /wechat?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    f"Content-Type: text/xml\r\nContent-Length: {len(signed.body)}\r\n\r\n"
                                )
                                start = time.perf_counter()
                                writer.write(head.encode() + signed.body)
                                status, body = await read_response(reader)
                                latencies.append(time.perf_counter() - start)
                                statuses[status] = statuses.get(status, 0) + 1
                                passive += body != b"success"
                        finally:
                            writer.close()

                    before = await count_cases(db_url)
                    spy = None
                    if profile:
                        spy = subprocess.Popen(
                            [
                                str(Path(sys.executable).with_name("py-spy")),
                                "record",
                                "--nonblocking",
                                "--subprocesses",
                                "-r",
                                "200",
                                "-f",
                                "raw",
                                "-o",
                                profile,
                                "-p",
                                str(server.pid),
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                        await asyncio.sleep(1.0)
                    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                    server_cpu = cpu_seconds(server.pid)
                    client_cpu = time.process_time()
                    started = time.perf_counter()
                    await asyncio.gather(*(connection() for _ in range(concurrency)))
                    answered = time.perf_counter() - started
                    server_cpu = cpu_seconds(server.pid) - server_cpu
                    client_cpu = time.process_time() - client_cpu
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)
                        spy.wait()
                    stored = await count_cases(db_url) - before
                    while stored < n and time.perf_counter() - started < 600:
                        if server.poll() is not None:
                            tail = (folder / "server.log").read_text(errors="replace")[-3000:]
                            print(f"{backend}: the server exited:\n{tail}")
                            break
                        await asyncio.sleep(0.2)
                        stored = await count_cases(db_url) - before
                    all_stored = time.perf_counter() - started
            finally:
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                log.close()
                fake.stop()
                if os.environ.get("BENCH_SHOW_LOG"):
                    print((folder / "server.log").read_text(errors="replace")[-5000:])

        ms = sorted(x * 1000 for x in latencies)

        def pct(p: float) -> float:
            return ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))]

        print(
            f"{backend:9s} n={n} concurrency={concurrency} workers={workers}: "
            f"p50 {pct(50):.1f} ms  p90 {pct(90):.1f} ms  p99 {pct(99):.1f} ms  max {ms[-1]:.1f} ms  "
            f"mean {statistics.fmean(ms):.1f} ms"
        )
        print(
            f"{'':9s} all answered in {answered:.2f} s ({n / answered:.0f} callbacks/s), {statuses}, "
            f"passive replies {passive}"
        )
        print(
            f"{'':9s} CPU during the burst: server {server_cpu * 1000 / n:.2f} ms a callback "
            f"({server_cpu / answered * 100:.0f}% of one core, {workers} process(es)), "
            f"client + fake API {client_cpu * 1000 / n:.2f} ms; load average before {load:.2f}"
        )
        print(
            f"{'':9s} cases stored: {stored} in {all_stored:.2f} s = {stored / all_stored:.0f} cases/s "
            "(handled by the conversation core after the answer)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--workers", type=int, default=1, help="server processes (serve --workers)")
    parser.add_argument("--profile", metavar="FILE", help="py-spy collapsed stacks of the burst")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        asyncio.run(run(backend, args.n, args.concurrency, args.workers, args.profile))


if __name__ == "__main__":
    main()

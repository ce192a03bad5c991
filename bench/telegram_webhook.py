"""Reports through the Telegram webhook: throughput and latency from request to stored case.

Starts the fake Bot API (bench/support/) and the real ``outreach-bot serve`` in webhook mode as
a subprocess, then POSTs one report from each of N users (default 1,000) to /telegram/webhook with the
secret header, ``--concurrency`` at a time. The webhook answers only after the turn has committed, so
the request's latency is the time from request to stored case; the run ends when the database holds
all N cases. Runs on SQLite and on PostgreSQL (a fresh database on the server the tests use:
OUTREACH_TEST_PG_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test).

Run from the repository root: python bench/telegram_webhook.py [--backend sqlite|postgres|both]
[--reports 1000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support.fake_telegram import TOKEN, FakeTelegram  # noqa: E402
from handlers.cases.models import Case  # noqa: E402
from storage.database import create_engine  # noqa: E402
from storage.models import OutboxMessage  # noqa: E402

EXE = shutil.which("outreach-bot", path=str(Path(sys.executable).parent)) or "outreach-bot"
PG_URL = os.environ.get("OUTREACH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SECRET = "bench-secret"
WARM_UP = 20
PROBLEMS = ["楼道里贴满了小广告", "门口垃圾没人清", "下水道堵了返臭味", "楼下有积水蚊子多", "垃圾桶边有老鼠"]

# 250 buildings, so that each of the 1,000 reports (building × problem) is new: a second report of
# the same problem at the same building is offered to follow the open case, not acknowledged as one.
COMMUNITY = """
community: {name: 幸福社区, timezone: Asia/Shanghai}
grids:
  - {code: G1, name: 第一网格, buildings: ["1-50"], places: [东门], leader: li,
     workers: [{staff: zhang, categories: [poster, garbage]},
               {staff: wang, categories: [mosquito, pests, sewage]}]}
  - {code: G2, name: 第二网格, buildings: ["51-100"], places: [南门], leader: li,
     workers: [{staff: zhao, categories: [poster, garbage, mosquito, pests, sewage]}]}
  - {code: G3, name: 第三网格, buildings: ["101-150"], places: [西门], leader: zhou,
     workers: [{staff: wu, categories: [poster, garbage, mosquito]},
               {staff: zheng, categories: [pests, sewage]}]}
  - {code: G4, name: 第四网格, buildings: ["151-250"], places: [北门], leader: zhou,
     workers: [{staff: sun, categories: [poster, garbage, mosquito, pests, sewage]}]}
staff:
  - {id: zhang, name: 张伟, role: worker, telegram: 100001}
  - {id: wang, name: 王芳, role: worker, telegram: 100002}
  - {id: zhao, name: 赵磊, role: worker, telegram: 100003}
  - {id: wu, name: 吴强, role: worker, telegram: 100004}
  - {id: zheng, name: 郑敏, role: worker, telegram: 100005}
  - {id: sun, name: 孙丽, role: worker, telegram: 100008}
  - {id: li, name: 李娜, role: leader, telegram: 100006}
  - {id: zhou, name: 周杰, role: leader, telegram: 100007}
  - {id: chen, name: 陈静, role: admin, telegram: 100009}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fresh_pg() -> tuple[str, str]:
    import asyncpg

    u = make_url(PG_URL)
    name = f"outreach_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return u.set(database=name).render_as_string(hide_password=False), name


async def drop_pg(name: str) -> None:
    import asyncpg

    u = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def wait_healthy(
    client: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes], tmp: Path
) -> None:
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {(tmp / 'server.log').read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(url)).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise SystemExit("server did not become healthy")
        await asyncio.sleep(0.1)


async def run(backend: str, reports: int, concurrency: int, tmp: Path) -> None:
    pg_name = None
    if backend == "sqlite":
        db_url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    else:
        db_url, pg_name = await fresh_pg()
    config = tmp / "community.yaml"
    config.write_text(COMMUNITY, encoding="utf-8")
    fake = FakeTelegram().start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update(
        OUTREACH_DATABASE_URL=db_url,
        OUTREACH_CONFIG=str(config),
        OUTREACH_TELEGRAM_TOKEN=TOKEN,
        OUTREACH_TELEGRAM_API_URL=fake.api_url,
        OUTREACH_TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
        OUTREACH_TELEGRAM_WEBHOOK_SECRET=SECRET,
        OUTREACH_LOG_LEVEL="WARNING",
        # The whole platform's servers, from this one address: not capped like one client.
        OUTREACH_MAX_CONNECTIONS_PER_CLIENT="100000",
        OUTREACH_MAX_REQUESTS_PER_CLIENT="100000",
    )
    log = (tmp / "server.log").open("wb")
    process = subprocess.Popen(
        [EXE, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, cwd=tmp, stderr=log
    )
    engine = create_engine(db_url)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(timeout=120, limits=limits)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(client, f"{base}/healthz", process, tmp)

        # The warm-up reports come from the last buildings, the measured ones from the first.
        def report(user: int, building: int, n: int) -> dict[str, object]:
            return fake.message(user, f"{building}号楼{PROBLEMS[n % len(PROBLEMS)]}")

        updates = [report(700000 + n, 250 - n // 5, n) for n in range(WARM_UP)]
        updates += [report(710000 + n, n // 5 + 1, n) for n in range(reports)]
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []
        errors = 0

        async def post(update: dict[str, object], keep: bool) -> None:
            nonlocal errors
            async with gate:
                start = time.perf_counter()
                response = await client.post(
                    f"{base}/telegram/webhook",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                )
                elapsed = time.perf_counter() - start
            if response.status_code != 200:
                errors += 1
            elif keep:
                latencies.append(elapsed)

        await asyncio.gather(*(post(u, False) for u in updates[:WARM_UP]))
        async with engine.connect() as conn:
            before = await conn.scalar(select(func.count()).select_from(Case))
        start = time.perf_counter()
        await asyncio.gather(*(post(u, True) for u in updates[WARM_UP:]))
        while True:
            async with engine.connect() as conn:
                stored = (await conn.scalar(select(func.count()).select_from(Case))) - before
            if stored >= reports or time.perf_counter() - start > 600:
                break
            await asyncio.sleep(0.02)
        total = time.perf_counter() - start
        unsent_acks = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "ack", OutboxMessage.status != "sent")
        )
        while True:  # every resident's acknowledgement delivered (distinct chats: 30/s overall)
            async with engine.connect() as conn:
                if not await conn.scalar(unsent_acks) or time.perf_counter() - start > 900:
                    break
            await asyncio.sleep(0.1)
        acks_done = time.perf_counter() - start
        print(
            f"{backend:8s} {reports} reports from {reports} users, concurrency {concurrency}: "
            f"{stored} cases stored in {total:.2f} s = {stored / total:.0f} reports/s; "
            f"request→stored case p50 {percentile(latencies, 50) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.0f} ms, "
            f"mean {statistics.fmean(latencies) * 1000:.0f} ms; "
            f"non-200: {errors}; all acknowledgements delivered {acks_done:.1f} s after the first request",
            flush=True,
        )
    finally:
        await client.aclose()
        await engine.dispose()
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        fake.stop()
        if pg_name is not None:
            await drop_pg(pg_name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run(backend, args.reports, args.concurrency, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

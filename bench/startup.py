"""Start-up to first answer, and memory, of the bot process (issue #2: < 1.5 s, < 200 MB RSS).

Starts `outreach-bot demo` (console channel, SQLite) as a user would, sends one report on stdin, and
measures the wall time until the bot's first reply is printed, then the process's peak RSS.
Then a breakdown: where the time goes (imports by package, from ``python -X importtime`` of the same
demo run; and the start-up phases timed one by one in a fresh process: imports, jieba's dictionary,
the database upgrade on a new and on an existing database, the community sync).
Run from the repository root: python bench/startup.py [--runs 5] [--no-breakdown] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXE = shutil.which("outreach-bot", path=str(Path(sys.executable).parent)) or "outreach-bot"


CPU: list[float] = []  # user+sys seconds of each demo process, steadier than wall time under load


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(database: Path) -> float:
    env = demo_env(database)
    cpu_before = children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen([EXE, "demo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("3号楼楼道里贴满了小广告\n".encode())
    proc.stdin.flush()
    first_answer = None
    for line in proc.stdout:
        if line.startswith("→".encode()):
            first_answer = time.perf_counter() - start
            break
    proc.stdin.close()
    proc.stdout.read()
    proc.wait()
    CPU.append(children_cpu() - cpu_before)
    assert first_answer is not None, "no answer"
    return first_answer


BYTECODE = True  # --no-bytecode: compile every module from source on each start (no .pyc written)


def demo_env(database: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "OUTREACH_LOG_LEVEL": "WARNING",
    }
    # An installed bot runs from compiled bytecode (pip writes .pyc files; the first start writes the
    # rest). Some shells set PYTHONDONTWRITEBYTECODE, which makes every start compile ~130 modules.
    if BYTECODE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def imports_by_package(database: Path, top: int = 12) -> list[tuple[str, float]]:
    """Self time of every import in one demo start, summed per top-level package (ms)."""
    command = [sys.executable, "-X", "importtime", "-m", "bot.cli", "demo"]
    result = subprocess.run(
        command, input="3号楼楼道里贴满了小广告\n".encode(), capture_output=True, env=demo_env(database)
    )
    totals: dict[str, float] = {}
    for line in result.stderr.decode("utf-8", "replace").splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| \s*(\S+)", line)
        if match:
            package = match.group(2).split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(match.group(1)) / 1000
    return sorted(totals.items(), key=lambda item: -item[1])[:top]


PHASES = r"""
import asyncio, json, sys, time
marks = {}
t = time.perf_counter()
import bot.app, bot.channels.console.repl, handlers.kernel.conversation
marks["imports (bot.app, console, conversation)"] = time.perf_counter() - t
from handlers.community.classify import base_tokenizer
t = time.perf_counter(); base_tokenizer(); marks["jieba dictionary (cached)"] = time.perf_counter() - t
from handlers.community.model import load_community
from handlers.community.store import stored_community, sync_community
from storage.database import create_engine, session_factory
from storage.migrate import upgrade

async def main(url):
    engine = create_engine(url)
    t = time.perf_counter(); await upgrade(engine)
    marks["database upgrade, new database (from the models)"] = time.perf_counter() - t
    t = time.perf_counter(); await upgrade(engine)
    marks["database upgrade, already at head"] = time.perf_counter() - t
    t = time.perf_counter(); community = load_community(None)
    marks["community file parsed"] = time.perf_counter() - t
    sessions = session_factory(engine)
    t = time.perf_counter()
    async with sessions.begin() as session:
        await sync_community(session, community)
    marks["community sync into a new database"] = time.perf_counter() - t
    t = time.perf_counter()
    async with sessions() as session:
        await stored_community(session)
    marks["community read from the database"] = time.perf_counter() - t
    await engine.dispose()
    migrated = create_engine(url.replace(".db", "-migrated.db"))
    t = time.perf_counter(); await upgrade(migrated, from_models=False)
    marks["(for comparison: a new database by every migration)"] = time.perf_counter() - t
    await migrated.dispose()

asyncio.run(main(sys.argv[1]))
print(json.dumps(marks))
"""


def phases(database: Path) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{database}"
    result = subprocess.run([sys.executable, "-c", PHASES, url], capture_output=True, check=True)
    return {name: seconds * 1000 for name, seconds in json.loads(result.stdout).items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile from source on every start (no .pyc cache)"
    )
    args = parser.parse_args()
    global BYTECODE
    BYTECODE = not args.no_bytecode
    with tempfile.TemporaryDirectory() as tmp:
        one_run(Path(tmp) / "warm-up.db")  # writes the bytecode cache, as the first start after install does
        CPU.clear()
        fresh = [one_run(Path(tmp) / f"fresh{i}.db") for i in range(args.runs)]
        fresh_cpu = CPU[-args.runs :]
        warm_db = Path(tmp) / "warm.db"
        one_run(warm_db)
        warm = [one_run(warm_db) for _ in range(args.runs)]
        warm_cpu = CPU[-args.runs :]
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"start-up to first answer, new database (migrate, load sample): "
        f"median {statistics.median(fresh):.2f} s, max {max(fresh):.2f} s, "
        f"CPU (user+sys, whole run) median {statistics.median(fresh_cpu):.2f} s"
    )
    print(
        f"start-up to first answer, existing database: "
        f"median {statistics.median(warm):.2f} s, max {max(warm):.2f} s, "
        f"CPU median {statistics.median(warm_cpu):.2f} s   (target < 1.5 s)"
    )
    print(f"peak RSS of the bot process: {rss_mb:.0f} MB   (target < 200 MB)")
    if args.no_breakdown:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        warm_db = Path(tmp) / "warm.db"
        one_run(warm_db)
        print("\nimports by package (self time, one demo start on an existing database):")
        for package, ms in imports_by_package(warm_db):
            print(f"  {package:<24} {ms:7.0f} ms")
        print("\nstart-up phases (one fresh process):")
        for name, ms in phases(Path(tmp) / "phases.db").items():
            print(f"  {name:<44} {ms:7.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

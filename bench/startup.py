"""Start-up to first answer, and memory, of the bot process (issue #2: < 1.5 s, < 200 MB RSS).

Starts `outreach-bot demo` (console channel, SQLite) as a user would, sends one report on stdin, and
measures the wall time until the bot's first reply is printed, then the process's peak RSS.
Run from the repository root: python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXE = shutil.which("outreach-bot", path=str(Path(sys.executable).parent)) or "outreach-bot"


def one_run(database: Path) -> float:
    env = {
        **os.environ,
        "OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "OUTREACH_LOG_LEVEL": "WARNING",
    }
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
    assert first_answer is not None, "no answer"
    return first_answer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = [one_run(Path(tmp) / f"fresh{i}.db") for i in range(args.runs)]
        warm_db = Path(tmp) / "warm.db"
        one_run(warm_db)
        warm = [one_run(warm_db) for _ in range(args.runs)]
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"start-up to first answer, new database (migrate, load sample): "
        f"median {statistics.median(fresh):.2f} s, max {max(fresh):.2f} s"
    )
    print(
        f"start-up to first answer, existing database: "
        f"median {statistics.median(warm):.2f} s, max {max(warm):.2f} s   (target < 1.5 s)"
    )
    print(f"peak RSS of the bot process: {rss_mb:.0f} MB   (target < 200 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

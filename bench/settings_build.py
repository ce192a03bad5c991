"""What the settings tree costs at start-up (issue #14: one tree, the environment read once).

In a fresh process: the time to import ``bot.settings`` (pydantic-settings, the channel registry, the
features' section models), the first build of the tree (pydantic-settings' sources set up, the
environment and a .env file read) and the median of later builds. Prints figures; asserts nothing.
Run from the repository root: python bench/settings_build.py [--builds 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import json, sys, time
t0 = time.perf_counter()
from bot.settings import load_settings
t1 = time.perf_counter()
load_settings()
t2 = time.perf_counter()
builds = []
for _ in range(int(sys.argv[1])):
    s = time.perf_counter()
    load_settings()
    builds.append(time.perf_counter() - s)
print(json.dumps({"import": t1 - t0, "first": t2 - t1, "builds": builds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes (the import is timed once each)")
    args = parser.parse_args()
    imports, firsts, builds = [], [], []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(args.builds)], capture_output=True, text=True, check=True
        ).stdout
        figures = json.loads(out)
        imports.append(figures["import"])
        firsts.append(figures["first"])
        builds.extend(figures["builds"])
    ms = 1000.0
    print(f"import bot.settings: median {statistics.median(imports) * ms:.1f} ms over {args.runs} processes")
    print(f"first build of the tree: median {statistics.median(firsts) * ms:.2f} ms")
    print(f"later builds: median {statistics.median(builds) * ms:.2f} ms over {len(builds)} builds")


if __name__ == "__main__":
    main()

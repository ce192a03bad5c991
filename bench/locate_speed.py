"""Speed of ``Locator.locate`` on a 25–40 character report naming a building, a unit and a place.

Target: under 50 µs a call (measured at a few µs). CPU time of this process, best of three, so that
waiting for a core on a shared machine is not counted. This was a timed assert in
tests/test_location.py; timing belongs here, where a loaded machine cannot fail the test suite.
Run from the repository root: python bench/locate_speed.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers.location import GridArea, Locator, parse_buildings

TEXT = "您好，3号楼2单元楼道里全是小广告，东门那边也有，麻烦处理一下"
TARGET = 50e-6  # seconds a call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    locator = Locator(
        [
            GridArea.from_config("G1", ["1-6", "A座"], ["东门", "幸福路"]),
            GridArea.from_config("G2", ["7-12", "B栋"], ["农贸市场", "东门菜市场"]),
            GridArea("G3", parse_buildings(["十三号楼"]), ("KFC", "A座大堂")),
        ]
    )
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(args.runs):
            locator.locate(TEXT)
        best = min(best, (time.process_time() - start) / args.runs)
    verdict = "ok" if best < TARGET else "SLOWER THAN THE TARGET"
    print(f"locate: {best * 1e6:.1f} µs a call (target < {TARGET * 1e6:.0f} µs): {verdict}")
    return 0 if best < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

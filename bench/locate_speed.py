"""Location speed: microseconds per `Locator.locate` call on a typical 30-character report, sample community.

Run from the repository root: python bench/locate_speed.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from handlers.community.model import load_community  # noqa: E402

TEXT = "您好，3号楼2单元楼道里全是小广告，东门那边也有，麻烦处理一下"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    locator = load_community(None).locator
    best = min(timeit.repeat(lambda: locator.locate(TEXT), number=args.runs, repeat=5)) / args.runs
    print(f"locate: {best * 1e6:.1f} µs per call (best of 5 × {args.runs}; {len(TEXT)} characters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

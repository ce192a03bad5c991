"""Building codes (一楼一码): what signing and verifying a scene costs, and one poster.

A scan verifies its scene inside the resident's turn: the shape is checked, the HMAC compared, and the
hash looked up in the community's table of buildings and places (built once per community). The
script prints, for a community of N buildings and places (grids of 20 buildings and 2 places), the
time to build that table, verifications per second (good, forged, malformed) and the time to draw
one A5 poster. CPU time (``time.process_time``), so a busy machine changes the figures less.

Run from the repository root:
    python bench/qr_scenes.py [--buildings 200 2000 9000] [--rounds 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers.community.model import parse_community
from handlers.community.scenes import sign, targets, targets_by_hash, verify

SECRET = b"bench-secret-0123456789abcdef"


def community(buildings: int) -> object:
    grids = []
    for g in range(max(1, buildings // 20)):
        low = g * 20 + 1
        grids.append(
            {
                "code": f"G{g + 1}",
                "name": f"第{g + 1}网格",
                "buildings": [f"{low}-{low + 19}"],
                "places": [f"广场{g + 1}", f"路口{g + 1}"],
            }
        )
    return parse_community({"community": {"name": "测试社区"}, "grids": grids, "staff": []})


def per_second(action: object, rounds: int) -> float:
    start = time.process_time()
    for _ in range(rounds):
        action()  # type: ignore[operator]
    spent = time.process_time() - start
    return rounds / spent if spent else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buildings", type=int, nargs="+", default=[200, 2000, 9000])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    print(
        f"{'buildings':>9} {'targets':>8} {'table ms':>9} {'good/s':>9} {'forged/s':>9} {'malformed/s':>11}"
    )
    for n in args.buildings:
        c = community(n)
        start = time.process_time()
        found = targets(c)  # type: ignore[arg-type]
        targets_by_hash(c)  # type: ignore[arg-type]
        table_ms = (time.process_time() - start) * 1000
        scene = sign(SECRET, "HPL", found[len(found) // 2])
        forged = scene[:-1] + ("A" if scene[-1] != "A" else "B")
        good, bad, junk = (
            per_second(lambda s=s, c=c: verify(SECRET, s, c, "HPL"), args.rounds)  # type: ignore[misc]
            for s in (scene, forged, "x" * 500)
        )
        print(f"{n:>9} {len(found):>8} {table_ms:>9.1f} {good:>9.0f} {bad:>9.0f} {junk:>11.0f}")
    try:
        from bot.qr_posters import NoFont, Poster, find_cjk_font, render_png

        font = find_cjk_font()
    except (ImportError, NoFont):
        print("poster: no CJK font (apt-get install fonts-noto-cjk)")
        return
    poster = Poster("和平里社区", "3号楼", "http://weixin.qq.com/q/02abcdefghijklmnop", "微信扫一扫", scene)
    start = time.process_time()
    png = render_png(poster, font)
    print(f"poster: {(time.process_time() - start) * 1000:.0f} ms CPU, {len(png) / 1024:.0f} KiB PNG")


if __name__ == "__main__":
    main()

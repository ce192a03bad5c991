"""A district file at scale (no database): N communities of ~10 grids, ~30 buildings, places and staff
each, with realistic Chinese names. Prints, at each N: `parse s` (parse_street of the loaded document),
`load s` (load_street of the YAML file: reading and YAML too), `first route s` (building every
community's classifier and locator, as a server does, and the first route), `Street.named_in` and
`Street.locate` per message, routing a message (`route_in_street`: community, classify, locate, route)
per message, and the process's peak RSS so far. The per-message figures must not grow with N (the names
are indexed, not looped; communities with the same categories share one classifier).

Run from the repository root: python bench/street_scale.py [--sizes 30 100 300] [--runs 300]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
import timeit
from functools import partial
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from handlers.community.street import load_street, parse_street  # noqa: E402
from handlers.community.street_route import route_in_street  # noqa: E402

_FIRST_WORDS = (
    "和平 幸福 光明 锦绣 金桥 银杏 翠湖 紫荆 丹桂 青松 长青 松鹤 梅园 兰亭 竹溪 荷塘 桃源 杏林 柳岸 枫林 "
    "清河 白云 碧水 星河 朝阳 晨曦 东风 新华 建设 胜利 团结 友谊 振兴 华苑 康乐 福寿 安居 嘉禾 瑞祥 "
    "景泰 永安 泰和 鸿福 仁和 春晖 秋实 明珠 望江 临湖 滨江 天一 双桥 三元 五福 七星 九龙 百合 千禧 万象"
)
_FIRST = _FIRST_WORDS.split(" ")
_TAIL = ("里", "苑", "园", "新村", "花园", "家园")
_SURNAMES = (
    "王李张刘陈杨黄赵周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红"
_GATES = ("东门", "南门", "西门", "北门")
_PLACES = (
    "幼儿园",
    "菜场",
    "健身广场",
    "老年活动室",
    "垃圾站",
    "停车场",
    "卫生服务站",
    "快递柜",
    "车棚",
    "公厕",
)
_CATEGORIES = ("poster", "garbage", "mosquito", "pests", "sewage", "other")
GRIDS = 10
MESSAGES = (
    "{name}3号楼楼道里全是小广告，麻烦处理一下",
    "{alias}那边垃圾桶满了好几天没人收",
    "{place}门口有一大滩积水，蚊子很多",
    "5号楼下水道堵了，污水都冒出来了",  # names no community: asked
    "谢谢你们，垃圾已经清理干净了",
)


def _code(i: int) -> str:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "C" + letters[i // len(letters) % len(letters)] + letters[i % len(letters)] + str(i // 576 or "")


def community_name(i: int) -> tuple[str, str]:
    """The i-th community's name and its everyday alias (锦绣园社区, 锦绣园)."""
    first = _FIRST[i % len(_FIRST)]
    tail = _TAIL[(i // len(_FIRST)) % len(_TAIL)]
    core = first + tail
    return core + "社区", core


def person(i: int) -> str:
    return _SURNAMES[i % len(_SURNAMES)] + _GIVEN[(i * 7) % len(_GIVEN)] + _GIVEN[(i * 11 + 3) % len(_GIVEN)]


def community(i: int) -> dict[str, Any]:
    name, alias = community_name(i)
    code = _code(i)
    grids, staff = [], []
    for g in range(GRIDS):
        leader, workers = f"{code.lower()}l{g}", [f"{code.lower()}w{g}a", f"{code.lower()}w{g}b"]
        places = [_GATES[g]] if g < len(_GATES) else []
        places.append(f"{alias}{_PLACES[g]}" if g == 0 else _PLACES[g])
        grids.append(
            {
                "code": f"G{g + 1}",
                "name": f"第{g + 1}网格",
                "buildings": [f"{g * 3 + 1}-{g * 3 + 3}"],
                "places": places,
                "leader": leader,
                "workers": [
                    {"staff": workers[0], "categories": list(_CATEGORIES[:3])},
                    {"staff": workers[1], "categories": list(_CATEGORIES[3:])},
                ],
            }
        )
        for k, sid in enumerate((leader, *workers)):
            n = i * 100 + g * 3 + k
            staff.append(
                {
                    "id": sid,
                    "name": person(n),
                    "role": "leader" if k == 0 else "worker",
                    "telegram": 10**8 + n,
                }
            )
    staff.append({"id": f"{code.lower()}adm", "name": person(i * 100 + 99), "role": "admin"})
    return {"code": code, "name": name, "aliases": [alias], "grids": grids, "staff": staff}


def district(n: int) -> dict[str, Any]:
    return {
        "street": {"name": "示范区", "timezone": "Asia/Shanghai"},
        "admins": [
            {"id": "qu1", "name": "区管理员", "role": "admin", "telegram": 9000001},
            {"id": "qu2", "name": "区网格长", "role": "leader", "wechat": "oQu2"},
        ],
        "communities": [community(i) for i in range(n)],
    }


def messages(n: int) -> list[str]:
    out = []
    for i in (0, n // 2, n - 1):
        name, alias = community_name(i)
        values = {"name": name, "alias": alias, "place": f"{alias}{_PLACES[0]}"}
        out += [m.format(**values) for m in MESSAGES]
    return out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def per_call(fn: Any, texts: list[str], runs: int) -> float:
    """Microseconds per call over the texts (best of 5)."""
    best = min(timeit.repeat(lambda: [fn(t) for t in texts], number=runs, repeat=5))
    return best / runs / len(texts) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 100, 300])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    print(
        f"{'N':>4} {'parse s':>8} {'load s':>7} {'first route s':>13} {'named_in µs':>11} {'locate µs':>9} "
        f"{'route µs':>8} {'RSS MB':>7}"
    )
    for n in args.sizes:
        data = district(n)
        gc.collect()
        start = time.perf_counter()
        street = parse_street(data)
        parsed = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "district.yaml"
            path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
            start = time.perf_counter()
            load_street(path)
            loaded = time.perf_counter() - start
        texts = messages(n)
        start = time.perf_counter()
        for c in street:  # every community's classifier and locator, as a server builds them
            c.classifier, c.locator  # noqa: B018
        route_in_street(street, texts[0])
        warm = time.perf_counter() - start
        named = per_call(street.named_in, texts, args.runs)
        located = per_call(street.locate, texts, args.runs)
        routed = per_call(partial(route_in_street, street), texts, max(1, args.runs // 10))
        figures = f"{named:>11.1f} {located:>9.1f} {routed:>8.0f} {_rss_mb():>7.0f}"
        print(f"{n:>4} {parsed:>8.2f} {loaded:>7.2f} {warm:>13.2f} {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

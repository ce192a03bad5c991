"""An audience and a time as an admin writes them in a broadcast command: "广播 G1 第二网格 #guardians …",
"定时发送 12 2026-12-01 09:00"; and an audience described back in words (grids and tags, never people).
The broadcasts chat feature (``chat.py``) and its CLI read them here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import Any

from handlers.broadcasts.audience import Audience, AudienceError
from handlers.community.location import find_buildings
from handlers.community.model import Community
from handlers.kernel.inbound import match_form
from messages import render

_TIME = re.compile(r"^(?P<date>\d{4}-\d{1,2}-\d{1,2})?[\sT]*(?P<hm>\d{1,2}[:：]\d{2})?$")
# Between the words naming the audience: "广播 G1，明天停水", "广播 第一网格、第二网格 …".
_SEP = re.compile(r"[\s,，、;；:：]+")
_EVERYONE = frozenset({"全体", "全体居民", "所有人", "所有居民", "全部", "全部居民", "全社区", "all"})
# Something meant as a grid that names none: "G9", "第九网格", "9网格".
_GRID_LIKE = re.compile(r"^(?:[a-z]{1,3}\d{1,3}|.{0,8}网格)$", re.I)
_ORDINAL = re.compile(r"^第?(?P<n>[一二三四五六七八九十\d]{1,3})网格$")
_CN_DIGITS = "零一二三四五六七八九"


def _cn_number(n: int) -> str:
    if n < 10:
        return _CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _CN_DIGITS[tens]) + "十" + (_CN_DIGITS[ones] if ones else "")


def _from_cn(value: str) -> int | None:
    if value.isdigit():
        return int(value)
    if value == "十":
        return 10
    if "十" in value:
        tens, _, ones = value.partition("十")
        t = _CN_DIGITS.index(tens) if tens else 1
        return t * 10 + (_CN_DIGITS.index(ones) if ones else 0)
    return _CN_DIGITS.index(value) if len(value) == 1 and value in _CN_DIGITS else None


def grid_aliases(community: Community) -> dict[str, str]:
    """Every way an admin names a grid → its code: the code, the full name, the name without its
    bracketed part, that part, and the ordinal forms (第一网格, 一网格, 1网格, 第1网格)."""
    out: dict[str, str] = {}
    for grid in community.grids.values():
        names = {grid.code, grid.name}
        full = match_form(grid.name)
        base, _, rest = full.partition("(")
        names |= {full, base.strip()}
        if rest.rstrip(")").strip():
            names.add(rest.rstrip(")").strip())
        if m := _ORDINAL.match(base.strip()):
            n = _from_cn(m.group("n"))
            if n is not None:
                for number in (str(n), _cn_number(n)):
                    names |= {f"第{number}网格", f"{number}网格"}
        for name in names:
            out.setdefault(match_form(name).strip().lower(), grid.code)
    return out


def grid_names(community: Community) -> dict[str, str]:
    return {code: grid.name for code, grid in community.grids.items()}


def known_grids_text(community: Community) -> str:
    return "、".join(f"{g.code} {g.name}" for g in community.grids.values())


def describe(audience: Audience, names: dict[str, str] | None = None) -> str:
    """The audience in words: grids (by name when ``names`` are given) and tags only, never people."""
    where = render("bc.audience.communities", communities="、".join(audience.communities))
    if audience.communities and audience.everyone:
        return where + render("bc.audience.everyone")
    if audience.everyone:
        return render("bc.audience.everyone")
    parts = [where] if audience.communities else []
    if audience.grids:
        named = [f"{names[g]}（{g}）" if names and g in names else g for g in audience.grids]
        parts.append(render("bc.audience.grids", grids="、".join(named)))
    if audience.tags:
        parts.append(render("bc.audience.tags", tags="、".join(f"#{t}" for t in audience.tags)))
    return render("bc.audience.join").join(parts)


def parse_when(value: str, now: datetime, tz: Any) -> datetime | None:
    """ "2026-12-01 09:00", "2026-12-01" (09:00), "09:00" (the next one), or ISO with an offset."""
    value = value.strip().replace("：", ":")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is not None and parsed.tzinfo is not None:
        return parsed
    m = _TIME.match(value)
    if m is None or not (m.group("date") or m.group("hm")):
        return None
    try:
        hour, minute = (int(x) for x in (m.group("hm") or "09:00").split(":"))
        clock = time(hour, minute)
        local_now = now.astimezone(tz)
        if m.group("date"):
            y, mo, d = (int(x) for x in m.group("date").split("-"))
            return datetime(y, mo, d, clock.hour, clock.minute, tzinfo=tz)
    except ValueError:
        return None
    candidate = local_now.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
    return candidate if candidate > local_now else candidate + timedelta(days=1)


def local_text(when: datetime, tz: Any) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def community_words(communities: Iterable[Any]) -> dict[str, str]:
    """How a 街道 admin names a community in a broadcast → its code: the code, the name, the aliases."""
    out: dict[str, str] = {}
    for c in communities:
        for word in (c.code, c.name, *c.config.community.aliases):
            out[match_form(word).lower()] = c.code
    return out


def split_audience(
    rest: str, community: Community, communities: Mapping[str, str] | None = None
) -> tuple[Audience, str]:
    """The leading words naming the audience, then the text as written: "G1 第二网格 #guardians 周六义诊"
    → (G1, G2, guardians). Raises ``AudienceError`` for an audience that names nothing we know (a
    mistyped grid, a building) or for no audience at all: "everyone" is only ever explicit (全体).
    ``communities`` (a 街道 admin's: ``community_words``) lets the words name communities too ("广播
    HPL 锦绣园 …": their residents)."""
    folded = match_form(rest)
    aliases = grid_aliases(community)
    named = communities or {}
    chosen: list[str] = []
    grids: list[str] = []
    tags: list[str] = []
    everyone = False
    position = 0
    while True:
        sep = _SEP.match(folded, position)
        start = sep.end() if sep else position
        end = _SEP.search(folded, start)
        stop = end.start() if end else len(folded)
        word = folded[start:stop]
        if not word:
            position = start
            break
        key = word.lower()
        if key in _EVERYONE:
            everyone = True
        elif key in named:
            chosen.append(named[key])
        elif key in aliases:
            grids.append(aliases[key])
        elif word.startswith("#") and len(word) > 1:
            tags.append(word[1:])
        elif (found := find_buildings(word)) and found[0].text == word:
            grid = community.locator.grid_for_building(found[0].key)
            if grid is None:
                raise AudienceError("bc.unknown_building", building=word, known=known_grids_text(community))
            raise AudienceError(
                "bc.building_audience", building=word, code=grid, grid=community.grids[grid].name
            )
        elif _GRID_LIKE.match(word):
            raise AudienceError("bc.unknown_grid", code=word, known=known_grids_text(community))
        else:
            position = start
            break
        position = stop
    if everyone and (grids or tags):
        raise AudienceError("bc.everyone_and_more")
    if not everyone and not grids and not tags and not chosen:
        raise AudienceError("bc.no_audience", known=known_grids_text(community))
    return Audience.of(grids, tags, chosen), rest[position:].strip()

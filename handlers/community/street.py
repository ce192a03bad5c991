"""A 街道 (or district): the communities one deployment serves, read from a 街道 file or from a
single-community file (which is a street of one, unchanged).

A 街道 file::

    street: {name: 和平街道, timezone: Asia/Shanghai}
    admins: [{id: zhao, name: 赵强, role: admin, telegram: 1001}]   # 街道-level staff
    communities:
      - code: HPL
        name: 和平里社区
        aliases: [和平里, 和平里小区]
        grids: [...]            # exactly as in a community file
        staff: [...]
      - code: JXY
        file: communities/jinxiu.yaml   # a community file of its own, relative to this one

Each community is validated exactly as a community file is (``parse_community``), so everything that
reads one community (routing, working time, categories) works per community unchanged. The 街道's
admins are staff of every community: they see and act across all of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from handlers.community.model import (
    DEFAULT_CODE,
    Community,
    CommunityConfigError,
    Problem,
    load_community,
    parse_community,
)
from handlers.kernel.textnorm import fold
from handlers.kernel.yaml_text import load_yaml
from messages import render

# Keys of a community entry in a 街道 file that belong to `community:` in a community file.
_INFO_KEYS = ("name", "timezone", "code", "aliases")


@dataclass(frozen=True)
class Street:
    name: str
    timezone: str
    communities: tuple[Community, ...]
    admins: tuple[str, ...] = ()  # the 街道-level staff ids (also staff of every community)
    single_file: bool = False  # read from a single-community file
    source: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def _by_code(self) -> dict[str, Community]:
        return {c.code.upper(): c for c in self.communities}

    def get(self, code: str) -> Community | None:
        """The community with this code (any letter case), or None."""
        return self._by_code.get(code.strip().upper())

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.communities)

    @property
    def only(self) -> Community | None:
        """The community, when the deployment serves exactly one."""
        return self.communities[0] if len(self.communities) == 1 else None

    def __iter__(self) -> Iterator[Community]:
        return iter(self.communities)

    def __len__(self) -> int:
        return len(self.communities)

    @cached_property
    def _names(self) -> tuple[tuple[str, Community], ...]:
        """Every way the file names a community (name, aliases, the name without 社区/小区), folded,
        longest first so that 和平里小区 wins over 和平里; a name two communities share names neither."""
        found: dict[str, set[str]] = {}
        for c in self.communities:
            for name in (c.name, *c.config.community.aliases):
                for form in _forms(name):
                    found.setdefault(form, set()).add(c.code)
        unique = [
            (form, self._by_code[next(iter(codes)).upper()])
            for form, codes in found.items()
            if len(codes) == 1
        ]
        return tuple(sorted(unique, key=lambda pair: -len(pair[0])))

    def named_in(self, text: str) -> Community | None:
        """The community a message names ("和平里小区3号楼…"), or None when it names none or several."""
        folded = fold(text)
        named = {c.code for form, c in self._names if form in folded}
        return self.get(named.pop()) if len(named) == 1 else None

    def of_staff(self, staff_id: str) -> tuple[Community, ...]:
        """The communities this staff member works in (all of them for a 街道 admin)."""
        return tuple(c for c in self.communities if staff_id in c.staff)


_SUFFIXES = ("社区", "小区", "居委会", "居委")


def _forms(name: str) -> set[str]:
    folded = fold(name.strip())
    forms = {folded}
    for suffix in _SUFFIXES:
        if folded.endswith(suffix) and len(folded) - len(suffix) >= 2:
            forms.add(folded[: -len(suffix)])
    return {f for f in forms if len(f) >= 2}


def is_street_file(data: Any) -> bool:
    return isinstance(data, Mapping) and ("communities" in data or "street" in data)


def parse_street(data: Any, base: Path | None = None) -> Street:
    """A Street from a loaded 街道 file or community file; raises CommunityConfigError listing every
    problem, each with its path (``communities[1].grids[0].leader``)."""
    if not is_street_file(data):
        community = parse_community(data)
        return Street(
            name=community.name,
            timezone=community.config.community.timezone,
            communities=(community,),
            single_file=True,
            source=data,
        )
    return _parse_street_file(data, base or Path("."))


def _parse_street_file(data: Mapping[str, Any], base: Path) -> Street:
    problems: list[Problem] = []
    unknown = sorted(set(data) - {"street", "admins", "communities"})
    problems += [Problem(key, render("config.unknown_key")) for key in unknown]
    info = data.get("street") or {}
    if not isinstance(info, Mapping) or not str(info.get("name") or "").strip():
        problems.append(Problem("street.name", render("config.missing_key")))
        info = {}
    timezone = str(info.get("timezone") or "Asia/Shanghai")
    admins = data.get("admins") or []
    if not isinstance(admins, list):
        problems.append(Problem("admins", render("config.not_a_list")))
        admins = []
    entries = data.get("communities")
    if not isinstance(entries, list) or not entries:
        problems.append(Problem("communities", render("config.not_a_list")))
        entries = []
    communities: list[Community] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"communities[{i}]"
        code = str(entry.get("code") or "").upper() if isinstance(entry, Mapping) else ""
        if code and code in seen:
            problems.append(Problem(f"{where}.code", render("config.duplicate_code", code=entry["code"])))
            continue
        seen.setdefault(code, i)
        try:
            document = _community_document(entry, base, timezone, admins)
            community = parse_community(document)
        except CommunityConfigError as exc:
            problems += [
                Problem(f"{where}.{p.key}" if p.key != "(file)" else where, p.message) for p in exc.problems
            ]
            continue
        communities.append(community)
    if problems:
        raise CommunityConfigError(problems)
    return Street(
        name=str(info["name"]).strip(),
        timezone=timezone,
        communities=tuple(communities),
        admins=tuple(str(a.get("id")) for a in admins if isinstance(a, Mapping)),
        source=data,
    )


def _community_document(entry: Any, base: Path, timezone: str, admins: list[Any]) -> dict[str, Any]:
    """A community entry as a community file's document: its own file (``file:``) or inline, with the
    街道's timezone as the default and the 街道's admins added to its staff."""
    if not isinstance(entry, Mapping):
        raise CommunityConfigError([Problem("(file)", render("config.not_a_mapping"))])
    if "file" in entry:
        document = _read_file(base / str(entry["file"]))
        document.setdefault("community", {})
        for key in _INFO_KEYS:
            if key in entry:
                document["community"][key] = entry[key]
        extra = sorted(set(entry) - {"file", *_INFO_KEYS})
        if extra:
            raise CommunityConfigError([Problem(extra[0], render("config.unknown_key"))])
    else:
        document = {k: v for k, v in entry.items() if k not in _INFO_KEYS}
        document["community"] = {k: entry[k] for k in _INFO_KEYS if k in entry}
    document["community"].setdefault("timezone", timezone)
    if not document["community"].get("code"):
        raise CommunityConfigError([Problem("code", render("config.missing_key"))])
    staff = list(document.get("staff") or [])
    listed = {s.get("id") for s in staff if isinstance(s, Mapping)}
    staff += [a for a in admins if isinstance(a, Mapping) and a.get("id") not in listed]
    document["staff"] = staff
    return document


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommunityConfigError(
            [Problem(str(path), render("config.unreadable", error=exc.strerror))]
        ) from None
    except UnicodeDecodeError:  # a photo or a spreadsheet chosen by mistake: said as a community file says it
        raise CommunityConfigError([Problem(str(path), render("config.not_text"))]) from None
    except yaml.YAMLError:
        raise CommunityConfigError([Problem(str(path), render("config.bad_yaml"))]) from None
    if not isinstance(data, dict):
        raise CommunityConfigError([Problem(str(path), render("config.not_a_mapping"))])
    return data


def load_street(path: str | Path | None = None) -> Street:
    """The 街道 (or the single community) from a YAML file, or the sample community."""
    if path is None:
        community = load_community(None)
        return Street(community.name, community.config.community.timezone, (community,), single_file=True)
    data = _read_file(Path(path))
    return parse_street(data, Path(path).parent)


__all__ = ["DEFAULT_CODE", "Street", "is_street_file", "load_street", "parse_street"]

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

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from handlers.community.config_checks import (
    CommunityConfigError,
    Problem,
    StaffLedger,
    known_timezone,
    parse_yaml,
    read_text,
)
from handlers.community.model import (
    DEFAULT_CODE,
    Community,
    StaffConfig,
    _Strict,
    _validate_all,
    load_community,
    parse_community,
)
from handlers.community.street_names import Located, NameIndex
from handlers.kernel.textnorm import fold
from messages import render

# Keys of a community entry in a 街道 file that belong to `community:` in a community file.
_INFO_KEYS = ("name", "timezone", "code", "aliases")
DEFAULT_TIMEZONE = "Asia/Shanghai"


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
    def _index(self) -> NameIndex:
        return NameIndex(
            ((c.code, c.name, c.config.community.aliases) for c in self.communities),
            ((c.code, _place_names(c)) for c in self.communities) if len(self.communities) > 1 else (),
        )

    def named_in(self, text: str) -> Community | None:
        """The community a message names ("和平里小区3号楼…", "和平里那边", 錦繡園, 锦秀园), or None when it
        names none or several."""
        code = self._index.names(text).code
        return self.get(code) if code is not None else None

    def locate(self, text: str) -> Located:
        """Which community a message is about: the communities it names (one, or several: ask which),
        else the community of a place or named estate only that community has ("星星幼儿园"); ``codes``
        empty when the message does not say. ``Located.code`` is the one community's code, or None."""
        return self._index.locate(text)

    def of_staff(self, staff_id: str) -> tuple[Community, ...]:
        """The communities this staff member works in (all of them for a 街道 admin)."""
        return tuple(c for c in self.communities if staff_id in c.staff)


def _place_names(community: Community) -> list[str]:
    """The places, place aliases and named estates (紫荆苑 of 紫荆苑8号楼) a community's file lists."""
    names: list[str] = []
    for grid in community.config.grids:
        names += [*grid.places, *grid.place_aliases]
    for buildings in community.buildings.values():
        names += sorted(buildings.zone_names())
    return names


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


class StreetInfo(_Strict):
    name: str = Field(min_length=1)
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_timezone(value)


class StreetHead(_Strict):
    """A 街道 file's own keys; each entry of ``communities`` is read as a community file is."""

    street: StreetInfo | None = None
    admins: list[StaffConfig] = Field(default_factory=list)  # type: ignore[valid-type]
    communities: list[Any] = Field(default_factory=list)


def _parse_street_file(data: Mapping[str, Any], base: Path) -> Street:
    # the communities are read one by one below (not copied here with the rest)
    head, problems = _validate_all({k: v for k, v in data.items() if k != "communities"}, StreetHead)
    head = head or StreetHead()
    if head.street is None and not any(p.key.split(".")[0] == "street" for p in problems):
        problems.append(Problem("street.name", render("config.missing_key")))
    entries = data.get("communities")
    if not isinstance(entries, list) or not entries:
        problems = [p for p in problems if p.key != "communities"]
        problems.append(Problem("communities", render("config.not_a_list")))
        entries = []
    timezone = head.street.timezone if head.street is not None else DEFAULT_TIMEZONE
    ledger = StaffLedger()
    for k, admin in enumerate(head.admins):
        problems += ledger.person(f"admins[{k}]", admin) + ledger.accounts(f"admins[{k}]", admin)
    admins = [a.model_dump(mode="json", exclude_none=True) for a in head.admins]
    communities: list[Community] = []
    codes: set[str] = set()  # upper-case codes seen
    names: dict[str, str] = {}  # folded name or alias → code
    for i, entry in enumerate(entries):
        where, file = f"communities[{i}]", shown_of(entry)
        added: list[int] = []
        try:
            document, added = _community_document(entry, base, timezone, admins)
            code = str(document["community"]["code"])
            if code.upper() in codes:
                problems.append(Problem(f"{where}.code", render("config.duplicate_code", code=code)))
                continue
            codes.add(code.upper())
            community = parse_community(document)
        except CommunityConfigError as exc:
            problems += [_within(where, file, p, added) for p in exc.problems]
            continue
        problems += _name_problems(where, community, names)
        for j, person in enumerate(community.config.staff[len(added) :]):
            key = f"{_prefix(where, file)}staff[{j}]"
            problems += ledger.person(key, person) + ledger.accounts(key, person)
        communities.append(community)
    if problems:
        raise CommunityConfigError(_unique(problems))
    assert head.street is not None
    return Street(
        name=head.street.name,
        timezone=timezone,
        communities=tuple(communities),
        admins=tuple(a.id for a in head.admins),
        source=data,
    )


def shown_of(entry: Any) -> str | None:
    return str(entry["file"]) if isinstance(entry, Mapping) and "file" in entry else None


def _within(where: str, file: str | None, problem: Problem, added: Sequence[int] = ()) -> Problem:
    """A community's problem at its key in the 街道 file: ``communities[1].grids[0].leader``, or for a
    community kept in its own file ``communities[1](communities/jinxiu.yaml).grids[0].leader``; the
    街道's admins put ahead of its staff (``added``) are shown as ``admins[0]``."""
    if problem.key == "(file)":
        return Problem(where, problem.message)
    if problem.key in {"file", "code"} or problem.key.startswith("file."):
        return Problem(f"{where}.{problem.key}", problem.message)

    def staff_key(found: re.Match[str]) -> str:
        index = int(found.group(1))
        if index < len(added):
            return f"admins[{added[index]}]"
        return f"{_prefix(where, file)}staff[{index - len(added)}]"

    key = _STAFF_KEY.sub(staff_key, problem.key)
    key = key if _STAFF_KEY.match(problem.key) else f"{_prefix(where, file)}{key}"
    return Problem(key, _STAFF_KEY.sub(staff_key, problem.message))


_STAFF_KEY = re.compile(r"(?<![\w.])staff\[(\d+)\]")


def _prefix(where: str, file: str | None) -> str:
    return f"{where}({file})." if file else f"{where}."


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _name_problems(where: str, community: Community, names: dict[str, str]) -> list[Problem]:
    """A name or alias another community of the file already has."""
    problems: list[Problem] = []
    info = community.config.community
    listed = [("name", info.name), *((f"aliases[{k}]", a) for k, a in enumerate(info.aliases))]
    for key, name in listed:
        folded = fold(name.strip()).lower()
        owner = names.setdefault(folded, community.code)
        if owner != community.code:
            problems.append(
                Problem(f"{where}.{key}", render("config.community_name_taken", name=name, other=owner))
            )
    return problems


def _community_document(
    entry: Any, base: Path, timezone: str, admins: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[int]]:
    """A community entry as a community file's document: its own file (``file:``) or inline, with the
    街道's timezone as the default and the 街道's admins (not listed in it) put ahead of its staff: the
    document, and the indices in ``admins`` of those put there."""
    if not isinstance(entry, Mapping):
        raise CommunityConfigError([Problem("(file)", render("config.not_a_mapping"))])
    if "file" in entry:
        document = _read_community_file(base, entry["file"])
        info = document.setdefault("community", {})
        if not isinstance(info, dict):
            raise CommunityConfigError([Problem("community", render("config.not_a_mapping"))])
        info.update({key: entry[key] for key in _INFO_KEYS if key in entry})
        extra = sorted(set(entry) - {"file", *_INFO_KEYS})
        if extra:
            raise CommunityConfigError([Problem(str(extra[0]), render("config.unknown_key"))])
    else:
        document = {k: v for k, v in entry.items() if k not in _INFO_KEYS}
        document["community"] = {k: entry[k] for k in _INFO_KEYS if k in entry}
    document["community"].setdefault("timezone", timezone)
    if not document["community"].get("code"):
        raise CommunityConfigError([Problem("code", render("config.missing_key"))])
    staff = document.get("staff") or []
    if isinstance(staff, list):
        listed = {s.get("id") for s in staff if isinstance(s, Mapping)}
        # The 街道's admins go first, so that a community's own entry is the one a clash is shown at.
        added = [k for k, a in enumerate(admins) if a["id"] not in listed]
        document["staff"] = [*(admins[k] for k in added), *staff]
        return document, added
    return document, []


def _read_community_file(base: Path, name: Any) -> dict[str, Any]:
    """A community's own file, relative to the 街道 file: one problem at ``file`` when it cannot be
    read, is not YAML, or is itself a 街道 file."""
    try:
        data = parse_yaml(read_text(base / str(name)), key="file")
    except CommunityConfigError as exc:
        message = exc.problems[0].message
        raise CommunityConfigError(
            [Problem("file", render("config.community_file", file=name, problem=message))]
        ) from None
    if not isinstance(data, dict):
        problem = render("config.not_a_mapping")
        raise CommunityConfigError(
            [Problem("file", render("config.community_file", file=name, problem=problem))]
        )
    if is_street_file(data):
        problem = render("config.nested_street")
        raise CommunityConfigError(
            [Problem("file", render("config.community_file", file=name, problem=problem))]
        )
    return data


def load_street(path: str | Path | None = None) -> Street:
    """The 街道 (or the single community) from a YAML file, or the sample community."""
    if path is None:
        community = load_community(None)
        return Street(community.name, community.config.community.timezone, (community,), single_file=True)
    data = parse_yaml(read_text(path))
    if not isinstance(data, dict):
        raise CommunityConfigError([Problem("(file)", render("config.not_a_mapping"))])
    return parse_street(data, Path(path).parent)


__all__ = ["DEFAULT_CODE", "Located", "Street", "is_street_file", "load_street", "parse_street"]

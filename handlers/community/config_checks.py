"""What the community file and the 街道 file check alike, in one place: how a problem is reported, how a
file is read, the time zone, and who each staff id and chat account is (``StaffLedger``: one file, or a
whole 街道 across its communities). ``model`` (the community file) and ``street`` (the 街道 file) both
use these; neither copies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from handlers.kernel.channel_keys import IDENTITY_KEYS
from handlers.kernel.yaml_text import load_yaml
from messages import render


@dataclass(frozen=True)
class Problem:
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class CommunityConfigError(ValueError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def known_timezone(value: str) -> str:
    """The time zone as written, or ValueError (a pydantic validator's message) when it is unknown."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(render("config.bad_timezone", value=value)) from None
    return value


def read_text(path: str | Path, key: str | None = None) -> str:
    """A configuration file's text; an unreadable or non-UTF-8 file is one problem at ``key`` (the path
    by default)."""
    where = key or str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommunityConfigError(
            [Problem(where, render("config.unreadable", error=exc.strerror))]
        ) from None
    except UnicodeDecodeError:
        raise CommunityConfigError([Problem(where, render("config.not_text"))]) from None


def parse_yaml(text: str, key: str | None = None) -> Any:
    """A YAML document; bad YAML is one problem at ``key`` (by default the line it was found on)."""
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = key or (f"line {mark.line + 1}" if mark is not None else "(file)")
        raise CommunityConfigError([Problem(where, render("config.bad_yaml"))]) from None


@dataclass(frozen=True)
class _Person:
    name: str
    role: str
    where: str  # the key that first named them: staff[3], admins[0], communities[2].staff[5]


class StaffLedger:
    """Who each staff id is and which staff id each chat account belongs to, as entries are added: a
    staff id named twice must be the same person (name and role), and a chat account (telegram id,
    wechat openid, wecom user id) belongs to one staff id. Problems never show the account itself."""

    def __init__(self) -> None:
        self._people: dict[str, _Person] = {}
        self._accounts: dict[tuple[str, str], tuple[str, str]] = {}  # (channel, account) → (id, where)
        self._own: dict[tuple[str, str], str] = {}  # (id, channel) → account, as first named

    def person(self, where: str, staff: Any) -> list[Problem]:
        """``staff`` (a StaffConfig) named at ``where``: the same person as wherever its id was named."""
        role = str(getattr(staff.role, "value", staff.role))
        first = self._people.setdefault(staff.id, _Person(staff.name, role, where))
        if (first.name, first.role) == (staff.name, role):
            return []
        key = f"{where}.name" if first.name != staff.name else f"{where}.role"
        return [
            Problem(
                key,
                render(
                    "config.staff_differs", id=staff.id, other=first.where, name=first.name, role=first.role
                ),
            )
        ]

    def accounts(self, where: str, staff: Any) -> list[Problem]:
        """``staff``'s chat accounts: none bound to another staff id, none unlike its own elsewhere."""
        problems: list[Problem] = []
        for channel in IDENTITY_KEYS:
            value = getattr(staff, channel, None)
            if value is None or value == "":
                continue
            account = (channel, str(value))
            owner, owner_where = self._accounts.setdefault(account, (staff.id, where))
            own = self._own.setdefault((staff.id, channel), account[1])
            if owner != staff.id:
                problems.append(
                    Problem(f"{where}.{channel}", render("config.account_taken", id=owner, other=owner_where))
                )
            elif own != account[1]:
                problems.append(
                    Problem(
                        f"{where}.{channel}", render("config.account_differs", id=staff.id, channel=channel)
                    )
                )
        return problems

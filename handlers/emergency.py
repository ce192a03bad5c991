"""Safety first: a report that names a danger (gas, fire or smoke, a live wire, someone trapped in a
lift, someone fallen or injured, something about to fall) opens an urgent case, alerts the grid leader
and the admins at once, and tells the resident which emergency number to call before anything else.

The classifier sets ``Classification.urgent`` itself (the classify branch's ``handlers/urgent.py``);
until that is merged, and for any classification that leaves it unset, ``detect`` reads the same kinds
of danger (gas, fire, electric, lift, fall, collapse, water) from ``data/emergency.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from handlers.classify import OTHER, Classification
from handlers.lifecycle import record
from handlers.location import LocationMatch
from handlers.privacy import mask_text
from handlers.textnorm import fold
from messages import has, render
from storage.models import ActorType, Case

if TYPE_CHECKING:
    from handlers.community import Community, GridConfig
    from handlers.features import ChatContext


@dataclass(frozen=True)
class Danger:
    kind: str
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None


@dataclass(frozen=True)
class DangerTable:
    numbers: Mapping[str, str]  # kind → the number to call first
    negations: tuple[str, ...]
    dangers: tuple[Danger, ...]


@cache
def table() -> DangerTable:
    raw: dict[str, Any] = yaml.safe_load(
        resources.files("handlers").joinpath("data", "emergency.yaml").read_text(encoding="utf-8")
    )
    dangers = tuple(
        Danger(
            kind=str(item["kind"]),
            pattern=re.compile("|".join(f"(?:{p})" for p in item["patterns"])),
            unless=re.compile(item["unless"]) if item.get("unless") else None,
        )
        for item in raw["kinds"]
    )
    numbers = {str(k): str(v) for k, v in raw["numbers"].items()}
    for danger in dangers:
        if danger.kind not in numbers:
            raise ValueError(f"emergency.yaml: kind {danger.kind} has no number")
    return DangerTable(numbers, tuple(raw.get("negations") or ()), dangers)


def emergency_keys() -> frozenset[str]:
    """The kinds of danger a community's ``emergency:`` mapping may give a number for."""
    return frozenset(table().numbers)


def _negated(folded: str, start: int, negations: tuple[str, ...]) -> bool:
    before = folded[max(0, start - 4) : start]
    return any(before.endswith(n) or before.rstrip("的了").endswith(n) for n in negations)


def detect(text: str) -> str | None:
    """The kind of danger the text names ("gas", "fire", "electric", "lift", "fall", "collapse",
    "water"), or None."""
    folded = fold(text).lower()
    data = table()
    for danger in data.dangers:
        if danger.unless is not None and danger.unless.search(folded):
            continue
        for match in danger.pattern.finditer(folded):
            if not _negated(folded, match.start(), data.negations):
                return danger.kind
    return None


def flag(classification: Classification | None) -> Classification | None:
    """The classification with its danger set, when the text names one. A danger is always a report
    (of the category found, else "other") and is never a question back to the resident."""
    if classification is None:
        return None
    kind = classification.urgent or detect(classification.text)
    if kind is None:
        return classification
    category = classification.category or OTHER
    return replace(
        classification,
        urgent=kind,
        category=category,
        categories=classification.categories or (category,),
        intent=None,
        ask=False,
    )


FALLBACK_NUMBER = "110"


def emergency_number(community: Community, kind: str) -> str:
    """The number the resident should call for this kind of danger: the community's own (its gas
    company's repair line, its lift rescue line) before the national default."""
    own = community.config.emergency.get(kind)
    return str(own) if own else table().numbers.get(kind, FALLBACK_NUMBER)


def _text(name: str, kind: str, **params: str) -> str:
    """A kind's own wording, or the general one for a kind this catalogue does not know yet."""
    key = f"urgent.{name}.{kind}"
    return render(key if has(key) else f"urgent.{name}.default", **params)


def _leaders(community: Community, grid: GridConfig | None) -> list[str]:
    if grid is None:  # nobody knows yet whose grid it is: every leader hears it now
        return community.leaders()
    return [grid.leader] if grid.leader else []


async def raise_alarm(ctx: ChatContext, case: Case, kind: str, location: LocationMatch | None) -> None:
    """Mark the case urgent, tell the resident what to do and whom to call, and alert the grid
    leader (every leader while the place is unknown) and every admin now, not after routing."""
    turn = ctx.turn
    case.urgent = True  # also shortens its time limit (limits.urgent_factor)
    record(
        turn.session,
        case,
        action="urgent",
        actor_type=ActorType.SYSTEM,
        actor_id=None,
        at=turn.now,
        note=kind,
        data={"kind": kind},
    )
    danger = _text("kind", kind)
    number = emergency_number(turn.community, kind)
    # Without the community's own line (its gas company's), say where to find it.
    own = kind in turn.community.config.emergency
    call = f"{kind}_default" if not own and has(f"urgent.call.{kind}_default") else kind
    ctx.reply(
        render(
            "urgent.resident",
            number=case.id,
            danger=danger,
            advice=_text("advice", kind),
            phone=_text("call", call, phone=number),
        ),
        kind="ack",
        case_id=case.id,
    )
    grid = turn.community.grids.get(location.grid) if location is not None and location.grid else None
    where = (
        render("urgent.where", where=location.matched) if location is not None else render("location.unknown")
    )
    text = render(
        "urgent.staff_alarm",
        number=case.id,
        danger=danger,
        location=f"{where}（{grid.name}）" if grid is not None else where,
        text=mask_text(case.text),  # a staff card: no phone or ID numbers, no health conditions
        phone=number,
    )
    for staff_id in dict.fromkeys([*_leaders(turn.community, grid), *turn.community.admins()]):
        await turn.tell_staff(staff_id, text, case_id=case.id)

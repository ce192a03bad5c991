"""Safety first: a report that names a danger (gas, fire or smoke, a live wire, someone trapped in a
lift, someone fallen or injured, something about to fall) opens an urgent case, alerts the grid leader
and the admins at once, and tells the resident which emergency number to call before anything else.

The classifier finds the danger (``Classification.urgent``, from ``handlers/community/urgent.py`` and
``data/urgent.yaml``, which also hold each kind's national number); this module acts on it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from handlers.cases import numbers
from handlers.cases.lifecycle import record
from handlers.cases.models import ActorType, Case
from handlers.community.classify import OTHER, Classification
from handlers.community.location import LocationMatch
from handlers.community.urgent import kind_info, kind_keys
from handlers.kernel.privacy import mask_text
from messages import has, render

if TYPE_CHECKING:
    from handlers.community.model import Community, GridConfig
    from handlers.kernel.features import ChatContext


def emergency_keys() -> frozenset[str]:
    """The kinds of danger a community's ``emergency:`` mapping may give a number for."""
    return kind_keys()


def flag(classification: Classification | None) -> Classification | None:
    """The classification with its danger set, when the text names one. A danger is always a report
    (of the category found, else "other") and is never a question back to the resident."""
    if classification is None:
        return None
    kind = classification.urgent
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
    if own:
        return str(own)
    info = kind_info(kind)
    return info.number if info is not None else FALLBACK_NUMBER


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
            number=numbers.label(ctx.turn, case),
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
        number=numbers.label(ctx.turn, case),
        danger=danger,
        location=f"{where}（{grid.name}）" if grid is not None else where,
        text=mask_text(case.text),  # a staff card: no phone or ID numbers, no health conditions
        phone=number,
    )
    for staff_id in dict.fromkeys([*_leaders(turn.community, grid), *turn.community.admins()]):
        await turn.tell_staff(staff_id, text, case_id=case.id)

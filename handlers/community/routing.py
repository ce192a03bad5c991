"""Who handles a report: grid × category → worker; else the grid leader; else the admins' triage queue.

A located report of no known category (``other``: a street light, a lift, a leak) is handled the same
way: the grid's worker configured for ``other``, else the grid leader (属地管理: the grid owns whatever
happens in it). Only an unlocated or uncovered one goes to triage.

Pure: the only outside fact it needs is how many open cases each worker has (for load balancing), which
the caller passes in. The CLI ``route`` command passes none and gets the first listed worker.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from handlers.community.classify import OTHER, Classification
from handlers.community.location import LocationMatch
from handlers.community.model import Community


class RouteReason(enum.StrEnum):
    WORKER = "worker"  # the grid's worker for the category
    LEADER = "leader"  # no worker for the category in the grid: its leader
    NO_GRID = "no_grid"  # nothing located: ask the resident where it is
    OUTSIDE = "outside"  # a building or place no grid covers: triage
    UNCLASSIFIED = "unclassified"  # a report of no known category nobody in the grid takes: triage
    NO_STAFF = "no_staff"  # the grid has neither worker nor leader: triage
    NOT_A_REPORT = "not_a_report"


TRIAGE_REASONS = frozenset({RouteReason.OUTSIDE, RouteReason.UNCLASSIFIED, RouteReason.NO_STAFF})


@dataclass(frozen=True)
class Route:
    grid: str | None
    assignee: str | None
    reason: RouteReason
    location: LocationMatch | None

    @property
    def to_triage(self) -> bool:
        return self.reason in TRIAGE_REASONS


def pick_worker(community: Community, grid: str, category: str, open_counts: Mapping[str, int]) -> str | None:
    """The grid's worker for the category with the fewest open cases; config order breaks ties."""
    candidates = [w.staff for w in community.grids[grid].workers if category in w.categories]
    if not candidates:
        return None
    return min(candidates, key=lambda staff: (open_counts.get(staff, 0), candidates.index(staff)))


def route(
    community: Community,
    classification: Classification,
    location: LocationMatch | None,
    open_counts: Mapping[str, int] | None = None,
) -> Route:
    grid = location.grid if location is not None else None
    if classification.category is None:
        return Route(grid, None, RouteReason.NOT_A_REPORT, location)
    if location is None:
        return Route(None, None, RouteReason.NO_GRID, None)
    if grid is None:
        return Route(None, None, RouteReason.OUTSIDE, location)
    handler = grid_handler(community, grid, classification.category, open_counts or {})
    if handler is not None:
        return Route(grid, handler[0], handler[1], location)
    reason = RouteReason.UNCLASSIFIED if classification.category == OTHER else RouteReason.NO_STAFF
    return Route(grid, None, reason, location)


def grid_handler(
    community: Community, grid: str, category: str, open_counts: Mapping[str, int]
) -> tuple[str, RouteReason] | None:
    """Who in the grid handles the category (``other`` included): its worker for it, else its leader."""
    worker = pick_worker(community, grid, category, open_counts)
    if worker is not None:
        return worker, RouteReason.WORKER
    leader = community.grids[grid].leader
    if leader is not None:
        return leader, RouteReason.LEADER
    return None


def route_message(community: Community, text: str) -> tuple[Classification, LocationMatch | None, Route]:
    """A message as the chat first routes it, with nobody's open cases counted yet: what
    ``outreach-bot route`` prints and bench/route_accuracy.py scores."""
    result = community.classifier.classify(text)
    location = community.locator.locate(text) if result.is_report else None
    return result, location, route(community, result, location)

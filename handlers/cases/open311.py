"""Cases as Open311 GeoReport v2 service requests (the export shape; not our state machine).

``jurisdiction_id`` is the case's community's code (a 街道 serves several jurisdictions).
``status`` is only ``open`` or ``closed``: resolved, confirmed and closed-without-a-fix are all
``closed``, told apart by ``status_notes`` (in Chinese). Times are ISO 8601 with the community's
offset; ``expected_datetime`` is the time-limit deadline. ``service_name`` and ``description`` are
standard request fields too.

An export leaves the community's hands, so the resident's words and the staff notes are masked
(``handlers.kernel.privacy.mask_text``: phone and ID numbers, health words); there is no unmasked variant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers.cases.models import OPEN_STATUSES, Case, CaseStatus
from handlers.community.model import Community
from handlers.kernel.privacy import mask_text
from messages import render

FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "lat",
    "long",
    "jurisdiction_id",
)


def is_open(case: Case) -> bool:
    return case.status in OPEN_STATUSES


def status_notes(case: Case) -> str:
    status = CaseStatus(case.status)
    note = case.resolution_note or ""
    if status == CaseStatus.RESOLVED:
        return render("open311.notes.resolved", note=note)
    if status == CaseStatus.CONFIRMED:
        return render("open311.notes.confirmed", note=note)
    if status == CaseStatus.CLOSED:
        if case.close_reason == "not_ours":
            return render("open311.notes.closed_not_ours", referral=case.referral or "")
        if case.close_reason == "duplicate":
            return render("open311.notes.closed_duplicate", original=case.duplicate_of or "")
        if case.close_reason == "invalid":
            return render("open311.notes.closed_invalid")
        return render("open311.notes.closed")
    label = render(f"status.{status.value}")
    if case.reopen_count:
        return render("open311.notes.reopened", status=label, times=case.reopen_count)
    return label


def service_request(case: Case, community: Community) -> dict[str, Any]:
    tz = community.timezone

    def iso(moment: datetime | None) -> str | None:
        return moment.astimezone(tz).isoformat(timespec="seconds") if moment is not None else None

    code = case.category_code or "other"
    grid = community.grids.get(case.grid_code) if case.grid_code else None
    finished = None
    if case.status == CaseStatus.RESOLVED:
        finished = case.resolved_at
    elif not is_open(case):
        finished = case.closed_at  # confirmed or closed (a reopening leaves an old closed_at behind)
    return {
        "service_request_id": str(case.id),
        "status": "open" if is_open(case) else "closed",
        "status_notes": mask_text(status_notes(case)),
        "service_name": community.category_names.get(code) or render("category.other"),
        "service_code": code,
        "description": mask_text(case.text),
        "agency_responsible": grid.name if grid else community.name,
        "requested_datetime": iso(case.created_at),
        # For a closed request the spec makes this the closing time.
        "updated_datetime": iso(finished or case.updated_at),
        "expected_datetime": iso(case.due_at),
        "address": case.location_text,
        "lat": case.latitude,
        "long": case.longitude,
        # Open311's jurisdiction: the case's community, by its code (HPL), so a 街道's requests can
        # be told apart and fetched per community (export --jurisdiction HPL)
        "jurisdiction_id": community.code,
    }

"""The words of a broadcast's progress and final report, for the admin's chat and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from messages import has, render

if TYPE_CHECKING:
    from handlers.broadcasts.models import Broadcast
    from handlers.broadcasts.service import Progress


def bar(done: int, total: int, width: int = 10) -> str:
    filled = width if total <= 0 else min(width, round(width * done / total))
    return "█" * filled + "░" * (width - filled)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return render("bc.eta_unknown")
    seconds = max(0, round(seconds))
    if seconds < 60:
        return render("bc.seconds", n=seconds)
    if seconds < 3600:
        return render("bc.minutes", n=max(1, round(seconds / 60)))
    return render("bc.hours", h=seconds // 3600, m=(seconds % 3600) // 60)


def progress_text(broadcast_id: int, p: Progress) -> str:
    return render(
        "bc.progress",
        id=broadcast_id,
        bar=bar(p.done, p.total),
        percent=0 if p.total == 0 else int(100 * p.done / p.total),
        sent=p.sent,
        failed=p.failed,
        pending=p.pending,
        total=p.total,
        rate=f"{p.rate:.1f}",
        left=duration(p.seconds_left),
    )


def reasons_text(by_reason: dict[str, int]) -> str:
    parts = []
    for reason, n in sorted(by_reason.items(), key=lambda kv: -kv[1]):
        label = render(f"bc.reason.{reason}") if has(f"bc.reason.{reason}") else reason
        parts.append(render("bc.reason_item", reason=label, count=n))
    return "、".join(parts) if parts else render("bc.reason_none")


def report_text(broadcast: Broadcast, report: dict[str, Any]) -> str:
    return render(
        "bc.report",
        id=broadcast.id,
        total=report.get("total", 0),
        sent=report.get("sent", 0),
        failed=report.get("failed", 0),
        unreachable=report.get("unreachable", 0),
        reasons=reasons_text(report.get("by_reason", {})),
    )

"""``outreach-bot broadcasts``: list the broadcasts (``--format json``: one object per line, stable
field names), show one report (``--show ID``), list who could not be reached (``--unreached ID``:
resident number, channel, account, reason; no names) or cancel one (``--cancel ID``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import Any

from handlers.broadcasts.cli_env import CliEnv, print_json, utc_now
from messages import render


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _row(b: Any) -> dict[str, Any]:
    return {
        "id": b.id,
        "status": b.status,
        "source": b.source,
        "created_by": b.created_by,
        "audience": b.audience,
        "created_at": _iso(b.created_at),
        "scheduled_at": _iso(b.scheduled_at),
        "started_at": _iso(b.started_at),
        "finished_at": _iso(b.finished_at),
        "estimate": b.estimate,
        "total": b.total,
        "sent": b.sent,
        "failed": b.failed,
        "unreachable": (b.report or {}).get("unreachable"),
        "text": b.text,
    }


async def _broadcasts(args: argparse.Namespace) -> int:
    async with CliEnv(args) as env:
        if args.cancel is not None:
            return await _cancel_broadcast(env, args.cancel)
        if args.unreached is not None:
            return await _unreached(env, args)
        if args.show is not None:
            return await _show_broadcast(env, args)
        return await _list_broadcasts(env, args)


async def _cancel_broadcast(env: CliEnv, number: int) -> int:
    from handlers.broadcasts import service
    from handlers.broadcasts.models import Broadcast

    async with env.sessions.begin() as session:
        broadcast = await session.get(Broadcast, number)
        if broadcast is None:
            print(render("bc.not_found", id=number), file=sys.stderr)
            return 1
        if broadcast.status not in service.CANCELLABLE:
            status = render(f"bc.status.{broadcast.status}")
            print(render("bc.wrong_state", id=broadcast.id, status=status), file=sys.stderr)
            return 1
        withdrawn = await service.cancel(session, broadcast, utc_now())
    print(render("bc.cli.cancelled", id=number, withdrawn=withdrawn))
    return 0


async def _unreached(env: CliEnv, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from handlers.broadcasts import service
    from storage.models import OutboxMessage, OutboxStatus

    async with env.sessions() as session:
        rows = (
            await session.execute(
                select(
                    OutboxMessage.dedup_key,
                    OutboxMessage.channel,
                    OutboxMessage.recipient,
                    OutboxMessage.last_error,
                )
                .where(
                    service.rows_of(session, args.unreached),
                    OutboxMessage.status == OutboxStatus.FAILED,
                )
                .order_by(OutboxMessage.id)
            )
        ).all()
    out = []
    for key, channel, recipient, error in rows:
        reason = service.reason_of(error)
        if reason not in service.UNREACHABLE and not args.all_failed:
            continue
        who = (key or "").rsplit(":", 1)[-1]
        out.append(
            {
                "resident": int(who[1:]) if who.startswith("r") else None,
                "staff": who[1:] if who.startswith("s") else None,
                "channel": channel,
                "recipient": recipient,
                "reason": reason,
            }
        )
    if args.format == "json":
        for item in out:
            print_json(item)
        return 0
    print(render("bc.cli.unreached_header", id=args.unreached, count=len(out)))
    for item in out:
        print(_unreached_line(item))
    return 0


def _unreached_line(item: dict[str, Any]) -> str:
    from messages import has

    label = render(f"bc.reason.{item['reason']}") if has(f"bc.reason.{item['reason']}") else item["reason"]
    if item["resident"] is not None:
        return render(
            "bc.cli.unreached_line",
            resident=item["resident"],
            channel=item["channel"],
            recipient=item["recipient"],
            reason=label,
        )
    return render(
        "bc.cli.unreached_staff",
        staff=item["staff"],
        channel=item["channel"],
        recipient=item["recipient"],
        reason=label,
    )


async def _show_broadcast(env: CliEnv, args: argparse.Namespace) -> int:
    from handlers.broadcasts import report_text, service
    from handlers.broadcasts.models import Broadcast, BroadcastStatus

    async with env.sessions() as session:
        broadcast = await session.get(Broadcast, args.show)
        if broadcast is None:
            print(render("bc.not_found", id=args.show), file=sys.stderr)
            return 1
        row = _row(broadcast)
        if broadcast.status == BroadcastStatus.SENDING:
            row["progress"] = (await service.progress(session, broadcast.id, utc_now())).to_json()
        else:
            row["report"] = broadcast.report
        if args.format == "json":
            print_json(row)
        elif broadcast.status == BroadcastStatus.DONE:
            print(report_text.report_text(broadcast, broadcast.report))
        elif broadcast.status == BroadcastStatus.SENDING:
            p = await service.progress(session, broadcast.id, utc_now())
            print(report_text.progress_text(broadcast.id, p))
        else:
            print(render(f"bc.status.{broadcast.status}"))
    return 0


async def _list_broadcasts(env: CliEnv, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from handlers.broadcasts import service
    from handlers.broadcasts.audience import Audience
    from handlers.broadcasts.chat import describe, local_text
    from handlers.broadcasts.models import Broadcast, BroadcastStatus

    async with env.sessions() as session:
        query = select(Broadcast).order_by(Broadcast.id.desc()).limit(args.limit)
        if args.status:
            query = query.where(Broadcast.status == args.status)
        rows = (await session.scalars(query)).all()
        # A broadcast being sent: its counters are settled only now and then, so the list shows
        # the outbox's live figures, as --show does.
        live = {
            b.id: await service.progress(session, b.id, utc_now())
            for b in rows
            if b.status == BroadcastStatus.SENDING
        }
    if args.format == "json":
        for b in rows:
            row = _row(b)
            if b.id in live:
                row.update(sent=live[b.id].sent, failed=live[b.id].failed, total=live[b.id].total)
            print_json(row)
        return 0
    if not rows:
        print(render("bc.list_empty"))
        return 0
    tz = env.community.timezone
    for b in rows:
        when = b.finished_at or b.scheduled_at or b.created_at
        print(
            render(
                "bc.list_line",
                id=b.id,
                status=render(f"bc.status.{b.status}"),
                when=local_text(when, tz),
                audience=describe(Audience.from_json(b.audience)),
                sent=live[b.id].sent if b.id in live else b.sent,
                total=live[b.id].total if b.id in live else (b.total or b.estimate or 0),
                text=b.text.replace("\n", " ")[:30],
            )
        )
    return 0


def cmd_broadcasts(args: argparse.Namespace) -> int:
    return asyncio.run(_broadcasts(args))

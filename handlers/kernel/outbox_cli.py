"""``outreach-bot outbox failed`` / ``outreach-bot outbox retry [--id N … | --all]``: the messages the
outbox gave up on, one masked line each, and putting them back in the queue. The kernel's command
line (the outbox is the kernel's), registered by ``bot/cli.py``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from handlers.kernel.clock import utcnow
from handlers.kernel.outbox_admin import failed_rows, retry
from messages import render

T = TypeVar("T")


async def _with_sessions(args: argparse.Namespace, work: Callable[[Any], Awaitable[T]]) -> T:
    from storage.migrate import database

    async with database(args.settings().database_url) as db:
        return await work(db.sessions)


def cmd_failed(args: argparse.Namespace) -> int:
    rows = asyncio.run(_with_sessions(args, lambda sessions: failed_rows(sessions, args.limit)))
    if not rows:
        print(render("outbox.failed_none"))
        return 0
    for row in rows:
        print(
            render(
                "outbox.failed_line",
                id=row.id,
                at=row.created_at.isoformat(timespec="minutes"),
                channel=row.channel,
                recipient=row.recipient,
                kind=row.kind,
                attempts=row.attempts,
                reason=row.reason.replace("\n", " "),
                text=row.preview,
            )
        )
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    ids = None if args.all else list(args.id)
    queued = asyncio.run(_with_sessions(args, lambda sessions: retry(sessions, utcnow(), ids)))
    for row_id in queued:
        print(render("outbox.retry_line", id=row_id))
    missing = sorted(set(ids or ()) - set(queued))
    for row_id in missing:
        print(render("outbox.retry_not_failed", id=row_id), file=sys.stderr)
    if not queued and ids is None:
        print(render("outbox.failed_none"))
    return 1 if missing else 0


def register(subparsers: Any) -> None:
    outbox = subparsers.add_parser("outbox", help="messages the outbox gave up on: list them, retry them")
    actions = outbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    failed = actions.add_parser("failed", help="list failed and unreached messages (masked), newest first")
    failed.add_argument("--limit", type=int, default=200)
    failed.set_defaults(func=cmd_failed)
    retry = actions.add_parser("retry", help="queue failed messages again with a fresh retry budget")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, action="append", help="this row (may be repeated)")
    which.add_argument("--all", action="store_true", help="every failed row except uncertain ones")
    retry.set_defaults(func=cmd_retry)

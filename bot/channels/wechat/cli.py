"""``outreach-bot wechat unreached``: the WeChat messages no allowed path could deliver, for admins."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from handlers.kernel.privacy import mask_text
from messages import render


async def _unreached(database_url: str, limit: int) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from storage.database import create_engine, session_factory
    from storage.migrate import upgrade
    from storage.wechat_models import WeChatUnreached

    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            rows = (
                await session.scalars(
                    select(WeChatUnreached).order_by(WeChatUnreached.id.desc()).limit(limit)
                )
            ).all()
    finally:
        await engine.dispose()
    return [
        {
            "at": r.at.isoformat(),
            "channel": r.channel,
            "openid": r.openid,
            "case": r.case_id,
            "kind": r.kind,
            "reason": r.reason,
            "text": mask_text(r.text),  # an admin's listing: no phone or ID numbers, no health words
        }
        for r in rows
    ]


def _reason(code: str) -> str:
    key = f"wechat.reason.{code}"
    from messages import has

    return render(key) if has(key) else code


def cmd_unreached(args: argparse.Namespace) -> int:
    rows = asyncio.run(_unreached(args.get_settings().database_url, args.limit))
    if args.format == "json":
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return 0
    if not rows:
        print(render("wechat.unreached_none"))
        return 0
    print(render("wechat.unreached_header", count=len(rows)))
    for row in rows:
        first_line = (row["text"].splitlines() or [""])[0][:40]
        print(
            render(
                "wechat.unreached_line",
                at=row["at"][:16].replace("T", " "),
                openid=row["openid"],
                case=row["case"] if row["case"] is not None else "-",
                kind=row["kind"],
                reason=_reason(row["reason"]),
                text=first_line,
            )
        )
    return 0


def register(subparsers: Any, get_settings: Callable[[], Any]) -> None:
    wechat = subparsers.add_parser("wechat", help="WeChat channel tools (messages that reached nobody)")
    actions = wechat.add_subparsers(dest="wechat_command", required=True, metavar="ACTION")
    unreached = actions.add_parser("unreached", help="list WeChat messages no allowed path could deliver")
    unreached.add_argument("--limit", type=int, default=50)
    unreached.add_argument("--format", choices=("text", "json"), default="text")
    unreached.set_defaults(func=cmd_unreached, get_settings=get_settings)

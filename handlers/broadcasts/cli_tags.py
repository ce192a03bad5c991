"""``outreach-bot tags add|remove TAG R12 …`` gives residents (by number, as 我的编号 shows them) a free
tag to broadcast to; ``tags list`` counts them."""

from __future__ import annotations

import argparse
import asyncio
import sys

from handlers.broadcasts.cli_env import CliEnv, print_json, utc_now
from messages import render


async def _tags(args: argparse.Namespace) -> int:
    import re

    from sqlalchemy import delete, func, select

    from handlers.broadcasts.audience import BUILTIN_TAGS, TAG_PATTERN
    from handlers.broadcasts.models import ResidentTag
    from storage.models import Resident

    async with CliEnv(args) as env:
        if args.action == "list":
            async with env.sessions() as session:
                rows = (
                    await session.execute(
                        select(ResidentTag.tag, func.count())
                        .group_by(ResidentTag.tag)
                        .order_by(ResidentTag.tag)
                    )
                ).all()
            if args.format == "json":
                for tag, count in rows:
                    print_json({"tag": tag, "residents": count})
            else:
                for tag, count in rows:
                    print(render("bc.cli.tag_line", tag=tag, count=count))
            return 0
        tag = (args.tag or "").strip().lstrip("#").lower()
        if not tag or not TAG_PATTERN.match(tag) or tag in BUILTIN_TAGS:
            print(render("bc.cli.bad_free_tag", tag=tag, builtin=", ".join(BUILTIN_TAGS)), file=sys.stderr)
            return 2
        numbers = []
        for ref in args.residents:
            m = re.fullmatch(r"[Rr]?(\d{1,9})", ref.strip())
            if m is None:
                print(render("bc.cli.unknown_residents", ids=ref), file=sys.stderr)
                return 2
            numbers.append(int(m.group(1)))
        async with env.sessions.begin() as session:
            known = set(await session.scalars(select(Resident.id).where(Resident.id.in_(numbers))))
            unknown = [f"R{n}" for n in numbers if n not in known]
            if unknown:
                print(render("bc.cli.unknown_residents", ids="、".join(unknown)), file=sys.stderr)
                return 2
            have = set(
                await session.scalars(
                    select(ResidentTag.resident_id).where(
                        ResidentTag.tag == tag, ResidentTag.resident_id.in_(numbers)
                    )
                )
            )
            if args.action == "add":
                session.add_all(
                    ResidentTag(resident_id=n, tag=tag, created_at=utc_now()) for n in sorted(known - have)
                )
                changed = len(known - have)
            else:
                await session.execute(
                    delete(ResidentTag).where(ResidentTag.tag == tag, ResidentTag.resident_id.in_(numbers))
                )
                changed = len(have)
            await session.flush()
            total = await session.scalar(select(func.count()).where(ResidentTag.tag == tag))
        key = "bc.cli.tag_added" if args.action == "add" else "bc.cli.tag_removed"
        print(render(key, tag=tag, changed=changed, total=total))
    return 0


def cmd_tags(args: argparse.Namespace) -> int:
    return asyncio.run(_tags(args))

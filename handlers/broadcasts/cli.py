"""``outreach-bot broadcast`` and ``outreach-bot broadcasts`` (added to bot/cli.py by ``register``).

``broadcast`` shows the audience size and asks to confirm (``--yes`` skips that for scripts,
``--dry-run`` writes nothing), creates the broadcast and writes its outbox rows. Delivery:

* by default the running server (``outreach-bot serve``, another process) sends the rows at each
  platform's limits; this command polls the outbox and draws a progress bar until the report is in
  (``--no-wait`` returns at once);
* with ``--send`` this process also delivers, through the channels configured in the environment
  (the registry's: Telegram, WeChat, WeCom), for deployments where no server runs. Both may run at
  once without duplicates (rows are claimed), but two processes sending to one Telegram bot share its
  rate limit only if each is lowered; prefer one sender.

``--at TIME`` schedules it (community time zone, "2026-12-01 09:00"); the server sends it then.
``broadcasts`` lists the broadcasts (``--format json``: one object per line, stable field names), shows
one report (``--show ID``), lists who could not be reached (``--unreached ID``: resident number,
channel, account, reason; no names) or cancels one (``--cancel ID``). ``tags add|remove TAG R12 …``
gives residents (by number, as 我的编号 shows them) a free tag to broadcast to; ``tags list`` counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time as monotime
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from handlers.broadcasts.config import CliSettings
from handlers.kernel.channel_ports import ChannelDirectory
from handlers.kernel.ports import Delivery
from messages import render

POLL = 0.5  # seconds between progress polls
IDLE_HINT = 60.0  # seconds without progress before suggesting --send


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class _Env:
    """Engine, sessions and community for one command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.settings: CliSettings = args.settings()  # handed in by the composition root
        self.engine: Any = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> _Env:
        from handlers.community.model import load_community
        from handlers.community.store import stored_community, sync_community
        from storage.migrate import database

        db = await self._stack.enter_async_context(database(self.settings.database_url))
        self.engine, self.sessions = db.engine, db.sessions
        async with self.sessions.begin() as session:
            community = await stored_community(session)
            if community is None:  # a new database: the configured (or sample) community file
                community = load_community(self.settings.config)
                await sync_community(session, community)
        self.community = community
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.aclose()


def _text(args: argparse.Namespace) -> str:
    if args.file is not None:
        return Path(args.file).read_text(encoding="utf-8").strip()
    return (args.text or "").strip()


async def _drive(env: _Env, senders: list[Any], mass: Any, stop: asyncio.Event) -> None:
    from handlers.broadcasts import wechat_mass
    from handlers.kernel.outbox import drain

    async def loop(sender: Any) -> None:
        while not stop.is_set():
            if not await drain(env.sessions, sender, settings=env.settings.outbox):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)

    async def mass_loop() -> None:
        while not stop.is_set():
            if not await wechat_mass.drain(env.sessions, mass, _now, settings=env.settings.broadcasts):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)

    tasks = [loop(s) for s in senders]
    if mass is not None:
        tasks.append(mass_loop())
    await asyncio.gather(*tasks)


def _now() -> datetime:
    from storage.models import utcnow

    return utcnow()


class _Bar:
    """The progress line on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last_line = 0.0

    def show(self, broadcast_id: int, p: Any, rate: float, final: bool = False) -> None:
        from handlers.broadcasts.report_text import bar, duration

        left = p.pending / rate if rate > 0 else None
        line = render(
            "bc.cli.progress",
            id=broadcast_id,
            bar=bar(p.done, p.total, 20),
            percent=0 if p.total == 0 else int(100 * p.done / p.total),
            sent=p.sent,
            failed=p.failed,
            pending=p.pending,
            total=p.total,
            rate=f"{rate:.1f}",
            left=duration(left),
        )
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
            sys.stderr.flush()
        elif final or monotime.monotonic() - self.last_line >= 5:
            self.last_line = monotime.monotonic()
            print(line, file=sys.stderr, flush=True)


async def _follow(env: _Env, broadcast_id: int, channels: ChannelDirectory | None) -> dict[str, Any] | None:
    """Wait for the broadcast to finish (delivering too through ``channels`` when given, for
    ``--send``), drawing progress; None when no channel is configured here (waiting would never end)."""
    from handlers.broadcasts import service
    from handlers.broadcasts.models import Broadcast, BroadcastStatus

    stop = asyncio.Event()
    driver: asyncio.Task[None] | None = None
    send = channels is not None
    delivery = Delivery()
    if channels is not None:
        delivery = await channels.open_delivery(env.sessions, env.community)
        if not delivery.senders:
            print(render("bc.cli.no_senders"), file=sys.stderr)
            return None
        mass = delivery.mass if env.settings.broadcasts.wechat_mass else None
        driver = asyncio.create_task(_drive(env, delivery.senders, mass, stop))
    bar = _Bar()
    samples: list[tuple[float, int]] = []
    idle_since = monotime.monotonic()
    last_done = -1
    hinted = False
    try:
        while True:
            async with env.sessions() as session:
                p = await service.progress(session, broadcast_id, _now())
                status = await session.scalar(select_status(broadcast_id))
            clock = monotime.monotonic()
            samples.append((clock, p.done))
            samples = [s for s in samples if clock - s[0] <= 10] or samples[-1:]
            rate = (
                (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])
                if len(samples) > 1
                else 0.0
            )
            bar.show(broadcast_id, p, rate)
            if p.done != last_done:
                last_done, idle_since = p.done, clock
            elif not send and not hinted and clock - idle_since > IDLE_HINT and p.pending:
                hinted = True
                print("\n" + render("bc.cli.idle_hint", seconds=int(IDLE_HINT)), file=sys.stderr)
            if status == BroadcastStatus.SENDING and p.pending == 0:
                await service.finish_if_done(env.sessions, broadcast_id, _now())
            if status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED):
                bar.show(broadcast_id, p, rate, final=True)
                async with env.sessions() as session:
                    broadcast = await session.get(Broadcast, broadcast_id)
                    assert broadcast is not None
                    return dict(broadcast.report)
            if driver is not None and driver.done():
                driver.result()  # a sender crashed: raise it
            await asyncio.sleep(POLL)
    finally:
        stop.set()
        if driver is not None:
            with contextlib.suppress(Exception):
                await driver
        for close in delivery.closers:
            with contextlib.suppress(Exception):
                await close()


def select_status(broadcast_id: int) -> Any:
    from sqlalchemy import select

    from handlers.broadcasts.models import Broadcast

    return select(Broadcast.status).where(Broadcast.id == broadcast_id)


async def _broadcast(args: argparse.Namespace) -> int:
    from handlers.broadcasts import audience as aud
    from handlers.broadcasts import service
    from handlers.broadcasts.chat import describe, local_text, parse_when
    from handlers.broadcasts.models import BroadcastStatus

    text = _text(args)
    if not text:
        print(render("bc.cli.empty_text"), file=sys.stderr)
        return 2
    async with _Env(args) as env:
        tz = env.community.timezone
        now = _now()
        at = None
        if args.at:
            at = parse_when(args.at, now, tz)
            if at is None:
                print(render("bc.cli.bad_time", value=args.at), file=sys.stderr)
                return 2
            if at <= now:
                print(render("bc.cli.past_time", when=local_text(at, tz)), file=sys.stderr)
                return 2
        audience = aud.Audience.of(args.grid, args.tag)
        mass = env.settings.broadcasts.wechat_mass if args.wechat_mass is None else args.wechat_mass
        async with env.sessions() as session:
            try:
                await aud.validate(session, audience)
            except aud.AudienceError as exc:
                print(render(exc.key, **exc.params), file=sys.stderr)
                return 2
            counts = await aud.count(session, audience)
            extra = render("bc.opted_out_note", count=counts.opted_out) if counts.opted_out else ""
            if mass:
                from handlers.broadcasts import wechat_mass

                extra += await wechat_mass.quota_note(session, audience, now, env.settings.broadcasts)
        print(
            render(
                "bc.cli.summary",
                audience=describe(audience),
                count=counts.total,
                extra=extra,
                when=local_text(at, tz) if at else render("bc.cli.now"),
                photo=render("bc.photo_note") if args.photo else "",
                text=text,
            )
        )
        if args.dry_run:
            print(render("bc.cli.dry_run"))
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                print(render("bc.cli.needs_yes"), file=sys.stderr)
                return 2
            answer = input(render("bc.cli.confirm")).strip().lower()
            if answer not in ("y", "yes", "是", "确认"):
                print(render("bc.cli.aborted"))
                return 1
        async with env.sessions.begin() as session:
            broadcast = await service.create(
                session,
                text=text,
                audience=audience,
                created_by="cli",
                source="cli",
                now=_now(),
                photo=args.photo,
                status=BroadcastStatus.SCHEDULED,
                scheduled_at=at,
                wechat_mass=mass,
                estimate=counts.total,
            )
            broadcast_id = broadcast.id
        print(render("bc.cli.created", id=broadcast_id))
        if at is not None:
            print(render("bc.cli.scheduled", id=broadcast_id, when=local_text(at, tz)))
            return 0
        await service.expand(
            env.sessions,
            broadcast_id,
            channels=_directory(args).configured() or None,  # none configured: any channel counts
            community=env.community.name,
            clock=_now,
            settings=env.settings.broadcasts,
        )
        if args.no_wait:
            print(render("bc.cli.detached", id=broadcast_id))
            return 0
        report = await _follow(env, broadcast_id, _directory(args) if args.send else None)
        if report is None:
            print(render("bc.cli.queued_no_channel", id=broadcast_id), file=sys.stderr)
            return 1
    if args.format == "json":
        _print_json({"id": broadcast_id, **report})
    else:
        from handlers.broadcasts.report_text import reasons_text

        print(
            render(
                "bc.report",
                id=broadcast_id,
                total=report.get("total", 0),
                sent=report.get("sent", 0),
                failed=report.get("failed", 0),
                unreachable=report.get("unreachable", 0),
                reasons=reasons_text(report.get("by_reason", {})),
            )
        )
    return 0


def cmd_broadcast(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_broadcast(args))
    except KeyboardInterrupt:
        return 130


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
    async with _Env(args) as env:
        if args.cancel is not None:
            return await _cancel_broadcast(env, args.cancel)
        if args.unreached is not None:
            return await _unreached(env, args)
        if args.show is not None:
            return await _show_broadcast(env, args)
        return await _list_broadcasts(env, args)


async def _cancel_broadcast(env: _Env, number: int) -> int:
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
        withdrawn = await service.cancel(session, broadcast, _now())
    print(render("bc.cli.cancelled", id=number, withdrawn=withdrawn))
    return 0


async def _unreached(env: _Env, args: argparse.Namespace) -> int:
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
            _print_json(item)
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


async def _show_broadcast(env: _Env, args: argparse.Namespace) -> int:
    from handlers.broadcasts import report_text, service
    from handlers.broadcasts.models import Broadcast, BroadcastStatus

    async with env.sessions() as session:
        broadcast = await session.get(Broadcast, args.show)
        if broadcast is None:
            print(render("bc.not_found", id=args.show), file=sys.stderr)
            return 1
        row = _row(broadcast)
        if broadcast.status == BroadcastStatus.SENDING:
            row["progress"] = (await service.progress(session, broadcast.id, _now())).to_json()
        else:
            row["report"] = broadcast.report
        if args.format == "json":
            _print_json(row)
        elif broadcast.status == BroadcastStatus.DONE:
            print(report_text.report_text(broadcast, broadcast.report))
        elif broadcast.status == BroadcastStatus.SENDING:
            p = await service.progress(session, broadcast.id, _now())
            print(report_text.progress_text(broadcast.id, p))
        else:
            print(render(f"bc.status.{broadcast.status}"))
    return 0


async def _list_broadcasts(env: _Env, args: argparse.Namespace) -> int:
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
            b.id: await service.progress(session, b.id, _now())
            for b in rows
            if b.status == BroadcastStatus.SENDING
        }
    if args.format == "json":
        for b in rows:
            row = _row(b)
            if b.id in live:
                row.update(sent=live[b.id].sent, failed=live[b.id].failed, total=live[b.id].total)
            _print_json(row)
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


async def _tags(args: argparse.Namespace) -> int:
    import re

    from sqlalchemy import delete, func, select

    from handlers.broadcasts.audience import BUILTIN_TAGS, TAG_PATTERN
    from handlers.broadcasts.models import ResidentTag
    from storage.models import Resident

    async with _Env(args) as env:
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
                    _print_json({"tag": tag, "residents": count})
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
                    ResidentTag(resident_id=n, tag=tag, created_at=_now()) for n in sorted(known - have)
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


def _directory(args: argparse.Namespace) -> ChannelDirectory:
    directory: Callable[[Any], ChannelDirectory] = args.channels
    return directory(args.settings())


def register(
    subparsers: Any, channels: Callable[[Any], ChannelDirectory], settings: Callable[[], CliSettings]
) -> None:
    """Add the commands; ``channels`` gives the channel registry for the settings and ``settings``
    the process settings (the composition root passes both, so this feature never imports the app or
    builds a channel itself)."""
    b = subparsers.add_parser(
        "broadcast",
        help="send a notice to every resident, some grids or a tag (asks to confirm; --yes for scripts)",
    )
    source = b.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the notice")
    source.add_argument("--file", type=Path, help="read the notice from this UTF-8 file")
    b.add_argument("--photo", help="an image to send with it (a Telegram file id or an https URL)")
    b.add_argument("--grid", action="extend", nargs="+", default=[], metavar="CODE", help="only these grids")
    b.add_argument(
        "--tag",
        action="extend",
        nargs="+",
        default=[],
        metavar="T",
        help="only residents with this tag (guardians, reporters, a free tag) or the staff (staff)",
    )
    b.add_argument("--at", metavar="TIME", help='send later: "2026-12-01 09:00" (community time zone)')
    b.add_argument("--dry-run", action="store_true", help="show the audience and the text; write nothing")
    b.add_argument("--yes", "-y", action="store_true", help="do not ask to confirm (scripts)")
    b.add_argument(
        "--wechat-mass",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="WeChat users outside the 48-hour window by 群发 (default: OUTREACH_BROADCAST_WECHAT_MASS)",
    )
    b.add_argument(
        "--send", action="store_true", help="deliver from this process too (when no server is running)"
    )
    b.add_argument("--no-wait", action="store_true", help="return once the messages are queued")
    b.add_argument("--format", choices=("text", "json"), default="text", help="the final report")
    b.set_defaults(func=cmd_broadcast, channels=channels, settings=settings)

    bs = subparsers.add_parser("broadcasts", help="list broadcasts, show a report, list who was not reached")
    bs.add_argument("--status", help="only broadcasts in this status (scheduled, sending, done, …)")
    bs.add_argument("--limit", type=int, default=50)
    bs.add_argument("--format", choices=("text", "json"), default="text")
    bs.add_argument("--show", type=int, metavar="ID", help="the report (or progress) of one broadcast")
    bs.add_argument("--unreached", type=int, metavar="ID", help="who a broadcast could not reach (no names)")
    bs.add_argument("--all-failed", action="store_true", help="with --unreached: every failed message")
    bs.add_argument("--cancel", type=int, metavar="ID", help="cancel a broadcast (or stop one being sent)")
    bs.set_defaults(func=cmd_broadcasts, settings=settings)

    tags = subparsers.add_parser("tags", help="free resident tags that broadcasts can target (--tag T)")
    tags.add_argument("action", choices=("add", "remove", "list"))
    tags.add_argument(
        "tag", nargs="?", help="letters, digits, 汉字, _ or - (not guardians, reporters, staff)"
    )
    tags.add_argument("residents", nargs="*", metavar="R12", help="resident numbers (R12 or 12)")
    tags.add_argument("--format", choices=("text", "json"), default="text")
    tags.set_defaults(func=cmd_tags, settings=settings)

"""``outreach-bot broadcast``, ``broadcasts`` and ``tags`` (added to bot/cli.py by ``register``).

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
``broadcasts`` (list, show, who was not reached, cancel) lives in ``cli_reports``, ``tags`` (free
resident tags to broadcast to) in ``cli_tags``; ``register`` adds all three.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time as monotime
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handlers.broadcasts.cli_env import CliEnv, print_json, utc_now
from handlers.broadcasts.cli_reports import cmd_broadcasts
from handlers.broadcasts.cli_tags import cmd_tags
from handlers.broadcasts.config import CliSettings
from handlers.kernel.channel_ports import ChannelDirectory
from handlers.kernel.ports import Delivery
from messages import render

POLL = 0.5  # seconds between progress polls
IDLE_HINT = 60.0  # seconds without progress before suggesting --send


def _text(args: argparse.Namespace) -> str:
    if args.file is not None:
        return Path(args.file).read_text(encoding="utf-8").strip()
    return (args.text or "").strip()


async def _drive(env: CliEnv, senders: list[Any], mass: Any, stop: asyncio.Event) -> None:
    from handlers.broadcasts import wechat_mass
    from handlers.kernel.outbox import drain

    async def loop(sender: Any) -> None:
        while not stop.is_set():
            if not await drain(env.sessions, sender, settings=env.settings.outbox):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)

    async def mass_loop() -> None:
        while not stop.is_set():
            if not await wechat_mass.drain(env.sessions, mass, utc_now, settings=env.settings.broadcasts):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)

    tasks = [loop(s) for s in senders]
    if mass is not None:
        tasks.append(mass_loop())
    await asyncio.gather(*tasks)


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


async def _follow(env: CliEnv, broadcast_id: int, channels: ChannelDirectory | None) -> dict[str, Any] | None:
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
                p = await service.progress(session, broadcast_id, utc_now())
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
                await service.finish_if_done(env.sessions, broadcast_id, utc_now())
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


async def _where_refusal(env: CliEnv, args: argparse.Namespace, audience: Any) -> str | None:
    """Why the audience is refused, or None: an unknown community, grid or tag; in a 街道 of several
    communities, no ``--community`` or ``--street`` (explicit), or grids (whose codes are per
    community) without ``--community``."""
    from sqlalchemy import func, select

    from storage.models import Community as CommunityRow

    async with env.sessions() as session:
        codes = list(await session.scalars(select(CommunityRow.code).where(CommunityRow.active.is_(True))))
        several = int(await session.scalar(select(func.count()).select_from(CommunityRow)) or 0) > 1
    known = "、".join(codes)
    if several and not (args.street or audience.communities):
        return render("bc.cli.which_communities", known=known)
    if several and audience.grids and not audience.communities:
        return render("bc.cli.grid_needs_community", known=known)
    from handlers.broadcasts import audience as aud

    async with env.sessions() as session:
        try:
            await aud.validate(session, audience)
        except aud.AudienceError as exc:
            return render(exc.key, **exc.params)
    return None


async def _broadcast(args: argparse.Namespace) -> int:
    from handlers.broadcasts import audience as aud
    from handlers.broadcasts import expansion, service
    from handlers.broadcasts.chat import describe, local_text, parse_when
    from handlers.broadcasts.models import BroadcastStatus

    text = _text(args)
    if not text:
        print(render("bc.cli.empty_text"), file=sys.stderr)
        return 2
    async with CliEnv(args) as env:
        tz = env.community.timezone
        now = utc_now()
        at = None
        if args.at:
            at = parse_when(args.at, now, tz)
            if at is None:
                print(render("bc.cli.bad_time", value=args.at), file=sys.stderr)
                return 2
            if at <= now:
                print(render("bc.cli.past_time", when=local_text(at, tz)), file=sys.stderr)
                return 2
        audience = aud.Audience.of(args.grid, args.tag, args.community)
        refusal = await _where_refusal(env, args, audience)
        if refusal is not None:
            print(refusal, file=sys.stderr)
            return 2
        mass = env.settings.broadcasts.wechat_mass if args.wechat_mass is None else args.wechat_mass
        async with env.sessions() as session:
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
                now=utc_now(),
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
        await expansion.expand(
            env.sessions,
            broadcast_id,
            channels=_directory(args).configured() or None,  # none configured: any channel counts
            community=env.community.name,
            clock=utc_now,
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
        print_json({"id": broadcast_id, **report})
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
    where = b.add_mutually_exclusive_group()
    where.add_argument(
        "--community",
        action="extend",
        type=lambda value: [c for c in value.split(",") if c.strip()],
        default=[],
        metavar="CODE[,CODE]",
        help="only residents of these communities (a 街道 of several: this or --street is needed)",
    )
    where.add_argument("--street", action="store_true", help="the whole 街道: every community's residents")
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

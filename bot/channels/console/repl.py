"""The local console channel: chat with the bot in a terminal as a resident, a worker or an admin, and
see every message the bot sends to anyone. Piped input works too: one line, one message; EOF exits."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, TextIO

from bot.demo_clock import JOB_SECONDS, DemoClock, parse_local, parse_step, run_jobs, with_clock
from handlers.kernel.channel_services import active_staff
from handlers.kernel.clock import utcnow
from handlers.kernel.inbound import Inbound, start_scene
from handlers.kernel.outbox import OutboxItem, drain
from handlers.kernel.outbox_settings import OutboxSettings
from messages import render

if TYPE_CHECKING:
    from bot.app import App

CHANNEL = "console"
DEFAULT_RESIDENT = "小王"


class ConsoleSender:
    """Prints outbox messages for the console channel, naming who receives each."""

    channel = CHANNEL

    def __init__(self, app: App, out: TextIO) -> None:
        self.app = app
        self.out = out

    async def send(self, message: OutboxItem) -> None:
        who = await describe(self.app, message.recipient)
        lines = [render("console.to", who=who), *("  " + line for line in message.text.splitlines())]
        buttons = message.payload.get("buttons") or []
        if buttons:
            lines.append(render("console.buttons", labels=" | ".join(b["label"] for b in buttons)))
        if message.payload.get("photo"):
            lines.append(render("console.photo", photo=message.payload["photo"]))
        print("\n".join(lines), file=self.out, flush=True)


async def describe(app: App, who: str) -> str:
    for staff in await active_staff(app.services.sessions, who):
        return render("console.staff", role=render(f"role.{staff.role}"), name=staff.name, id=staff.id)
    return render("console.resident", name=who)


async def staff_lines(app: App) -> str:
    rows = await active_staff(app.services.sessions)
    return "\n".join(
        render("console.staff_line", id=s.id, name=s.name, role=render(f"role.{s.role}")) for s in rows
    )


async def flush(app: App, sender: ConsoleSender) -> None:
    settings = app.services.section(OutboxSettings)
    while await drain(app.services.sessions, sender, app.services.clock, settings=settings):
        pass


async def run_console(app: App, database: str, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    interactive = stdin.isatty()
    clock = DemoClock()
    app = with_clock(app, clock)
    sender = ConsoleSender(app, out)
    busy = asyncio.Lock()  # one turn or one pass of the jobs at a time
    me = DEFAULT_RESIDENT
    street = app.services.street  # a 街道: its name and every community's staff
    staff_ids = list(dict.fromkeys(s for community in street for s in community.staff))
    print(
        render(
            "console.banner",
            community=street.name if len(street) > 1 else app.services.community.name,
            database=database,
            name=me,
            staff="、".join(staff_ids),
        ),
        file=out,
        flush=True,
    )
    print(render("console.banner_time"), file=out, flush=True)
    await flush(app, sender)  # anything a crash left unsent
    ticking = asyncio.create_task(_tick(app, sender, busy)) if interactive else None
    if interactive:
        _line_editing()
    try:
        while True:
            who = await describe(app, me)
            line = await _read_line(stdin, render("console.prompt", who=who), interactive)
            if line is None:
                break
            if not interactive:
                print(render("console.prompt", who=who) + line, file=out, flush=True)
            command, _, rest = line.strip().partition(" ")
            if command in {"/quit", "/exit"}:
                break
            if command == "/who":
                print(render("console.who", lines=await staff_lines(app)), file=out, flush=True)
                continue
            if command == "/as" and not rest.strip():
                print(render("console.as_usage", lines=await staff_lines(app)), file=out, flush=True)
                continue
            if command == "/as":
                me = rest.strip()
                print(render("console.switched", who=await describe(app, me)), file=out, flush=True)
                continue
            async with busy:
                if command == "/time":
                    print(move_clock(app, clock, rest), file=out, flush=True)
                else:
                    scene = start_scene(rest.strip()) if command == "/start" else None  # a code, typed
                    await app.conversation.handle(
                        Inbound(
                            channel=CHANNEL,
                            sender=me,
                            text=None if scene else line,
                            sender_name=me,
                            scene=scene,
                        )
                    )
                    await flush(app, sender)
                # what serve's timers would have done by now (after a /time: what became due)
                await run_jobs(app)
                await flush(app, sender)
    finally:
        if ticking is not None:
            ticking.cancel()
    print(render("console.bye"), file=out, flush=True)
    return 0


def move_clock(app: App, clock: DemoClock, arg: str) -> str:
    """``/time`` (show), ``/time +3h`` (+30m, +2d, +1d2h) or ``/time 2026-11-23 09:30``."""
    tz = app.services.community.timezone
    arg = arg.strip()
    if arg:
        step = parse_step(arg)
        moment = None if step is not None else parse_local(arg, tz)
        if step is None and moment is None:
            return render("console.time_usage")
        if step is not None:
            clock.advance(step)
        elif moment is not None:
            clock.set_local(moment)
    return render(
        "console.time_now",
        time=clock().astimezone(tz).strftime("%Y-%m-%d %H:%M %a"),
        tz=tz.key,
        real=utcnow().astimezone(tz).strftime("%Y-%m-%d %H:%M"),
    )


async def _tick(app: App, sender: ConsoleSender, busy: asyncio.Lock) -> None:
    """In a terminal the jobs also run by themselves, as on a server."""
    while True:
        await asyncio.sleep(JOB_SECONDS)
        async with busy:
            await run_jobs(app)
            await flush(app, sender)


def _line_editing() -> None:
    # Arrow keys and history for input(): readline, where the platform has it (not on Windows).
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401


async def _read_line(stdin: TextIO, prompt: str, interactive: bool) -> str | None:
    if interactive:
        try:
            return await asyncio.to_thread(input, prompt)
        except EOFError:
            return None
    line = await asyncio.to_thread(stdin.readline)
    return line.rstrip("\r\n") if line else None

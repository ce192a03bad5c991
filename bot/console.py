"""The local console channel: chat with the bot in a terminal as a resident, a worker or an admin, and
see every message the bot sends to anyone. Piped input works too: one line, one message; EOF exits."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from sqlalchemy import select

from bot.app import App
from handlers.inbound import Inbound
from handlers.outbox import drain
from messages import render
from storage.models import OutboxMessage, Staff

CHANNEL = "console"
DEFAULT_RESIDENT = "小王"


class ConsoleSender:
    """Prints outbox messages for the console channel, naming who receives each."""

    channel = CHANNEL

    def __init__(self, app: App, out: TextIO) -> None:
        self.app = app
        self.out = out

    async def send(self, message: OutboxMessage) -> None:
        who = await describe(self.app, message.recipient)
        lines = [render("console.to", who=who), *("  " + line for line in message.text.splitlines())]
        buttons = message.payload.get("buttons") or []
        if buttons:
            lines.append(render("console.buttons", labels=" | ".join(b["label"] for b in buttons)))
        if message.payload.get("photo"):
            lines.append(render("console.photo", photo=message.payload["photo"]))
        print("\n".join(lines), file=self.out, flush=True)


async def describe(app: App, who: str) -> str:
    async with app.services.sessions() as session:
        staff = await session.get(Staff, who)
    if staff is not None and staff.active:
        return render("console.staff", role=render(f"role.{staff.role}"), name=staff.name, id=staff.id)
    return render("console.resident", name=who)


async def staff_lines(app: App) -> str:
    async with app.services.sessions() as session:
        rows = (
            await session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.role, Staff.id))
        ).all()
    return "\n".join(
        render("console.staff_line", id=s.id, name=s.name, role=render(f"role.{s.role}")) for s in rows
    )


async def flush(app: App, sender: ConsoleSender) -> None:
    while await drain(app.services.sessions, sender, app.services.clock):
        pass


async def run_console(app: App, database: str, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    interactive = stdin.isatty()
    sender = ConsoleSender(app, out)
    me = DEFAULT_RESIDENT
    staff_ids = list(app.services.community.staff)
    print(
        render(
            "console.banner",
            community=app.services.community.name,
            database=database,
            name=me,
            staff="、".join(staff_ids),
        ),
        file=out,
        flush=True,
    )
    await flush(app, sender)  # anything a crash left unsent
    while True:
        who = await describe(app, me)
        if interactive:
            out.write(render("console.prompt", who=who))
            out.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        line = line.rstrip("\r\n")
        if not interactive:
            print(render("console.prompt", who=who) + line, file=out, flush=True)
        command, _, rest = line.strip().partition(" ")
        if command in {"/quit", "/exit"}:
            break
        if command == "/who":
            print(render("console.who", lines=await staff_lines(app)), file=out, flush=True)
            continue
        if command == "/as" and rest.strip():
            me = rest.strip()
            print(render("console.switched", who=await describe(app, me)), file=out, flush=True)
            continue
        await app.conversation.handle(Inbound(channel=CHANNEL, sender=me, text=line, sender_name=me))
        await flush(app, sender)
    print(render("console.bye"), file=out, flush=True)
    return 0

"""The ``outreach-bot`` command line. Its commands and their JSON/CSV output are a contract that
automation depends on: keep names and fields stable. JSON lines are UTF-8 with real Chinese characters."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from bot import classify_cli, cli_errors, logfilter, qr_cli
from bot.channels import registry
from bot.channels.wechat import cli as wechat_cli
from bot.cli_io import fail_config
from bot.settings import Settings, load_settings
from handlers import audience_sources
from handlers.broadcasts import cli as broadcasts_cli
from handlers.cases import cli as cases_cli
from handlers.cases import cli_stats as cases_stats_cli
from handlers.kernel import outbox_cli
from handlers.reminders import cli as reminders_cli
from messages import render


async def _config_load(settings: Settings, path: Path) -> int:
    """Validate a 街道 file or a community file and sync every community in one transaction; a
    summary line per community (a 街道 of one prints exactly what a community file always did)."""
    from handlers.community.model import CommunityConfigError
    from handlers.community.store import sync_street
    from handlers.community.street import load_street
    from storage.migrate import database

    try:
        street = load_street(path)
    except CommunityConfigError as exc:
        return fail_config(exc, path)
    async with database(settings.database_url) as db, db.sessions.begin() as session:
        summary = await sync_street(session, street)
    several = len(street) > 1
    for one in summary.communities:
        name = f"{one.code} {one.name}" if several else one.name
        print(
            render(
                "cli.config_loaded",
                community=name,
                grids=one.grids,
                staff=one.staff,
                categories=one.categories,
            )
        )
        gone = [*one.deactivated_grids, *one.deactivated_staff]
        if gone:
            print(render("cli.config_deactivated", items="、".join(gone)))
    if summary.deactivated_communities:
        print(render("cli.config_deactivated", items="、".join(summary.deactivated_communities)))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    if args.action == "check":
        from bot.street_cli import config_check

        return config_check(args.file)  # a community file or a 街道 file
    return asyncio.run(_config_load(args.settings(), args.file))


async def _demo(settings: Settings, config: Path | None, reset: bool) -> int:
    from bot.app import build_app
    from bot.channels.console.repl import CHANNEL, run_console
    from storage.database import is_sqlite

    if reset and is_sqlite(settings.database_url):
        from sqlalchemy.engine import make_url

        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            for suffix in ("", "-wal", "-shm"):
                Path(database + suffix).unlink(missing_ok=True)
    app = await build_app(settings, frozenset({CHANNEL}), config=config)
    try:
        return await run_console(app, database=_safe_url(settings.database_url))
    finally:
        await app.close()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_demo(args.settings(), args.config, args.reset))
    except KeyboardInterrupt:
        return 0


async def _staff_invite(settings: Settings, staff_id: str, days: int) -> int:
    from datetime import timedelta

    from handlers.kernel.binding import create_invite
    from storage.migrate import database
    from storage.models import utcnow

    try:
        async with database(settings.database_url) as db, db.sessions.begin() as session:
            code = await create_invite(session, staff_id, utcnow(), timedelta(days=days))
    except KeyError:
        print(render("cli.unknown_staff", id=staff_id), file=sys.stderr)
        return 1
    print(render("cli.invite", id=staff_id, code=code, days=days))
    return 0


def cmd_staff(args: argparse.Namespace) -> int:
    return asyncio.run(_staff_invite(args.settings(), args.staff_id, args.days))


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.server import run_serve, serve_workers

    settings: Settings = args.settings()
    if args.workers > 1:
        if settings.telegram_token is not None and not settings.telegram_webhook_url:
            # Telegram hands updates to one long-polling consumer only.
            print(render("cli.workers_need_webhook"), file=sys.stderr)
            return 2
        os.environ["OUTREACH_SERVE_WORKERS"] = str(args.workers)  # the worker processes read it
        serve_workers(settings, args.host, args.port, args.workers)
        return 0
    asyncio.run(_check_database(settings))  # a bad URL or a database down: one line, not uvicorn's traceback
    with contextlib.suppress(KeyboardInterrupt):
        run_serve(settings, args.host, args.port)
    return 0


async def _check_database(settings: Settings) -> None:
    """Reach and migrate the database before the server starts (at head, one query)."""
    from storage.migrate import database

    async with database(settings.database_url):
        pass


def build_parser(settings: Callable[[], Settings] = load_settings) -> argparse.ArgumentParser:
    """The commands; each reads the settings tree through ``args.settings()`` (``main`` builds it once)."""
    parser = argparse.ArgumentParser(
        prog="outreach-bot",
        description="社区通: community health and sanitation chat-bot. "
        "Settings come from OUTREACH_* environment variables (OUTREACH_DATABASE_URL, OUTREACH_CONFIG, …).",
    )
    parser.set_defaults(settings=settings)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wechat_cli.register(sub, settings)
    cases_stats_cli.register(sub)
    reminders_cli.register(sub, settings)
    audience_sources.install()  # broadcast's #guardians, #reporters and grids by reports
    broadcasts_cli.register(sub, registry.Directory, settings)
    outbox_cli.register(sub)
    classify_cli.register(sub)
    qr_cli.register(sub, settings)

    demo = sub.add_parser("demo", help="chat with the bot in this terminal (SQLite and the sample community)")
    demo.add_argument("--config", type=Path, help="community YAML to load first (default: keep or sample)")
    demo.add_argument("--reset", action="store_true", help="start from an empty SQLite database")
    demo.set_defaults(func=cmd_demo)

    cases_cli.register(sub)

    serve = sub.add_parser("serve", help="run the server hosting every configured channel (Telegram, WeChat)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, help="server processes sharing the database")
    serve.set_defaults(func=cmd_serve)

    staff = sub.add_parser("staff", help="staff accounts: a one-time invite code that binds a chat account")
    staff.add_argument("action", choices=("invite",))
    staff.add_argument("staff_id")
    staff.add_argument("--days", type=int, default=7, help="how long the code stays valid")
    staff.set_defaults(func=cmd_staff)

    config = sub.add_parser("config", help="check or load a community YAML file")
    config.add_argument("action", choices=("load", "check"), help="load: validate and sync into the database")
    config.add_argument("file", type=Path)
    config.set_defaults(func=cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # The composition root: the settings tree is built once, after the arguments parse (so --help works
    # whatever the environment says), and each command is handed it.
    tree = cache(load_settings)
    args = build_parser(tree).parse_args(argv)
    try:
        settings = tree()
    except Exception as error:  # an invalid setting: one line naming the variable, never its value
        message = cli_errors.explain_settings(error)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return cli_errors.EXIT_ERROR
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logfilter.install(settings.log_level)
    return cli_errors.run_reporting(args.func, args)


if __name__ == "__main__":
    raise SystemExit(main())

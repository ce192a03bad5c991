"""``outreach-bot qr``: printable posters with one code per building or place (一楼一码), and per poster
one JSON line: ``community``, ``scene``, ``building`` or ``place``, ``grid``, ``file``, ``telegram`` (the
``t.me`` deep link, when Telegram is configured) and ``wechat`` (``ticket``, ``url`` of WeChat's picture,
``content`` the code encodes; when the Official Account is configured: a permanent
``QR_LIMIT_STR_SCENE`` code created once per scene and kept in ``wechat_qrcodes``).

The poster's code encodes the WeChat code's content when WeChat is configured, else the Telegram link,
else the scene itself (typed into the console demo as ``/start <scene>``). Operators get one line per
error (unknown community, building or place, an unwritable folder, a WeChat error code), never a
traceback."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli_io import fail_config, print_json
from messages import render

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.channels.wechat.client import WeChatClient
    from bot.settings import Settings
    from handlers.community.model import Community
    from handlers.community.scenes import Target
    from handlers.community.street import Street

EXIT_ERROR, EXIT_USAGE = 1, 2
SHOWN_CODES = 12  # an unknown or missing --community lists at most this many known codes


class QrFailed(Exception):
    """One line for the operator; ``status`` is the exit status."""

    def __init__(self, line: str, status: int = EXIT_ERROR) -> None:
        super().__init__(line)
        self.status = status


def register(sub: Any, settings: Callable[[], Settings]) -> None:
    qr = sub.add_parser("qr", help="printable posters: one code per building or place (一楼一码)")
    qr.add_argument(
        "--community", metavar="CODE", help="the community's code (required when the file lists several)"
    )
    which = qr.add_mutually_exclusive_group(required=True)
    which.add_argument("--building", help="one building: 3, 3号楼, A座, 二期3号楼")
    which.add_argument("--place", help="one place of the community file: 东门")
    which.add_argument("--all", action="store_true", help="every building and place")
    qr.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the PNG posters")
    qr.add_argument(
        "--config", type=Path, help="街道 or community YAML (default: OUTREACH_CONFIG or the sample)"
    )
    qr.add_argument("--format", choices=("json",), default="json", help="one JSON line per poster")
    qr.set_defaults(func=cmd_qr)


def cmd_qr(args: argparse.Namespace) -> int:
    from handlers.community.model import CommunityConfigError
    from handlers.community.street import load_street

    settings: Settings = args.settings()
    try:
        street = load_street(args.config or settings.config)
    except CommunityConfigError as exc:
        return fail_config(exc, args.config or settings.config)
    try:
        return asyncio.run(_qr(args, settings, _community(args.community, street)))
    except QrFailed as failed:
        print(str(failed), file=sys.stderr)
        return failed.status


def _known(street: Street) -> str:
    from handlers.community.scenes import community_code

    codes = [community_code(c) for c in street]
    return "、".join(codes[:SHOWN_CODES]) + ("…" if len(codes) > SHOWN_CODES else "")


def _community(code: str | None, street: Street) -> Community:
    """The community whose posters to make: ``--community CODE`` (required when the file has several),
    else the file's only one."""
    from handlers.community.scenes import community_code

    if code is None:
        if street.only is None:
            line = render("qr.community_required", count=len(street), known=_known(street))
            raise QrFailed(line, EXIT_USAGE)
        return street.only
    found = next((c for c in street if community_code(c).upper() == code.strip().upper()), None)
    if found is None:
        raise QrFailed(render("qr.unknown_community", code=code, known=_known(street)), EXIT_USAGE)
    return found


def _targets(args: argparse.Namespace, community: Community) -> list[Target]:
    from handlers.community.scenes import Kind, find_target, targets

    if args.all:
        return targets(community)
    found = find_target(community, args.building, args.place)
    if found is not None:
        return [found]
    if args.place is not None:
        places = "、".join(t.key for t in targets(community) if t.kind == Kind.PLACE)
        raise QrFailed(render("qr.unknown_place", community=community.name, place=args.place, known=places))
    raise QrFailed(render("qr.unknown_building", community=community.name, building=args.building))


def _out_dir(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".qr-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise QrFailed(render("qr.bad_out", out=out, error=exc.strerror or type(exc).__name__)) from None
    return out


async def _qr(args: argparse.Namespace, settings: Settings, community: Community) -> int:
    from bot.qr_posters import NoFont, find_cjk_font
    from handlers.community.scenes import community_code

    code = community_code(community)
    chosen = _targets(args, community)
    try:
        font = find_cjk_font(settings.qr.font)
    except NoFont:
        raise QrFailed(render("qr.no_font")) from None
    out = _out_dir(args.out)
    from storage.migrate import database

    async with database(settings.database_url) as db, AsyncExitStack() as stack:
        secret = await _secret(settings, db.sessions)
        telegram = await _telegram_bot(settings)
        wechat = await _wechat(settings, db.sessions, stack)
        for target in chosen:
            line = await _poster(code, target, community, secret, font, out, telegram, wechat)
            print_json(line)
    return 0


async def _secret(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> bytes:
    from handlers.community.scan_chat import scene_secret

    async with sessions.begin() as session:
        return await scene_secret(session, settings.qr)


async def _poster(
    code: str,
    target: Target,
    community: Community,
    secret: bytes,
    font: Path,
    out: Path,
    telegram: str | None,
    wechat: tuple[WeChatClient, Any] | None,
) -> dict[str, Any]:
    from bot.qr_posters import Poster, file_name, render_png
    from handlers.community.scenes import Kind, sign

    try:
        scene = sign(secret, code, target)
    except ValueError:
        raise QrFailed(render("qr.scene_too_long", code=code)) from None
    line: dict[str, Any] = {"community": code, "scene": scene}
    line["building" if target.kind == Kind.BUILDING else "place"] = target.label
    line["grid"] = target.grid
    content, hint = scene, render("qr.scene_hint")
    if telegram is not None:
        line["telegram"] = content = f"https://t.me/{telegram}?start={scene}"
        hint = render("qr.telegram_hint")
    if wechat is not None:
        made = await _wechat_code(wechat, scene)
        line["wechat"] = {"ticket": made.ticket, "url": made.image_url, "content": made.content}
        content, hint = made.content, render("qr.poster_hint")
    path = out / file_name(code, target.label)
    poster = Poster(community.name, target.label, content, hint, scene)
    try:
        path.write_bytes(render_png(poster, font))
    except OSError as exc:
        raise QrFailed(render("qr.bad_out", out=out, error=exc.strerror or type(exc).__name__)) from None
    line["file"] = str(path)
    return line


async def _telegram_bot(settings: Settings) -> str | None:
    """The bot's username for deep links: ``OUTREACH_QR_TELEGRAM_BOT``, else Telegram's ``getMe``."""
    if settings.telegram_token is None:
        return None
    if settings.qr.telegram_bot:
        return settings.qr.telegram_bot.lstrip("@")
    import httpx

    url = f"{settings.telegram_api_url}{settings.telegram_token.get_secret_value()}/getMe"
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            answer = (await http.get(url)).json()
        username = answer["result"]["username"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        # never the URL: it holds the token
        raise QrFailed(render("qr.telegram_error", error=type(exc).__name__)) from None
    return str(username)


async def _wechat(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], stack: AsyncExitStack
) -> tuple[WeChatClient, Any] | None:
    from bot.channels.wechat.spec import configured

    if not configured(settings):
        return None
    from bot.channels.wechat.adapter import platform_http, token_store
    from bot.channels.wechat.client import WeChatClient
    from handlers.kernel.qr_codes import QrCodeStore

    assert settings.wechat_app_id and settings.wechat_app_secret
    http = platform_http()
    stack.push_async_callback(http.aclose)
    store = token_store(settings, sessions)
    stack.push_async_callback(store.close)
    client = WeChatClient(
        settings.wechat_app_id,
        settings.wechat_app_secret.get_secret_value(),
        settings.wechat_api_url,
        store,
        http=http,
    )
    return client, QrCodeStore(sessions)


async def _wechat_code(wechat: tuple[WeChatClient, Any], scene: str) -> Any:
    from bot.channels.wechat.client import WeChatAPIError, WeChatTransportError
    from bot.channels.wechat.qrcode import permanent_code

    client, store = wechat
    try:
        return await permanent_code(client, store, scene)
    except WeChatAPIError as exc:
        raise QrFailed(render("qr.wechat_error", errcode=exc.errcode)) from None
    except WeChatTransportError as exc:
        raise QrFailed(render("qr.wechat_unreachable", error=str(exc))) from None

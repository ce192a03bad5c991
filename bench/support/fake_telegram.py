"""A fake Telegram Bot API server for tests and benchmarks, on 127.0.0.1 at a free port.

It runs in its own thread (uvicorn + Starlette), so the bot under test can be a separate process
pointed at it with ``OUTREACH_TELEGRAM_API_URL=<fake.api_url>``. It answers the methods the bot uses
(getMe, getUpdates with long polling and offsets, sendMessage, sendPhoto, answerCallbackQuery,
editMessageReplyMarkup, setWebhook, deleteWebhook, getWebhookInfo, setMyCommands) from form-encoded or
JSON bodies, records every call, and can be told to answer a chat with 429 (``retry_after``) or 403
(the user blocked the bot), to answer a chat's sends with any status and raw body (``answer_raw``: a
429 with ``{}``, a 200 that is not JSON), or to be unreachable for every method (``go_down``, as
during an outage: sends, getMe and setWebhook alike, until ``come_back``).
Tests build updates with ``message`` / ``button`` and hand them over with ``push`` (for getUpdates)
or POST them to the bot's webhook with the secret from ``setWebhook``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "123456:TEST-token-not-secret"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "社区通", "username": "shequtong_test_bot"}
SEND_METHODS = frozenset({"sendMessage", "sendPhoto"})
BLOCKED = "Forbidden: bot was blocked by the user"
MAX_POLL_WAIT = 2.0  # seconds a getUpdates call waits at most, whatever timeout the bot asks for


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        if value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            return str(value)

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def buttons(self) -> list[dict[str, str]]:
        markup = self.params.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]


@dataclass
class _Queued:
    update: dict[str, Any]
    forced: bool = False  # a redelivery: handed out once whatever the offset


@dataclass
class FakeTelegram:
    token: str = TOKEN
    calls: list[Call] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _queue: list[_Queued] = field(default_factory=list)
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _rate_limited: dict[int | str, tuple[int, int]] = field(default_factory=dict)
    _blocked: set[int | str] = field(default_factory=set)
    _raw: dict[int | str, tuple[int, bytes, int]] = field(default_factory=dict)
    _down: tuple[int, bytes] | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _news: asyncio.Event | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> FakeTelegram:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else 40 ms per keep-alive request
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", backlog=2048)
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def run() -> None:
            async def main() -> None:
                self._loop = asyncio.get_running_loop()
                self._news = asyncio.Event()
                started.set()
                assert self._server is not None
                await self._server.serve(sockets=[sock])

            asyncio.run(main())

        self._thread = threading.Thread(target=run, name="fake-telegram", daemon=True)
        self._thread.start()
        started.wait(10)
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    # -- programming the fake ------------------------------------------------------------------------

    def rate_limit(self, chat_id: int | str, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` sends to the chat get 429 with ``retry_after``."""
        with self._lock:
            self._rate_limited[chat_id] = (retry_after, times)

    def block(self, chat_id: int | str) -> None:
        """The user blocked the bot: every send to the chat gets 403."""
        with self._lock:
            self._blocked.add(chat_id)

    def answer_raw(self, chat_id: int | str, status: int, body: bytes, times: int = 1) -> None:
        """The next ``times`` sends to the chat get exactly this status and body."""
        with self._lock:
            self._raw[chat_id] = (status, body, times)

    def go_down(self, status: int = 502, body: bytes = b"<html>Bad Gateway</html>") -> None:
        """Every API call gets this answer until ``come_back`` (``{path}`` in the body: the request's
        path, as some proxies' error pages show it)."""
        with self._lock:
            self._down = (status, body)

    def come_back(self) -> None:
        with self._lock:
            self._down = None

    def next_update_id(self) -> int:
        with self._lock:
            return next(self._update_ids)

    def push(self, update: dict[str, Any], *, redeliver: bool = False) -> None:
        """Make an update available to getUpdates (``redeliver``: even if its id was confirmed)."""
        with self._lock:
            self._queue.append(_Queued(update, forced=redeliver))
        if self._loop is not None and self._news is not None:
            self._loop.call_soon_threadsafe(self._news.set)

    # -- building updates ----------------------------------------------------------------------------

    def message(
        self,
        user_id: int,
        text: str | None = None,
        *,
        photo: list[str] | None = None,
        caption: str | None = None,
        location: tuple[float, float] | None = None,
        sticker: bool = False,
        update_id: int | None = None,
    ) -> dict[str, Any]:
        user = {"id": user_id, "is_bot": False, "first_name": f"用户{user_id}"}
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": user["first_name"]},
            "from": user,
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split(" ", 1)[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if photo:
            message["photo"] = [
                {"file_id": f, "file_unique_id": f"u-{f}", "width": 90 * (i + 1), "height": 60 * (i + 1)}
                for i, f in enumerate(photo)
            ]
            if caption is not None:
                message["caption"] = caption
        if location is not None:
            message["location"] = {"latitude": location[0], "longitude": location[1]}
        if sticker:
            message["sticker"] = {
                "file_id": "sticker-1",
                "file_unique_id": "s1",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        return {"update_id": update_id or self.next_update_id(), "message": message}

    def button(
        self, user_id: int, data: str, message: dict[str, Any] | None = None, *, update_id: int | None = None
    ) -> dict[str, Any]:
        """A press on an inline button of ``message`` (a message the bot sent, as returned to it)."""
        user = {"id": user_id, "is_bot": False, "first_name": f"用户{user_id}"}
        query: dict[str, Any] = {
            "id": f"cbq-{self.next_update_id()}",
            "from": user,
            "chat_instance": f"ci-{user_id}",
            "data": data,
        }
        if message is not None:
            query["message"] = message
        return {"update_id": update_id or self.next_update_id(), "callback_query": query}

    # -- reading what the bot did --------------------------------------------------------------------

    def all_calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if method is None or c.method == method]

    def attempts(self, chat_id: int | str) -> list[Call]:
        """Every send to the chat, refused ones included."""
        return [c for c in self.all_calls() if c.method in SEND_METHODS and c.chat_id == chat_id]

    def sent(self, chat_id: int | str) -> list[Call]:
        """The messages the chat received."""
        return [c for c in self.attempts(chat_id) if c.ok]

    # -- the Bot API ---------------------------------------------------------------------------------

    async def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        if not body:
            return params
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            params.update(json.loads(body))
            return params
        for key, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
            value: Any = values[-1]
            if value[:1] in ("{", "["):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            params[key] = value
        return params

    async def _endpoint(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        method = request.path_params["method"]
        params = await self._params(request)
        call = Call(method, params)
        with self._lock:
            down = self._down
        if down is not None:
            call.status = down[0]
            with self._lock:
                self.calls.append(call)
            return Response(down[1].replace(b"{path}", request.url.path.encode()), down[0])
        if method == "getUpdates":
            result: Any = await self._get_updates(params)
        else:
            refused = self._refusal(call)
            if refused is not None:
                call.status = refused.status_code
                with self._lock:
                    self.calls.append(call)
                return refused
            result = self._answer(method, params)
        call.result = result
        with self._lock:
            self.calls.append(call)
        if result is None:
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        return JSONResponse({"ok": True, "result": result})

    def _refusal(self, call: Call) -> Response | None:
        if call.method not in SEND_METHODS:
            return None
        chat = call.chat_id
        with self._lock:
            raw = self._raw.get(chat) if chat is not None else None
            if raw is not None:
                status, body, times = raw
                if times <= 1:
                    del self._raw[chat]
                else:
                    self._raw[chat] = (status, body, times - 1)
                return Response(body, status, media_type="application/json")
            if chat in self._blocked:
                body = {
                    "ok": False,
                    "error_code": 403,
                    "description": "Forbidden: bot was blocked by the user",
                }
                return JSONResponse(body, 403)
            limited = self._rate_limited.get(chat) if chat is not None else None
            if limited is None:
                return None
            retry_after, times = limited
            if times <= 1:
                del self._rate_limited[chat]
            else:
                self._rate_limited[chat] = (retry_after, times - 1)
        body = {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        }
        return JSONResponse(body, 429)

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method in {"setMyCommands", "answerCallbackQuery", "deleteWebhook"}:
            if method == "deleteWebhook":
                self.webhook = {}
            return True
        if method == "setWebhook":
            self.webhook = dict(params)
            return True
        if method == "getWebhookInfo":
            url = self.webhook.get("url", "")
            return {"url": url, "has_custom_certificate": False, "pending_update_count": 0}
        if method in SEND_METHODS:
            return self._sent_message(method, params)
        if method == "editMessageReplyMarkup":
            return self._bot_message(params.get("chat_id"), {"reply_markup": params.get("reply_markup")})
        return None

    def _bot_message(self, chat_id: Any, extra: dict[str, Any]) -> dict[str, Any]:
        try:
            chat = int(chat_id)
        except (TypeError, ValueError):
            chat = 0
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private" if chat > 0 else "group"},
            "from": BOT_USER,
        }
        message.update({k: v for k, v in extra.items() if v is not None})
        return message

    def _sent_message(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {"reply_markup": params.get("reply_markup")}
        if method == "sendMessage":
            extra["text"] = params.get("text", "")
        else:
            photo = str(params.get("photo", ""))
            extra["photo"] = [{"file_id": photo, "file_unique_id": f"u-{photo}", "width": 800, "height": 600}]
            extra["caption"] = params.get("caption")
        return self._bot_message(params.get("chat_id"), extra)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), MAX_POLL_WAIT)
        assert self._news is not None and self._loop is not None
        deadline = self._loop.time() + wait
        while True:
            self._news.clear()
            with self._lock:
                self._queue = [q for q in self._queue if q.forced or q.update["update_id"] >= offset]
                ready = self._queue[:limit]
                handed = {id(q) for q in ready if q.forced}
                self._queue = [q for q in self._queue if id(q) not in handed]
            if ready:
                return [q.update for q in ready]
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), remaining)

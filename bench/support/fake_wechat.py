"""A fake WeChat API server on 127.0.0.1 (Official Account and WeCom endpoints), in a thread, so the
real server process and in-process clients can both talk to it.

It issues access tokens (``/cgi-bin/token``, ``/cgi-bin/stable_token``, WeCom ``/cgi-bin/gettoken``),
refuses unknown or revoked ones with ``40001``, accepts ``message/custom/send``,
``message/template/send``, ``message/subscribe/bizsend``, ``message/mass/send`` (群发 by openid list),
``qrcode/create`` (permanent string-scene codes)
and WeCom ``message/send``, and records every call. Errors are programmable per endpoint and recipient:
``fail(path, 45015, openid=…, times=…)``.

Mass send behaves as WeChat documents it: 2 to 10,000 openids a call; a ``clientmsgid`` used again
within 24 hours is refused with ``45065`` (the batch was sent before) and the first call's msg_id; each
user receives at most ``mass_quota`` mass messages a month, and a send beyond that fails for that user
only (the call itself succeeds). ``mass_received`` counts what each user actually got.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

CUSTOM = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"
SUBSCRIBE = "/cgi-bin/message/subscribe/bizsend"
STABLE_TOKEN = "/cgi-bin/stable_token"
TOKEN = "/cgi-bin/token"
WECOM_TOKEN = "/cgi-bin/gettoken"
WECOM_SEND = "/cgi-bin/message/send"
MASS = "/cgi-bin/message/mass/send"
QRCODE = "/cgi-bin/qrcode/create"

ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    42001: "access_token expired",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    45065: "clientmsgid exist",
    40130: "invalid openid list size, at least two openid",
    45067: "clientmsgid size out of limit",
}


JsonHandler = Callable[[str, str, dict[str, str], dict[str, Any]], dict[str, Any]]


def serve_json(handle: JsonHandler, name: str) -> ThreadingHTTPServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 that answers every GET and POST with the JSON that
    ``handle(method, path, query, body)`` returns (a body that is not JSON gets 47001, as WeChat does)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, each answer on a kept-alive
        # connection waits ~40 ms for a delayed ACK (a property of this fake, not of WeChat).
        disable_nagle_algorithm = True

        def log_message(self, *_args: Any) -> None:
            pass

        def _answer(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _query(self) -> tuple[str, dict[str, str]]:
            url = urlparse(self.path)
            return url.path, {k: v[0] for k, v in parse_qs(url.query).items()}

        def do_GET(self) -> None:
            path, query = self._query()
            self._answer(handle("GET", path, query, {}))

        def do_POST(self) -> None:
            path, query = self._query()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._answer({"errcode": 47001, "errmsg": "data format error"})
                return
            self._answer(handle("POST", path, query, body))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    threading.Thread(target=server.serve_forever, name=f"fake-{name}", daemon=True).start()
    return server


@dataclass
class Call:
    path: str
    body: dict[str, Any]
    query: dict[str, str]
    answer: dict[str, Any]

    @property
    def touser(self) -> str | None:
        return self.body.get("touser")

    @property
    def text(self) -> str | None:
        return (self.body.get("text") or {}).get("content")


@dataclass
class Rule:
    path: str
    errcode: int
    openid: str | None
    times: int | None  # None: always
    needle: str | None = None  # only calls whose body contains this


@dataclass
class FakeWeChat:
    app_id: str
    secret: str
    corp_id: str = "wwcorp"
    corp_secret: str = "corp-secret"
    expires_in: int = 7200
    calls: list[Call] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    _valid: dict[str, float] = field(default_factory=dict)  # token → expiry (monotonic)
    _stable: str | None = None
    _serial: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    delay: float = 0.0  # seconds to wait before answering a token request (to make races likely)
    mass_quota: int = 4  # mass messages a user may receive a month (服务号)
    mass_received: dict[str, int] = field(default_factory=dict)  # openid → mass messages delivered
    _mass_ids: dict[str, int] = field(default_factory=dict)  # clientmsgid → msg_id

    # -- control --------------------------------------------------------------------------------------

    def start(self) -> FakeWeChat:
        self._server = serve_json(lambda _method, path, query, body: self.handle(path, query, body), "wechat")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(
        self,
        path: str,
        errcode: int,
        *,
        openid: str | None = None,
        times: int | None = 1,
        needle: str | None = None,
    ) -> None:
        with self._lock:
            self.rules.append(Rule(path, errcode, openid, times, needle))

    def revoke_tokens(self) -> None:
        """Every token issued so far becomes invalid (as if another party force-refreshed)."""
        with self._lock:
            self._valid.clear()
            self._stable = None

    def sent(self, path: str = CUSTOM, *, to: str | None = None, ok: bool = True) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c.path == path
                and (to is None or c.touser == to)
                and (not ok or c.answer.get("errcode", 0) == 0)
            ]

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.path == path)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.rules.clear()
            self.mass_received.clear()
            self._mass_ids.clear()

    # -- behaviour ------------------------------------------------------------------------------------

    def _issue(self) -> str:
        self._serial += 1
        token = f"ACCESS_TOKEN_{self._serial}_{int(time.time())}"
        self._valid[token] = time.monotonic() + self.expires_in
        return token

    def _token_ok(self, token: str | None) -> bool:
        expiry = self._valid.get(token or "")
        return expiry is not None and expiry > time.monotonic()

    def _rule(self, path: str, body: dict[str, Any]) -> int | None:
        text = json.dumps(body, ensure_ascii=False)
        for rule in self.rules:
            if (
                rule.path == path
                and (rule.openid is None or rule.openid == body.get("touser"))
                and (rule.needle is None or rule.needle in text)
            ):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self.rules.remove(rule)
                return rule.errcode
        return None

    def handle(self, path: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if path in (STABLE_TOKEN, TOKEN, WECOM_TOKEN) and self.delay:
            time.sleep(self.delay)
        with self._lock:
            answer = self._handle(path, query, body)
            self.calls.append(Call(path, body, query, answer))
            return answer

    def _handle(self, path: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if path == STABLE_TOKEN:
            if body.get("appid") != self.app_id or body.get("secret") != self.secret:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            if body.get("force_refresh") or not self._token_ok(self._stable):
                if body.get("force_refresh") and self._stable:
                    self._valid.pop(self._stable, None)
                self._stable = self._issue()
            remaining = int(self._valid[self._stable] - time.monotonic())
            return {"access_token": self._stable, "expires_in": remaining}
        if path == TOKEN:
            if query.get("appid") != self.app_id or query.get("secret") != self.secret:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            return {"access_token": self._issue(), "expires_in": self.expires_in}
        if path == WECOM_TOKEN:
            if query.get("corpid") != self.corp_id or query.get("corpsecret") != self.corp_secret:
                return {"errcode": 40001, "errmsg": "invalid secret"}
            return {
                "errcode": 0,
                "errmsg": "ok",
                "access_token": self._issue(),
                "expires_in": self.expires_in,
            }
        if path == MASS:
            return self._mass(query, body)
        if path == QRCODE:
            return self._qrcode(query, body)
        if path in (CUSTOM, TEMPLATE, SUBSCRIBE, WECOM_SEND):
            if not self._token_ok(query.get("access_token")):
                return {"errcode": 40001, "errmsg": ERRMSG[40001]}
            errcode = self._rule(path, body)
            if errcode is not None:
                return {"errcode": errcode, "errmsg": ERRMSG.get(errcode, "error")}
            answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
            if path == TEMPLATE:
                answer["msgid"] = 200000 + len(self.calls)
            return answer
        return {"errcode": 404, "errmsg": f"no such endpoint {path}"}

    def _qrcode(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        """A permanent string-scene code (QR_LIMIT_STR_SCENE: scene_str of 1-64 characters), answered
        as WeChat does: a ticket and the URL the code encodes, no expire_seconds."""
        if not self._token_ok(query.get("access_token")):
            return {"errcode": 40001, "errmsg": ERRMSG[40001]}
        scene = ((body.get("action_info") or {}).get("scene") or {}).get("scene_str")
        if (
            body.get("action_name") != "QR_LIMIT_STR_SCENE"
            or not isinstance(scene, str)
            or not 1 <= len(scene) <= 64
        ):
            return {"errcode": 40053, "errmsg": "invalid action info"}
        errcode = self._rule(QRCODE, body)
        if errcode is not None:
            return {"errcode": errcode, "errmsg": ERRMSG.get(errcode, "error")}
        serial = sum(1 for c in self.calls if c.path == QRCODE) + 1
        ticket = f"gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL{serial:04d}=="
        return {"ticket": ticket, "url": f"http://weixin.qq.com/q/fake{serial:04d}{len(scene):02d}"}

    def _mass(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if not self._token_ok(query.get("access_token")):
            return {"errcode": 40001, "errmsg": ERRMSG[40001]}
        touser = body.get("touser")
        if not isinstance(touser, list) or not 2 <= len(touser) <= 10_000:
            return {"errcode": 40130, "errmsg": ERRMSG[40130]}
        if body.get("msgtype") != "text" or not (body.get("text") or {}).get("content"):
            return {"errcode": 44002, "errmsg": "empty post data"}
        client_id = str(body.get("clientmsgid") or "")
        if len(client_id) > 64:
            return {"errcode": 45067, "errmsg": ERRMSG[45067]}
        if client_id and client_id in self._mass_ids:
            return {"errcode": 45065, "errmsg": ERRMSG[45065], "msg_id": self._mass_ids[client_id]}
        errcode = self._rule(MASS, body)
        if errcode is not None:
            return {"errcode": errcode, "errmsg": ERRMSG.get(errcode, "error")}
        for openid in touser:
            if self.mass_received.get(openid, 0) < self.mass_quota:
                self.mass_received[openid] = self.mass_received.get(openid, 0) + 1
        msg_id = 3_000_000 + len(self._mass_ids)
        if client_id:
            self._mass_ids[client_id] = msg_id
        return {"errcode": 0, "errmsg": "send job submission success", "msg_id": msg_id, "msg_data_id": 1}

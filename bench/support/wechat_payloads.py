"""Callbacks built exactly as WeChat's servers send them to an Official Account.

Plain mode: the message XML as the body, ``?signature=&timestamp=&nonce=&openid=`` where the signature is
SHA-1 of the sorted token, timestamp and nonce. Safe mode (``encrypt_type=aes``): the body is
``<xml><ToUserName/><Encrypt/></xml>`` with the message AES-encrypted by the WXBizMsgCrypt scheme
(wechatpy's ``PrpCrypto``: random 16 bytes, length, message, app id, PKCS#7, AES-256-CBC), plus
``msg_signature`` = SHA-1 of the sorted token, timestamp, nonce and Encrypt.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from wechatpy.crypto import PrpCrypto
from wechatpy.utils import to_text

TOKEN = "test-callback-token"
APP_ID = "wx1234567890abcdef"
APP_SECRET = "test-app-secret-0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as the console issues it
ACCOUNT = "gh_0123456789ab"  # the Official Account's original id (ToUserName)

_ids = count(int(time.time() * 1000) % 10**9 * 1000)


def sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


def _xml(fields: dict[str, Any], raw: str = "") -> str:
    """Numbers bare, strings in CDATA, as WeChat writes them; ``raw`` is appended as is."""
    inner = "".join(
        f"<{k}>{v}</{k}>" if isinstance(v, int | float) else f"<{k}>{cdata(str(v))}</{k}>"
        for k, v in fields.items()
    )
    return f"<xml>{inner}{raw}</xml>"


def _base(openid: str, msg_type: str, create_time: int | None) -> dict[str, Any]:
    return {
        "ToUserName": ACCOUNT,
        "FromUserName": openid,
        "CreateTime": create_time if create_time is not None else int(time.time()),
        "MsgType": msg_type,
    }


def new_msg_id() -> int:
    return next(_ids)


def text(openid: str, content: str, *, msg_id: int | None = None, create_time: int | None = None) -> str:
    fields = _base(openid, "text", create_time)
    fields["Content"] = content
    fields["MsgId"] = msg_id if msg_id is not None else new_msg_id()
    return _xml(fields)


def image(openid: str, media_id: str, pic_url: str, *, msg_id: int | None = None) -> str:
    fields = _base(openid, "image", None)
    fields["PicUrl"] = pic_url
    fields["MsgId"] = msg_id if msg_id is not None else new_msg_id()
    fields["MediaId"] = media_id
    return _xml(fields)


def location(
    openid: str, lat: float, lon: float, label: str, *, scale: int = 15, msg_id: int | None = None
) -> str:
    fields = _base(openid, "location", None)
    fields.update({"Location_X": lat, "Location_Y": lon, "Scale": scale, "Label": label})
    fields["MsgId"] = msg_id if msg_id is not None else new_msg_id()
    return _xml(fields)


def voice(openid: str, recognition: str, *, msg_id: int | None = None) -> str:
    fields = _base(openid, "voice", None)
    fields.update({"MediaId": "voice_media", "Format": "amr", "Recognition": recognition})
    fields["MsgId"] = msg_id if msg_id is not None else new_msg_id()
    return _xml(fields)


def event(openid: str, name: str, *, create_time: int | None = None, **extra: Any) -> str:
    fields = _base(openid, "event", create_time)
    fields["Event"] = name
    fields.update(extra)
    return _xml(fields)


def subscribe(openid: str, *, create_time: int | None = None) -> str:
    return event(openid, "subscribe", create_time=create_time, EventKey="")


def location_event(openid: str, lat: float, lon: float, *, create_time: int | None = None) -> str:
    return event(openid, "LOCATION", create_time=create_time, Latitude=lat, Longitude=lon, Precision=65.0)


def subscribe_popup(openid: str, template_id: str, status: str = "accept") -> str:
    fields = _base(openid, "event", None)
    fields["Event"] = "subscribe_msg_popup_event"
    return _xml(
        fields,
        "<SubscribeMsgPopupEvent><List>"
        f"<TemplateId>{cdata(template_id)}</TemplateId>"
        f"<SubscribeStatusString>{cdata(status)}</SubscribeStatusString>"
        "<PopupScene>2</PopupScene>"
        "</List></SubscribeMsgPopupEvent>",
    )


@dataclass
class Signed:
    """One callback request: query parameters and body."""

    params: dict[str, str]
    body: bytes
    nonce: str = ""
    timestamp: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def sign(
    xml: str,
    *,
    token: str = TOKEN,
    timestamp: int | None = None,
    nonce: str | None = None,
    aes: bool = False,
    aes_key: str = AES_KEY,
    app_id: str = APP_ID,
    openid: str | None = None,
) -> Signed:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    params = {"signature": sha1_sorted(token, ts, nonce), "timestamp": ts, "nonce": nonce}
    if openid:
        params["openid"] = openid
    if not aes:
        return Signed(params, xml.encode("utf-8"), nonce, ts)
    encrypt = encrypt_xml(xml, aes_key, app_id)
    params["encrypt_type"] = "aes"
    params["msg_signature"] = sha1_sorted(token, ts, nonce, encrypt)
    body = f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>"
    return Signed(params, body.encode("utf-8"), nonce, ts)


def encrypt_xml(xml: str, aes_key: str = AES_KEY, app_id: str = APP_ID) -> str:
    import base64

    key = base64.b64decode(aes_key + "=")
    return to_text(PrpCrypto(key).encrypt(xml, app_id))


def decrypt_reply(body: str, aes_key: str = AES_KEY, app_id: str = APP_ID, token: str = TOKEN) -> str:
    """Open an encrypted passive reply as WeChat would (checking its MsgSignature)."""
    import base64

    import defusedxml.ElementTree as ET

    root = ET.fromstring(body)
    encrypt = root.findtext("Encrypt") or ""
    expected = sha1_sorted(token, root.findtext("TimeStamp") or "", root.findtext("Nonce") or "", encrypt)
    assert expected == root.findtext("MsgSignature"), "reply signature does not verify"
    key = base64.b64decode(aes_key + "=")
    return to_text(PrpCrypto(key).decrypt(encrypt, app_id))


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oEVIL]]></FromUserName>
<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>&lol9;</Content>
<MsgId>1</MsgId></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oEVIL]]></FromUserName>
<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>&xxe;</Content>
<MsgId>2</MsgId></xml>"""

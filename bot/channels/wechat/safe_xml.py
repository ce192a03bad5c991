"""Reading a callback's untrusted XML: parsed without any DTD or entity, and its fields read as
wechatpy's parser reads them (text stripped). Shared by the Official Account and WeCom callbacks."""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError, TreeBuilder, XMLParser

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from bot.channels.wechat.guards import MAX_ELEMENTS, Refused, check_xml_bytes


class _HasDoctype(Exception):
    pass


class _TooBig(Exception):
    pass


class _NoDoctype(TreeBuilder):
    """expat (C) builds the tree; a document type declaration of any kind stops it at its first
    line, before an entity could be declared or anything external named. A callback has a dozen
    elements: past ``MAX_ELEMENTS`` the document is refused (parse time stays bounded)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements = 0

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _HasDoctype

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise _TooBig
        return super().start(tag, attrs)


def safe_parse(data: bytes | str) -> Element:
    """Parse untrusted XML: any DTD, entity declaration or external reference is refused.

    Entities (and so entity expansion and external entities) can only be declared inside a DTD, so a
    document without one is parsed by the C parser directly (callbacks are the hot path: this costs
    less than half of defusedxml's pure-Python parser); a document with a DTD goes to defusedxml,
    which refuses it and names why. Before either, ``check_xml_bytes`` refuses a DTD or a body that
    is not UTF-8 by looking at the bytes: a hostile document costs microseconds, not a parse."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    check_xml_bytes(raw)
    parser = XMLParser(target=_NoDoctype())
    try:
        parser.feed(raw)
        return parser.close()
    except _HasDoctype:
        pass
    except _TooBig:
        raise Refused(400, "too many elements") from None
    except ParseError:
        raise Refused(400, "malformed xml") from None
    try:
        SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Refused(400, f"hostile xml ({type(exc).__name__})") from None
    except SafeET.ParseError:
        raise Refused(400, "malformed xml") from None
    raise Refused(400, "hostile xml (DTDForbidden)")  # forbid_dtd never lets a DTD through


def child(root: Element, name: str) -> str:
    found = root.find(name)
    return (found.text or "").strip() if found is not None else ""


def event_type(root: Element) -> str:
    """The event's type as wechatpy names it: a subscription by scanning a product code or a QR code
    with a scene is ``subscribe_scan_product`` / ``subscribe_scan``."""
    event = child(root, "Event").lower()
    if event == "subscribe":
        key = child(root, "EventKey")
        if key.startswith(("scanbarcode|", "scanimage|")):
            return "subscribe_scan_product"
        if key.startswith("qrscene_"):
            return "subscribe_scan"
    return event


def coordinate(value: object) -> float | None:
    """A latitude or longitude field as a number; None when it is missing or not one."""
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return number if -180.0 <= number <= 180.0 else None

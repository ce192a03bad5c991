"""Chat commands, recognised the same way on every channel: a slash command (Telegram style) or the
Chinese keyword a resident or worker would type on WeChat ("接单 12", "完成 12 已清理")."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Cmd(enum.StrEnum):
    START = "start"
    HELP = "help"
    CANCEL = "cancel"
    MY_CASES = "my_cases"  # a resident's own reports
    QUERY = "query"  # one case by number
    CASES = "cases"  # a staff member's open cases
    ACCEPT = "accept"
    RESOLVE = "resolve"
    TRIAGE = "triage"
    ASSIGN = "assign"
    DONT_KNOW = "dont_know"  # the resident cannot say where it is


@dataclass(frozen=True)
class Command:
    kind: Cmd
    number: int | None = None
    arg: str | None = None


_NUM = r"[#＃]?\s*(?P<number>\d{1,9})"
_PATTERNS: list[tuple[Cmd, re.Pattern[str]]] = [
    (Cmd.START, re.compile(r"^/start(?:\s.*)?$", re.I)),
    (Cmd.HELP, re.compile(r"^(?:/help|帮助|菜单|help|使用说明|怎么用|[?？])$", re.I)),
    (Cmd.CANCEL, re.compile(r"^(?:/cancel|取消)$", re.I)),
    (Cmd.DONT_KNOW, re.compile(r"^(?:不知道|不清楚|说不清|跳过)[。.!！]?$")),
    (Cmd.MY_CASES, re.compile(r"^(?:/my|我的|我的案件|我的反映|我的报告|我的工单|查询|进度)$", re.I)),
    (Cmd.QUERY, re.compile(rf"^(?:/case|查询|进度|查看|案件)\s*{_NUM}$", re.I)),
    (Cmd.CASES, re.compile(r"^(?:/cases|任务|我的任务|待办|待处理)$", re.I)),
    (Cmd.ACCEPT, re.compile(rf"^(?:/accept|接单|接)\s*{_NUM}$", re.I)),
    (
        Cmd.RESOLVE,
        re.compile(
            rf"^(?:/resolve|完成|已处理|办结|处理完毕)\s*{_NUM}(?:[\s:：,，。]+(?P<arg>.*))?$", re.I | re.S
        ),
    ),
    (Cmd.TRIAGE, re.compile(r"^(?:/triage|待分拣|分拣)$", re.I)),
    (Cmd.ASSIGN, re.compile(rf"^(?:/assign|分派|指派)\s*{_NUM}\s+(?P<arg>\S+)$", re.I)),
]


def parse_command(text: str) -> Command | None:
    text = text.strip()
    for kind, pattern in _PATTERNS:
        match = pattern.match(text)
        if match is None:
            continue
        groups = match.groupdict()
        number = int(groups["number"]) if groups.get("number") else None
        arg = (groups.get("arg") or "").strip() or None
        return Command(kind, number, arg)
    return None


def parse_action(action: str) -> Command | None:
    """A button's action string ("accept:12") as the command it stands for."""
    name, _, number = action.partition(":")
    try:
        kind = Cmd(name)
    except ValueError:
        return None
    return Command(kind, int(number) if number.isdigit() else None)

"""Chat commands, recognised the same way on every channel: a slash command (Telegram style) or the
Chinese keyword a resident or worker would type on WeChat ("接单 12", "完成 12 已清理"). Buttons carry
the same commands as action strings ("accept:12", "rate:12:good")."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from handlers.inbound import match_form


class Cmd(enum.StrEnum):
    START = "start"
    HELP = "help"
    CANCEL = "cancel"
    BIND = "bind"  # a staff member's one-time invite code
    MY_CASES = "my"  # a resident's own reports
    QUERY = "case"  # one case by number
    RATE_GOOD = "good"
    RATE_BAD = "bad"
    FOLLOW = "follow"  # follow the open case already reported
    NEW_REPORT = "newreport"  # no, it is a different problem
    DONT_KNOW = "dontknow"  # the resident cannot say where it is
    CASES = "cases"  # a staff member's open cases
    ACCEPT = "accept"
    PROGRESS = "progress"
    RESOLVE = "resolve"
    TRANSFER = "transfer"  # to another worker
    TRANSFER_GRID = "transfergrid"
    REFER = "refer"  # close: not ours, with the body it was referred to
    INVALID = "invalid"
    DUPLICATE = "duplicate"  # close as a duplicate of another case
    REOPEN = "reopen"
    TRIAGE = "triage"
    ASSIGN = "assign"
    BLOCK = "block"
    UNBLOCK = "unblock"
    INVITE = "invite"
    STATS = "stats"
    BROADCAST_OK = "bcok"  # button only: confirm a broadcast draft / approve a calendar draft
    BROADCAST_CANCEL = "bccancel"  # button only: cancel a broadcast / skip a calendar draft
    CHOOSE = "choose"  # button only: the resident's answer to "which kind of problem?" ("choose::token:2")
    RECLASSIFY = "reclassify"  # 改类 12 垃圾: a leader or admin corrects a case's category


@dataclass(frozen=True)
class Command:
    kind: Cmd
    number: int | None = None
    arg: str | None = None


_N = r"[#＃]?\s*(?P<number>\d{1,9})"
_REST = r"(?:[\s:：,，。]+(?P<arg>.*))?"
_OPT_N = rf"(?:\s*{_N})?"


def _p(words: str, tail: str = "") -> re.Pattern[str]:
    return re.compile(rf"^(?:{words}){tail}$", re.I | re.S)


_PATTERNS: list[tuple[Cmd, re.Pattern[str]]] = [
    (Cmd.START, _p(r"/start", r"(?:\s+(?P<arg>\S+))?")),
    (Cmd.HELP, _p(r"/help|帮助|菜单|help|使用说明|怎么用|[?？]")),
    (Cmd.CANCEL, _p(r"/cancel|取消")),
    # Any Latin code, even a wrong length, gets the "invalid or expired" answer rather than being
    # taken for a report; a bare 绑定 asks for the code.
    (Cmd.BIND, _p(r"/bind|绑定账号|绑定", r"(?:\s*(?P<arg>[A-Za-z0-9]{1,32}))?")),
    (Cmd.DONT_KNOW, _p(r"不知道|不清楚|说不清|跳过", r"[。.!！]?")),
    (Cmd.MY_CASES, _p(r"/my|我的|我的案件|我的反映|我的报告|我的工单|查询|进度")),
    (Cmd.QUERY, _p(r"/case|查询|进度|查看|案件", rf"\s*{_N}")),
    (Cmd.RATE_GOOD, _p(r"/good|满意|非常满意|好评", rf"{_OPT_N}[。.!！]?")),
    (Cmd.RATE_BAD, _p(r"/bad|不满意|差评", rf"{_OPT_N}{_REST}")),
    (Cmd.FOLLOW, _p(r"/follow|关注|跟进", rf"{_OPT_N}")),
    (Cmd.NEW_REPORT, _p(r"/newreport|新报|重新报|不是同一个", rf"{_OPT_N}")),
    (Cmd.CASES, _p(r"/cases|任务|我的任务|待办|待处理")),
    (Cmd.ACCEPT, _p(r"/accept|接单|接", rf"\s*{_N}")),
    (Cmd.PROGRESS, _p(r"/progress|处理中|开始处理", rf"\s*{_N}")),
    (Cmd.RESOLVE, _p(r"/resolve|完成|已处理|办结|处理完毕", rf"\s*{_N}{_REST}")),
    (Cmd.TRANSFER_GRID, _p(r"/transfergrid|转网格", rf"\s*{_N}\s+(?P<arg>\S+)")),
    (Cmd.TRANSFER, _p(r"/transfer|转派|转给", rf"\s*{_N}{_REST}")),
    (Cmd.REFER, _p(r"/refer|转交|非本社区|不属于", rf"\s*{_N}{_REST}")),
    (Cmd.INVALID, _p(r"/invalid|无效", rf"\s*{_N}{_REST}")),
    (Cmd.DUPLICATE, _p(r"/duplicate|重复|合并", rf"\s*{_N}{_REST}")),
    (Cmd.REOPEN, _p(r"/reopen|重开|重新打开", rf"\s*{_N}{_REST}")),
    (Cmd.TRIAGE, _p(r"/triage|待分拣|分拣")),
    (Cmd.ASSIGN, _p(r"/assign|分派|指派", rf"\s*{_N}\s+(?P<arg>\S+)")),
    (Cmd.UNBLOCK, _p(r"/unblock|解除拉黑|取消拉黑", rf"\s*{_N}")),
    (Cmd.BLOCK, _p(r"/block|拉黑", rf"\s*{_N}")),
    (Cmd.INVITE, _p(r"/invite|邀请", r"\s+(?P<arg>\S+)")),
    (Cmd.STATS, _p(r"/stats|统计")),
    (Cmd.RECLASSIFY, _p(r"/reclassify|改类|改类别|更改类别", rf"(?:\s*{_N}(?:[\s:：,，]*(?P<arg>.+))?)?")),
]


# Commands whose argument is an identifier (a staff id, a grid code, a code): read folded. Every
# other argument is what a person wrote (a note, a reason) and is kept as written.
_IDENTIFIER_ARGS = frozenset({Cmd.START, Cmd.BIND, Cmd.ASSIGN, Cmd.TRANSFER_GRID, Cmd.INVITE})


def parse_command(text: str) -> Command | None:
    original = text.strip()
    folded = match_form(original)
    for kind, pattern in _PATTERNS:
        match = pattern.match(folded)
        if match is None:
            continue
        groups = match.groupdict()
        number = int(groups["number"]) if groups.get("number") else None
        arg = None
        if groups.get("arg") is not None:
            source = folded if kind in _IDENTIFIER_ARGS else original
            arg = source[match.start("arg") : match.end("arg")].strip() or None
        return Command(kind, number, arg)
    return None


def action(kind: Cmd, number: int | None = None, arg: str | None = None) -> str:
    """The action string a button carries: "accept:12", "rate:12:good" style."""
    parts = [kind.value, "" if number is None else str(number)]
    if arg:
        parts.append(arg)
    return ":".join(parts)


# A button's case number: ASCII digits, at most nine like a typed one (a forged 20-digit number would
# overflow the database's integer before any permission check).
ACTION_NUMBER = re.compile(r"[0-9]{1,9}")


def parse_action(value: str) -> Command | None:
    """A button's action string as the command it stands for; None for anything unknown."""
    name, _, rest = value.partition(":")
    number_text, _, arg = rest.partition(":")
    try:
        kind = Cmd(name)
    except ValueError:
        return None
    if number_text and ACTION_NUMBER.fullmatch(number_text) is None:
        return None
    return Command(kind, int(number_text) if number_text else None, arg or None)

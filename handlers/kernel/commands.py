"""Chat commands, recognised the same way on every channel: a slash command (Telegram style) or the
Chinese keyword a resident or worker would type on WeChat ("接单 12", "完成 12 已清理"). Buttons carry
the same commands as action strings ("accept:12", "rate:12:good").

There is one registry of commands (``COMMANDS``). A command is declared once, as a ``CommandSpec``:
its words (a pattern, with example texts), who may use it, what anyone else is told, its handler, its
help lines and its Telegram menu entry. The core's case commands are declared here (the resident and
staff flows bind their handlers); features (reminders, broadcasts) declare theirs in their ``chat``
module. Where two commands' words meet, the registry refuses the second one unless one of them says
it goes first (``before``), so a clash is decided in one place and tested, not by the order of ``if``
statements. Staff help texts and the Telegram menu are generated from the registry.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from handlers.kernel.inbound import match_form
from messages import render
from storage.models import Role


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


# Who may use a command: the staff roles, and residents (anyone who is not staff).
RESIDENT = "resident"
STAFF: frozenset[str] = frozenset(Role)
EVERYONE: frozenset[str] = STAFF | {RESIDENT}
CASE_STAFF: frozenset[str] = frozenset({Role.WORKER, Role.LEADER, Role.ADMIN})


@dataclass(frozen=True)
class HelpLine:
    """One line of a role's help text (a message key), at ``rank`` among the lines of every command."""

    key: str
    roles: frozenset[str]
    rank: int


@dataclass(frozen=True)
class CommandSpec:
    """One command, declared once.

    ``pattern`` is matched on the folded text (``match_form``); ``examples`` are texts that must match
    it, and are what the clash check tries against every other command's pattern. Staff outside
    ``roles`` are told ``refusal`` (a message key; None: their help text). A resident outside
    ``roles`` is told ``resident_refusal`` by the owning flow, or with none, "staff only" before any
    pending question can take the words as an answer.
    ``handler`` is what the owning flow calls (its signature is the owner's business); ``kind`` ties a
    core command to the ``Command`` that ``parse_command`` returns and buttons carry.
    """

    name: str
    pattern: re.Pattern[str] | None
    examples: tuple[str, ...] = ()
    roles: frozenset[str] = EVERYONE
    refusal: str | None = None
    resident_refusal: str | None = None
    feature: str = "core"
    kind: Cmd | None = None
    handler: Callable[..., Any] | None = None
    resident_handler: Callable[..., Any] | None = None
    help: tuple[HelpLine, ...] = ()
    menu: str | None = None  # the Telegram menu's command (its text: telegram.cmd.<menu>)
    menu_rank: int = 0
    before: frozenset[str] = frozenset()  # commands whose words this one takes first where they meet

    def match(self, text: str) -> re.Match[str] | None:
        return self.pattern.match(text) if self.pattern is not None else None

    def allows(self, role: str | None) -> bool:
        return (role or RESIDENT) in self.roles

    def refuses_residents_first(self) -> bool:
        """A staff command a resident typed is refused before any pending question reads it."""
        return RESIDENT not in self.roles and self.resident_refusal is None


class CommandClash(ValueError):
    """Two commands take the same words and neither says it goes first (or a name is taken twice)."""


@dataclass
class CommandRegistry:
    """Every command, in the order each flow tries them. Features see a message before the core's
    flows (``handlers/feature_set.py``), so a feature's command declared ``before`` a core command
    takes its words there; within one feature, ``add`` puts it ahead of the command it goes before."""

    specs: list[CommandSpec] = field(default_factory=list)

    def add(self, spec: CommandSpec) -> CommandSpec:
        if any(s.name == spec.name for s in self.specs):
            raise CommandClash(f"command {spec.name!r} is declared twice")
        for example in spec.examples:
            if spec.match(match_form(example)) is None:
                raise CommandClash(f"{spec.name}: its own example {example!r} does not match its pattern")
        position = len(self.specs)
        for index, other in enumerate(self.specs):
            if self._first(spec, other) is spec and other.feature == spec.feature:
                position = min(position, index)  # tried before the command it goes before
        self.specs.insert(position, spec)
        return spec

    def _first(self, a: CommandSpec, b: CommandSpec) -> CommandSpec | None:
        """Which of two commands takes words both match; None when no example of either meets the other."""
        meet = [e for e in a.examples if b.match(match_form(e))] + [
            e for e in b.examples if a.match(match_form(e))
        ]
        if not meet:
            return None
        if b.name in a.before:
            return a
        if a.name in b.before:
            return b
        raise CommandClash(f"{a.name} and {b.name} both take {meet[0]!r}: say which goes first (before=)")

    def bind(self, kind: Cmd, *, staff: Callable[..., Any] | None = None, resident: Any = None) -> None:
        """Attach a core command's handlers (the flows that own them import this module, not the reverse)."""
        for index, spec in enumerate(self.specs):
            if spec.kind == kind:
                self.specs[index] = replace(
                    spec,
                    handler=staff if staff is not None else spec.handler,
                    resident_handler=resident if resident is not None else spec.resident_handler,
                )
                return
        raise KeyError(kind)

    def get(self, name: str) -> CommandSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def of_kind(self, kind: Cmd) -> CommandSpec:
        for spec in self.specs:
            if spec.kind == kind:
                return spec
        raise KeyError(kind)

    def of(self, feature: str) -> Iterator[CommandSpec]:
        return (s for s in self.specs if s.feature == feature)

    def for_audience(self, feature: str, staff: bool) -> Iterator[CommandSpec]:
        """A feature's commands for staff (those residents may not use) or for residents, in order."""
        return (s for s in self.of(feature) if (RESIDENT not in s.roles) == staff)

    def claims(self, feature: str, staff: bool, text: str) -> bool:
        """Whether ``text`` is one of the feature's commands for that audience."""
        return any(s.match(text) is not None for s in self.for_audience(feature, staff))

    def core(self) -> Iterator[CommandSpec]:
        return (s for s in self.specs if s.kind is not None and s.pattern is not None)

    def first_match(
        self, text: str, specs: Iterable[CommandSpec]
    ) -> tuple[CommandSpec, re.Match[str]] | tuple[None, None]:
        for spec in specs:
            if (found := spec.match(text)) is not None:
                return spec, found
        return None, None

    def resident_may_not(self, text: str) -> bool:
        """Whether a feature's staff command matches a resident's text (refused as "staff only")."""
        return any(
            s.kind is None and s.refuses_residents_first() and s.match(text) is not None for s in self.specs
        )

    def help_text(self, for_role: str, header: str, **params: Any) -> str:
        """A role's help: ``header`` (a message key, filled with ``params``), then the help lines of
        every command that role may use, by rank."""
        lines = sorted((h for s in self.specs for h in s.help if for_role in h.roles), key=lambda h: h.rank)
        return "\n".join([render(header, **params), *(render(h.key) for h in lines)])

    def menu(self) -> list[str]:
        return [s.menu for s in sorted(self.specs, key=lambda s: s.menu_rank) if s.menu]


COMMANDS = CommandRegistry()

_N = r"[#＃]?\s*(?P<number>\d{1,9})"
_REST = r"(?:[\s:：,，。]+(?P<arg>.*))?"
_OPT_N = rf"(?:\s*{_N})?"


def _p(words: str, tail: str = "") -> re.Pattern[str]:
    return re.compile(rf"^(?:{words}){tail}$", re.I | re.S)


def _core(
    kind: Cmd,
    pattern: re.Pattern[str] | None,
    examples: tuple[str, ...] = (),
    roles: frozenset[str] = EVERYONE,
    **more: Any,
) -> None:
    COMMANDS.add(CommandSpec(f"core.{kind.value}", pattern, examples, roles, kind=kind, **more))


def _help(key: str, rank: int, *roles: str) -> HelpLine:
    return HelpLine(key, frozenset(roles), rank)


W, L, A = Role.WORKER, Role.LEADER, Role.ADMIN
_RESIDENT = frozenset({RESIDENT})
_LEADERS = frozenset({L, A})
_ADMINS = frozenset({A})

# The core's commands, in the order they are tried. The staff help lines' ranks put them in the order
# each role's help has always had (the broadcasts feature's lines sit at 75 and 76).
_core(Cmd.START, _p(r"/start", r"(?:\s+(?P<arg>\S+))?"), ("/start", "/start CODE1234"), menu="start")
_core(
    Cmd.HELP,
    _p(r"/help|帮助|菜单|help|使用说明|怎么用|[?？]"),
    ("帮助", "/help", "?"),
    menu="help",
    menu_rank=1,
)
_core(
    Cmd.CANCEL,
    _p(r"/cancel|取消"),
    ("取消", "/cancel"),
    help=(_help("help.staff.cancel", 100, W, L, A),),
    menu="cancel",
    menu_rank=9,
)
# Any Latin code, even a wrong length, gets the "invalid or expired" answer rather than being
# taken for a report; a bare 绑定 asks for the code.
_core(Cmd.BIND, _p(r"/bind|绑定账号|绑定", r"(?:\s*(?P<arg>[A-Za-z0-9]{1,32}))?"), ("绑定", "绑定 ABCD1234"))
_core(Cmd.DONT_KNOW, _p(r"不知道|不清楚|说不清|跳过", r"[。.!！]?"), ("不知道", "跳过"), _RESIDENT)
_core(
    Cmd.MY_CASES,
    _p(r"/my|我的|我的案件|我的反映|我的报告|我的工单|查询|进度"),
    ("我的", "/my"),
    menu="my",
    menu_rank=2,
)
_core(
    Cmd.QUERY,
    _p(r"/case|查询|进度|查看|案件", rf"\s*{_N}"),
    ("查看 12", "查询 12"),
    help=(_help("help.staff.show", 20, W, L, A),),
)
_core(Cmd.RATE_GOOD, _p(r"/good|满意|非常满意|好评", rf"{_OPT_N}[。.!！]?"), ("满意", "满意 12"), _RESIDENT)
_core(Cmd.RATE_BAD, _p(r"/bad|不满意|差评", rf"{_OPT_N}{_REST}"), ("不满意 12 还是脏",), _RESIDENT)
_core(Cmd.FOLLOW, _p(r"/follow|关注|跟进", rf"{_OPT_N}"), ("关注", "关注 12"), _RESIDENT)
_core(
    Cmd.NEW_REPORT, _p(r"/newreport|新报|重新报|不是同一个", rf"{_OPT_N}"), ("新报", "不是同一个"), _RESIDENT
)
_core(
    Cmd.CASES,
    _p(r"/cases|任务|我的任务|待办|待处理"),
    ("任务", "/cases"),
    STAFF,
    help=(
        _help("help.staff.cases_worker", 10, W),
        _help("help.staff.cases_leader", 10, L),
        _help("help.staff.cases_admin", 10, A),
    ),
    menu="cases",
    menu_rank=3,
)
_core(
    Cmd.ACCEPT,
    _p(r"/accept|接单|接", rf"\s*{_N}"),
    ("接单 12",),
    STAFF,
    help=(_help("help.staff.work_worker", 40, W), _help("help.staff.work_leader", 40, L)),
)
_core(Cmd.PROGRESS, _p(r"/progress|处理中|开始处理", rf"\s*{_N}"), ("处理中 12",), STAFF)
_core(
    Cmd.RESOLVE,
    _p(r"/resolve|完成|已处理|办结|处理完毕", rf"\s*{_N}{_REST}"),
    ("完成 12 已清理",),
    STAFF,
    help=(_help("help.staff.resolve_worker", 45, W),),
)
_core(Cmd.TRANSFER_GRID, _p(r"/transfergrid|转网格", rf"\s*{_N}\s+(?P<arg>\S+)"), ("转网格 12 G2",), STAFF)
_core(
    Cmd.TRANSFER,
    _p(r"/transfer|转派|转给", rf"\s*{_N}{_REST}"),
    ("转派 12 w2",),
    STAFF,
    help=(_help("help.staff.transfer", 50, W, L, A),),
)
_core(
    Cmd.REFER,
    _p(r"/refer|转交|非本社区|不属于", rf"\s*{_N}{_REST}"),
    ("转交 12 物业",),
    STAFF,
    help=(_help("help.staff.close", 60, W, L, A),),
)
_core(Cmd.INVALID, _p(r"/invalid|无效", rf"\s*{_N}{_REST}"), ("无效 12",), STAFF)
_core(Cmd.DUPLICATE, _p(r"/duplicate|重复|合并", rf"\s*{_N}{_REST}"), ("重复 12 10",), STAFF)
_core(
    Cmd.REOPEN,
    _p(r"/reopen|重开|重新打开", rf"\s*{_N}{_REST}"),
    ("重开 12 没扫干净",),
    STAFF,
    help=(_help("help.staff.reopen", 70, W, L, A),),
)
_core(
    Cmd.TRIAGE,
    _p(r"/triage|待分拣|分拣"),
    ("待分拣",),
    _ADMINS,
    refusal="staff.only_admins",
    menu="triage",
    menu_rank=4,
)
_core(
    Cmd.ASSIGN,
    _p(r"/assign|分派|指派", rf"\s*{_N}\s+(?P<arg>\S+)"),
    ("分派 12 w1",),
    _LEADERS,
    refusal="staff.admin_only",
    help=(_help("help.staff.assign", 30, L, A),),
)
_core(
    Cmd.UNBLOCK,
    _p(r"/unblock|解除拉黑|取消拉黑", rf"\s*{_N}"),
    ("解除拉黑 12",),
    _ADMINS,
    refusal="staff.only_admins",
)
_core(
    Cmd.BLOCK,
    _p(r"/block|拉黑", rf"\s*{_N}"),
    ("拉黑 12",),
    _ADMINS,
    refusal="staff.only_admins",
    help=(_help("help.staff.manage", 95, A),),
)
_core(Cmd.INVITE, _p(r"/invite|邀请", r"\s+(?P<arg>\S+)"), ("邀请 w3",), _ADMINS, refusal="staff.only_admins")
_core(
    Cmd.STATS,
    _p(r"/stats|统计"),
    ("统计",),
    _LEADERS,
    refusal="staff.admin_only",
    help=(_help("help.staff.stats", 90, L, A),),
    menu="stats",
    menu_rank=5,
)
_core(
    Cmd.RECLASSIFY,
    _p(r"/reclassify|改类|改类别|更改类别", rf"(?:\s*{_N}(?:[\s:：,，]*(?P<arg>.+))?)?"),
    ("改类 12 垃圾",),
    _LEADERS,
    refusal="staff.admin_only",
    help=(_help("help.staff.reclassify", 80, L, A),),
)
# Buttons only: no words. The broadcasts feature and the category question bind them.
_core(Cmd.BROADCAST_OK, None, (), _ADMINS, refusal="bc.admin_only")
_core(Cmd.BROADCAST_CANCEL, None, (), _ADMINS, refusal="bc.admin_only")
_core(Cmd.CHOOSE, None, (), _RESIDENT)


# Commands whose argument is an identifier (a staff id, a grid code, a code): read folded. Every
# other argument is what a person wrote (a note, a reason) and is kept as written.
_IDENTIFIER_ARGS = frozenset({Cmd.START, Cmd.BIND, Cmd.ASSIGN, Cmd.TRANSFER_GRID, Cmd.INVITE})


def parse_command(text: str) -> Command | None:
    original = text.strip()
    folded = match_form(original)
    for spec in COMMANDS.core():
        match = spec.match(folded)
        if match is None:
            continue
        assert spec.kind is not None
        groups = match.groupdict()
        number = int(groups["number"]) if groups.get("number") else None
        arg = None
        if groups.get("arg") is not None:
            source = folded if spec.kind in _IDENTIFIER_ARGS else original
            arg = source[match.start("arg") : match.end("arg")].strip() or None
        return Command(spec.kind, number, arg)
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

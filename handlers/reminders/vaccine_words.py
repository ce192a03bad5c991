"""What residents write about vaccines: the names they use for a product, a course or an option group
("乙肝", "脊灰", "乙脑"), dose numbers ("第2针") and dates ("昨天", "5月3日"), found in a message and
resolved against a child's plan (``schedule.plan_child``). Pure: no database, no clock."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from importlib import resources

from handlers.kernel.yaml_text import load_yaml
from handlers.reminders.schedule import DATA_PACKAGE, DoseRule, DoseStatus, Schedule


class MentionKind(enum.StrEnum):
    CODE = "code"  # one product: 乙肝, 百白破, 乙脑减毒 …
    SERIES = "series"  # a course of several products: 脊灰, 流脑
    GROUP = "group"  # an option group: 乙脑, 甲肝 (the product the child is on)


@dataclass(frozen=True)
class VaccineNames:
    aliases: tuple[tuple[str, MentionKind, str], ...]  # longest first

    def find(self, text: str, start: int = 0) -> tuple[int, int, MentionKind, str] | None:
        """The first name in ``text`` at or after ``start``: (start, end, kind, target)."""
        folded = text.lower()
        for i in range(start, len(folded)):
            for alias, kind, target in self.aliases:
                if folded.startswith(alias, i):
                    if alias.isascii() and i > 0 and folded[i - 1].isascii() and folded[i - 1].isalpha():
                        continue  # "td" inside a latin word is not a vaccine
                    return i, i + len(alias), kind, target
        return None


@cache
def vaccine_names() -> VaccineNames:
    path = resources.files(DATA_PACKAGE).joinpath("data", "vaccine_names.yaml")
    data = load_yaml(path.read_text(encoding="utf-8"))
    items: list[tuple[str, MentionKind, str]] = []
    for section, kind in (
        ("vaccines", MentionKind.CODE),
        ("series", MentionKind.SERIES),
        ("groups", MentionKind.GROUP),
    ):
        for target, names in (data.get(section) or {}).items():
            items.extend((str(n).lower(), kind, str(target)) for n in names)
    items.sort(key=lambda t: -len(t[0]))
    return VaccineNames(tuple(items))


_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_DOSE_AFTER = re.compile(r"^\s*(?:疫苗)?\s*(?:第\s*)?([1-9]|[一二两三四五六七八九])(?:\s*[针剂次])?")

_DATE_PATTERNS = [
    re.compile(r"(?P<y>(?:19|20)\d{2})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"),
    re.compile(r"(?<!\d)(?P<y>(?:19|20)\d{2})(?P<m>\d{2})(?P<d>\d{2})(?!\d)"),
    re.compile(r"(?<![\d年])(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]?"),
]
_RELATIVE_DAYS = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2}


def parse_date(text: str, today: date) -> date | None:
    """A date written as 2024-05-01, 2024/5/1, 2024.5.1, 2024年5月1日, 20240501, 5月1日 (this year, or
    last year if that is still to come), 今天, 昨天 or 前天. None if there is none or it is impossible."""
    found = find_dates(text, today)
    return found[0][2] if found else None


def find_dates(text: str, today: date) -> list[tuple[int, int, date]]:
    """Every date in ``text`` as (start, end, date), in order; impossible dates are left out."""
    taken: list[tuple[int, int, date]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e, _ in taken)

    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if not free(m.start(), m.end()):
                continue
            groups = m.groupdict()
            year = int(groups["y"]) if groups.get("y") else today.year
            try:
                day = date(year, int(groups["m"]), int(groups["d"]))
            except ValueError:
                continue
            if not groups.get("y") and day > today:
                try:
                    day = day.replace(year=year - 1)
                except ValueError:
                    continue
            taken.append((m.start(), m.end(), day))
    for word, back in _RELATIVE_DAYS.items():
        for m in re.finditer(word, text):
            if free(m.start(), m.end()):
                taken.append((m.start(), m.end(), today - timedelta(days=back)))
    return sorted(taken)


@dataclass(frozen=True)
class Mention:
    kind: MentionKind
    target: str
    number: int | None  # the dose (of the product, or of the course for a series)
    on: date | None
    text: str = field(default="", compare=False)


def find_mentions(text: str, today: date) -> list[Mention]:
    """The vaccines named in a reply, each with its dose number and the date written after it (or, if
    none follows, the last date before it): "乙肝1 2024-05-01 卡介苗 2024-05-01", "麻腮风1 乙脑1 7月16日"."""
    dates = find_dates(text, today)
    masked = list(text)
    for s, e, _ in dates:
        masked[s:e] = [" "] * (e - s)
    plain = "".join(masked)
    names = vaccine_names()
    found: list[tuple[int, int, Mention]] = []
    pos = 0
    while (hit := names.find(plain, pos)) is not None:
        start, end, kind, target = hit
        number = None
        m = _DOSE_AFTER.match(plain[end:])
        if m:
            raw = m.group(1)
            number = int(raw) if raw.isdigit() else _CN_DIGITS[raw]
            end += m.end()
        found.append((start, end, Mention(kind, target, number, None, text[start:end].strip())))
        pos = end
    out = []
    for start, end, mention in found:
        after = [d for s, _, d in dates if s >= end]
        before = [d for s, _, d in dates if s < start]
        on = after[0] if after else (before[-1] if before else None)
        out.append(Mention(mention.kind, mention.target, mention.number, on, mention.text))
    return out


def resolve(mention: Mention, plan: Sequence[DoseStatus], schedule: Schedule) -> DoseRule | None:
    """The dose a mention means for this child: the numbered dose, or the first one not yet recorded."""
    if mention.kind == MentionKind.GROUP:
        codes = {s.rule.code for s in plan if s.rule.option_group == mention.target}
        pending = [s for s in plan if s.rule.option_group == mention.target and not s.done]
        code = pending[0].rule.code if pending else (sorted(codes)[0] if codes else None)
        if code is None:
            code = schedule.default_option(mention.target)
        return resolve(Mention(MentionKind.CODE, code, mention.number, mention.on), plan, schedule)
    if mention.kind == MentionKind.SERIES:
        rules = sorted((r for r in schedule.rules if r.series == mention.target), key=lambda r: r.series_dose)
        if mention.number is not None:
            return next((r for r in rules if r.series_dose == mention.number), None)
        done = {s.rule.key for s in plan if s.done}
        return next((r for r in rules if r.key not in done), None)
    if mention.number is not None:
        return schedule.rule(mention.target, mention.number)
    done = {s.rule.key for s in plan if s.done}
    rules = sorted((r for r in schedule.rules if r.code == mention.target), key=lambda r: r.dose)
    return next((r for r in rules if r.key not in done), rules[-1] if rules else None)

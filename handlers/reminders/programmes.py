"""Follow-up programmes (pure): cadences and the result → next-visit rules, from
``handlers/data/followup_programmes.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any

from handlers.kernel.yaml_text import load_yaml
from handlers.reminders.models import Programme

ROUTINE = "routine"
PLAN = "plan"


@dataclass(frozen=True)
class ProgrammeDef:
    code: str
    name_zh: str
    words: tuple[str, ...]
    routine_interval_days: int
    configurable_interval: bool
    family_recipient: bool
    days_before: tuple[int, ...]
    on_due_day: bool
    overdue_days: tuple[int, ...]
    next_days: Mapping[str, str | int]
    visit_weeks: tuple[int, ...]
    source: tuple[str, ...]

    def results(self) -> set[str]:
        return set(self.next_days)

    def planned_visits(self, anchor: date) -> list[date]:
        return [anchor + timedelta(weeks=w) for w in self.visit_weeks]

    def first_due(self, today: date, interval_days: int, anchor: date | None) -> date:
        if self.visit_weeks and anchor is not None:
            ahead = [d for d in self.planned_visits(anchor) if d >= today]
            return ahead[0] if ahead else today
        return today + timedelta(days=interval_days)

    def next_due(self, done_on: date, result: str, interval_days: int, anchor: date | None) -> date | None:
        """The next visit after one done on ``done_on`` with ``result``; None: nothing planned."""
        rule = self.next_days.get(result, ROUTINE)
        if isinstance(rule, int):
            return done_on + timedelta(days=rule)
        if rule == PLAN and anchor is not None:
            ahead = [d for d in self.planned_visits(anchor) if d > done_on]
            if ahead:
                return ahead[0]
        return done_on + timedelta(days=interval_days)


@dataclass(frozen=True)
class Programmes:
    document: str
    programmes: Mapping[str, ProgrammeDef]
    results: tuple[tuple[str, str], ...]  # (word, result code), longest word first
    methods: Mapping[str, str]  # 电话 → phone

    def get(self, code: str) -> ProgrammeDef:
        return self.programmes[code]

    def find(self, text: str) -> ProgrammeDef | None:
        """The programme a staff member named (高血压, 糖尿病, 精神, 老年体检, 孕产 …)."""
        candidates = [(w, p) for p in self.programmes.values() for w in p.words]
        for word, programme in sorted(candidates, key=lambda c: -len(c[0])):
            if word in text:
                return programme
        return None

    def result(self, text: str) -> str | None:
        for word, code in self.results:
            if word in text:
                return code
        return None

    def method(self, text: str) -> str | None:
        return next((code for word, code in self.methods.items() if word in text), None)


def _programme(code: str, raw: Mapping[str, Any]) -> ProgrammeDef:
    Programme(code)  # every programme in the data file is one the database knows
    next_days: dict[str, str | int] = {}
    for result, rule in (raw.get("next_days") or {}).items():
        next_days[str(result)] = rule if isinstance(rule, int) else str(rule)
    return ProgrammeDef(
        code=code,
        name_zh=str(raw["name_zh"]),
        words=tuple(str(w) for w in raw.get("words") or ()),
        routine_interval_days=int(raw["routine_interval_days"]),
        configurable_interval=bool(raw.get("configurable_interval", False)),
        family_recipient=raw.get("recipient") == "family",
        days_before=tuple(int(d) for d in raw.get("days_before") or ()),
        on_due_day=bool(raw.get("on_due_day", True)),
        overdue_days=tuple(int(d) for d in raw.get("overdue_days") or ()),
        next_days=next_days,
        visit_weeks=tuple(int(w) for w in raw.get("visit_weeks") or ()),
        source=tuple(str(s) for s in raw.get("source") or ()),
    )


@cache
def load_programmes() -> Programmes:
    path = resources.files("handlers").joinpath("data", "followup_programmes.yaml")
    data = load_yaml(path.read_text(encoding="utf-8"))
    programmes = {str(c): _programme(str(c), raw) for c, raw in (data.get("programmes") or {}).items()}
    results = [(str(w), str(code)) for code, words in (data.get("results") or {}).items() for w in words]
    results.sort(key=lambda r: -len(r[0]))
    methods = {str(k): str(v) for k, v in (data.get("methods") or {}).items()}
    return Programmes(str(data.get("document", "")), programmes, tuple(results), methods)

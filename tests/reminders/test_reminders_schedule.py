"""The NIP schedule (pure): data files, a child's first six years, statuses, catch-up, the 28-day
live-vaccine rule, option groups, the 2025 DTaP change, and the ``outreach-bot vaccines`` command."""

from __future__ import annotations

import re
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import pytest
import yaml

from handlers.reminders.programmes import load_programmes
from handlers.reminders.schedule import (
    DoseStatus,
    Given,
    Status,
    add_months,
    load_schedules,
    plan_child,
    schedule_for,
)
from handlers.reminders.vaccine_words import MentionKind, find_mentions, parse_date, resolve
from messages import catalog
from tests.support.cli import lines, run

ANCHORS = {f"S{n}" for n in range(1, 62)} | {"M", "D"}


def by_key(plan: list[DoseStatus]) -> dict[tuple[str, int], DoseStatus]:
    return {(d.code, d.dose): d for d in plan}


def dues(plan: list[DoseStatus]) -> dict[tuple[str, int], date]:
    return {(d.code, d.dose): d.due for d in plan}


# -- the data files ----------------------------------------------------------------------------------


def test_every_schedule_version_loads_and_every_row_names_its_source() -> None:
    schedules = load_schedules()
    assert list(schedules) == ["cn-nip-2021", "cn-nip-2025"]
    for schedule in schedules.values():
        assert schedule.document and "国家免疫规划" in schedule.document
        assert schedule.verified is False  # no official text was available: a human must check it
        assert set(schedule.sources) <= ANCHORS
        for rule in schedule.rules:
            assert rule.source, rule
            assert set(rule.source) <= set(schedule.sources), rule
    folder = resources.files("handlers").joinpath("data")
    for name in ("nip_schedule_2021.yaml", "nip_schedule_2025.yaml"):
        raw = yaml.safe_load(folder.joinpath(name).read_text(encoding="utf-8"))
        assert all(row.get("source") for row in raw["doses"]), name


def test_programmes_file_names_sources_and_known_results() -> None:
    programmes = load_programmes()
    assert set(programmes.programmes) == {
        "hypertension",
        "diabetes_t2",
        "severe_mental",
        "elderly_65",
        "pregnancy",
    }
    known = {code for _, code in programmes.results}
    for p in programmes.programmes.values():
        assert p.source and set(p.source) <= ANCHORS
        assert set(p.next_days) <= known
    htn = programmes.get("hypertension")
    assert htn.next_due(date(2026, 1, 10), "uncontrolled", 90, None) == date(2026, 1, 24)
    assert htn.next_due(date(2026, 1, 10), "controlled", 90, None) == date(2026, 4, 10)
    assert programmes.result("控制不满意") == "uncontrolled" and programmes.result("控制满意") == "controlled"
    assert programmes.result("不稳定") == "unstable" and programmes.result("基本稳定") == "basically_stable"


def test_the_version_in_force_follows_the_dtap_switch_date() -> None:
    assert schedule_for(date(2024, 12, 31)).id == "cn-nip-2021"
    assert schedule_for(date(2025, 1, 1)).id == "cn-nip-2025"
    assert schedule_for(date(2030, 1, 1), "cn-nip-2021").id == "cn-nip-2021"


def test_dtap_2025_change_two_four_six_eighteen_months_and_six_years() -> None:
    birth = date(2025, 3, 1)
    new = dues(plan_child(schedule_for(date(2025, 3, 1)), birth, [], birth))
    old = dues(plan_child(schedule_for(birth, "cn-nip-2021"), birth, [], birth))
    assert [new[("DTaP", n)] for n in range(1, 6)] == [
        date(2025, 5, 1),
        date(2025, 7, 1),
        date(2025, 9, 1),
        date(2026, 9, 1),
        date(2031, 3, 1),
    ]
    assert ("DT", 1) not in new
    assert [old[("DTaP", n)] for n in range(1, 5)] == [
        date(2025, 6, 1),
        date(2025, 7, 1),
        date(2025, 8, 1),
        date(2026, 9, 1),
    ]
    assert old[("DT", 1)] == date(2031, 3, 1) and ("DTaP", 5) not in old


# -- a child's first six years -----------------------------------------------------------------------


def test_calendar_months_clamp_to_the_end_of_a_shorter_month() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 8, 31), 6) == date(2025, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)


def test_schedule_over_the_first_six_years_when_every_dose_is_given_on_time() -> None:
    birth = date(2025, 1, 31)
    schedule = schedule_for(birth)
    expected = {
        ("HepB", 1): date(2025, 1, 31),
        ("BCG", 1): date(2025, 1, 31),
        ("HepB", 2): date(2025, 2, 28),  # 1 month after the 31st: the last day of February
        ("IPV", 1): date(2025, 3, 31),
        ("DTaP", 1): date(2025, 3, 31),
        ("IPV", 2): date(2025, 4, 30),
        ("bOPV", 1): date(2025, 5, 31),
        ("DTaP", 2): date(2025, 5, 31),
        ("HepB", 3): date(2025, 7, 31),
        ("DTaP", 3): date(2025, 7, 31),
        ("MPSV-A", 1): date(2025, 7, 31),
        ("MMR", 1): date(2025, 9, 30),
        ("JE-L", 1): date(2025, 9, 30),
        ("MPSV-A", 2): date(2025, 10, 31),
        ("DTaP", 4): date(2026, 7, 31),
        ("MMR", 2): date(2026, 7, 31),
        ("HepA-L", 1): date(2026, 7, 31),
        ("JE-L", 2): date(2027, 1, 31),
        ("MPSV-AC", 1): date(2028, 1, 31),
        ("bOPV", 2): date(2029, 1, 31),
        ("DTaP", 5): date(2031, 1, 31),
        ("MPSV-AC", 2): date(2031, 1, 31),
    }
    given: list[Given] = []
    # walk the six years: on each due date the doses due are given together (live ones the same day)
    for day in sorted(set(expected.values())):
        plan = by_key(plan_child(schedule, birth, given, day))
        for key in [k for k, due in expected.items() if due == day]:
            assert plan[key].due == day, key
            assert plan[key].status == Status.DUE, key
            given.append(Given(key[0], key[1], day))
    final = plan_child(schedule, birth, given, date(2031, 2, 1))
    assert dues(final) == expected
    assert all(d.status == Status.DONE for d in final)
    assert {d.code for d in final} == {c for c, _ in expected}  # defaults: live JE and live HepA


def test_statuses_upcoming_due_overdue_done_and_expired() -> None:
    birth = date(2026, 1, 15)
    schedule = schedule_for(birth)

    def status(as_of: date, given: list[Given] | None = None) -> dict[tuple[str, int], Status]:
        return {k: d.status for k, d in by_key(plan_child(schedule, birth, given or [], as_of)).items()}

    assert status(birth)[("HepB", 1)] == Status.DUE
    assert status(birth + timedelta(days=1))[("HepB", 1)] == Status.OVERDUE  # within 24 h of birth
    assert status(birth)[("HepB", 2)] == Status.UPCOMING
    assert status(date(2026, 2, 15))[("HepB", 2)] == Status.DUE
    assert status(date(2026, 3, 14))[("HepB", 2)] == Status.DUE
    assert status(date(2026, 3, 15))[("HepB", 2)] == Status.OVERDUE  # a month after it fell due
    assert status(date(2026, 3, 15), [Given("HepB", 2, date(2026, 2, 20))])[("HepB", 2)] == Status.DONE
    assert status(date(2029, 12, 1))[("BCG", 1)] == Status.OVERDUE  # 3 years: PPD test, then catch-up
    assert status(date(2030, 1, 15))[("BCG", 1)] == Status.EXPIRED  # 4 years: no BCG catch-up
    assert status(date(2044, 1, 15))[("HepB", 3)] == Status.EXPIRED  # 18: out of the programme


def test_catch_up_after_a_gap_gives_only_the_missing_doses_at_minimum_intervals() -> None:
    birth = date(2024, 1, 10)
    schedule = schedule_for(date(2025, 1, 10))
    given = [Given("HepB", 1, birth), Given("BCG", 1, birth), Given("HepB", 2, date(2024, 2, 10))]
    today = date(2025, 1, 10)  # a year old, nothing since one month
    plan = by_key(plan_child(schedule, birth, given, today))
    assert [k for k, d in plan.items() if d.done] == [("HepB", 1), ("BCG", 1), ("HepB", 2)]  # not repeated
    assert plan[("IPV", 1)].status == Status.OVERDUE and plan[("IPV", 1)].catch_up
    # the catch-up plan: the first missing dose of each series today, the next ones at minimum intervals
    assert plan[("IPV", 1)].earliest == today
    assert plan[("IPV", 2)].earliest == today + timedelta(days=28)
    assert plan[("bOPV", 1)].earliest == today + timedelta(days=56)
    assert plan[("DTaP", 1)].earliest == today
    assert plan[("DTaP", 2)].earliest == today + timedelta(days=28)
    assert plan[("DTaP", 3)].earliest == today + timedelta(days=56)
    assert plan[("HepB", 3)].earliest == today  # 60 days after HepB 2 passed long ago
    assert plan[("MPSV-A", 2)].earliest == today + timedelta(days=90)
    assert plan[("DTaP", 4)].status == Status.UPCOMING
    # the child is caught up late; the doses that follow move with the real dates
    given += [
        Given("DTaP", 1, date(2025, 1, 10)),
        Given("DTaP", 2, date(2025, 2, 7)),
        Given("DTaP", 3, date(2025, 3, 7)),
        Given("MPSV-A", 1, date(2025, 1, 10)),
    ]
    later = by_key(plan_child(schedule, birth, given, date(2025, 3, 8)))
    assert later[("DTaP", 4)].due == date(2025, 9, 6)  # >= 183 days after dose 3, not at 18 months
    assert later[("MPSV-A", 2)].due == date(2025, 4, 10)  # >= 90 days after dose 1
    assert later[("DTaP", 1)].done and later[("DTaP", 5)].due == date(2030, 1, 10)


def test_two_live_injectables_not_given_the_same_day_are_28_days_apart() -> None:
    birth = date(2026, 11, 16)
    schedule = schedule_for(birth)
    mmr1 = Given("MMR", 1, date(2027, 7, 16))
    plan = by_key(plan_child(schedule, birth, [mmr1], date(2027, 7, 16)))
    assert plan[("JE-L", 1)].due == date(2027, 8, 13)  # not given with MMR: 28 days after it
    together = by_key(
        plan_child(schedule, birth, [mmr1, Given("JE-L", 1, date(2027, 7, 16))], date(2027, 7, 17))
    )
    assert together[("JE-L", 1)].done and together[("JE-L", 2)].due == date(2028, 11, 16)
    # 18 months: MMR 2 given ten days early by catch-up rules elsewhere → HepA-L waits 28 days after it
    mmr2 = Given("MMR", 2, date(2028, 5, 20))
    later = by_key(
        plan_child(schedule, birth, [mmr1, Given("JE-L", 1, date(2027, 7, 16)), mmr2], date(2028, 5, 20))
    )
    assert later[("HepA-L", 1)].due == date(2028, 6, 17)
    assert later[("DTaP", 4)].due == date(2028, 5, 16)  # inactivated vaccines are not held back


def test_option_groups_follow_the_product_recorded() -> None:
    birth = date(2026, 1, 1)
    schedule = schedule_for(birth)
    default = by_key(plan_child(schedule, birth, [], birth))
    assert ("JE-L", 1) in default and ("JE-I", 1) not in default
    assert ("HepA-L", 1) in default and ("HepA-I", 2) not in default
    inactivated = by_key(plan_child(schedule, birth, [Given("JE-I", 1, date(2026, 9, 1))], date(2026, 9, 1)))
    assert ("JE-L", 1) not in inactivated
    assert inactivated[("JE-I", 2)].due == date(2026, 9, 8)  # 7 days after dose 1
    assert [k for k in inactivated if k[0] == "JE-I"] == [("JE-I", 1), ("JE-I", 2), ("JE-I", 3), ("JE-I", 4)]


def test_meningococcal_a_ages_out_at_two_and_ac_does_not_wait_for_it() -> None:
    birth = date(2023, 1, 1)
    plan = by_key(plan_child(schedule_for(birth), birth, [], date(2026, 1, 10)))
    assert plan[("MPSV-A", 1)].status == Status.EXPIRED and plan[("MPSV-A", 2)].status == Status.EXPIRED
    assert plan[("MPSV-AC", 1)].due == date(2026, 1, 1) and plan[("MPSV-AC", 1)].status == Status.DUE


# -- reading what residents write --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", date(2024, 5, 1)),
        ("2024年5月1日", date(2024, 5, 1)),
        ("20240501", date(2024, 5, 1)),
        ("2024/5/1", date(2024, 5, 1)),
        ("2024.05.01", date(2024, 5, 1)),
        ("5月1日", date(2024, 5, 1)),
        ("12月1号", date(2023, 12, 1)),  # not yet this year: last year
        ("昨天", date(2024, 7, 19)),
        ("2024-02-30", None),
        ("没有日期", None),
    ],
)
def test_dates_in_the_forms_residents_write(text: str, expected: date | None) -> None:
    assert parse_date(text, date(2024, 7, 20)) == expected


def test_vaccine_names_doses_and_dates_in_one_reply() -> None:
    today = date(2024, 7, 20)
    found = find_mentions("乙肝第二针 2024年7月1日，卡介苗 20240501 脊灰3 昨天 百白破 第 3 剂 7月2日", today)
    assert [(m.kind, m.target, m.number, m.on) for m in found] == [
        (MentionKind.CODE, "HepB", 2, date(2024, 7, 1)),
        (MentionKind.CODE, "BCG", None, date(2024, 5, 1)),
        (MentionKind.SERIES, "polio", 3, date(2024, 7, 19)),
        (MentionKind.CODE, "DTaP", 3, date(2024, 7, 2)),
    ]
    both = find_mentions("麻腮风1 乙脑1 2027-07-16", today)
    assert [(m.target, m.number, m.on) for m in both] == [
        ("MMR", 1, date(2027, 7, 16)),
        ("JE", 1, date(2027, 7, 16)),
    ]
    schedule = schedule_for(today)
    plan = plan_child(schedule, date(2024, 1, 1), [Given("HepB", 1, date(2024, 1, 1))], today)
    assert resolve(found[2], plan, schedule).key == ("bOPV", 1)  # the 3rd polio dose is the first bOPV
    assert resolve(both[1], plan, schedule).key == ("JE-L", 1)  # 乙脑: the product the child is on
    assert resolve(find_mentions("乙肝", today)[0], plan, schedule).key == ("HepB", 2)  # next not recorded
    assert find_mentions("垃圾太多了没人管", today) == []


# -- the command line --------------------------------------------------------------------------------


def test_vaccines_command_prints_each_dose_with_due_date_and_status() -> None:
    result = run(
        [
            "vaccines",
            "--birth",
            "2024-03-01",
            "--as-of",
            "2025-01-10",
            "--given",
            "HepB:1:2024-03-01",
            "BCG:1:2024-03-01",
            "--given",
            "HepB:2:2024-04-01",
        ]
    )
    rows = lines(result)
    assert {"vaccine", "dose", "due", "status"} <= set(rows[0])
    got = {(r["vaccine"], r["dose"]): (r["due"], r["status"]) for r in rows}
    assert got[("HepB", 2)] == ("2024-04-01", "done")
    assert got[("DTaP", 1)] == ("2024-05-01", "overdue")  # the 2025 schedule: 2 months
    assert got[("MMR", 2)] == ("2025-09-01", "upcoming")
    assert all(r["schedule"] == "cn-nip-2025" for r in rows)
    assert {r["status"] for r in rows} <= {"done", "overdue", "due", "upcoming"}  # the CLI contract
    old = lines(run(["vaccines", "--birth", "2012-01-01", "--as-of", "2026-01-01"]))
    expired = [r for r in old if r["expired"]]
    assert expired and all(r["status"] == "overdue" for r in expired)  # past catch-up age: still "overdue"
    assert {r["status"] for r in old} <= {"done", "overdue", "due", "upcoming"}
    table = run(["vaccines", "--birth", "2024-03-01", "--as-of", "2025-05-05", "--format", "table"])
    assert table.returncode == 0
    text = table.stdout.decode("utf-8")
    assert re.search(r"DTaP 百白破疫苗\s+1\s+2024-05-01\s+逾期 2025-05-05", text)
    assert re.search(r"HepA-L 甲肝减毒活疫苗\s+1\s+2025-09-01\s+未到", text)
    bad = run(["vaccines", "--birth", "2024-03-01", "--given", "HepB:9:2024-03-01"])
    assert bad.returncode == 2 and "HepB" in bad.stderr.decode("utf-8")


def test_every_message_key_the_reminders_code_uses_exists() -> None:
    root = Path(__file__).resolve().parents[2] / "handlers" / "reminders"
    source = "\n".join(p.read_text(encoding="utf-8") for p in root.glob("*.py"))
    used = set(re.findall(r'render\(\s*"([a-z_.]+)"', source))
    used |= {f"rem.weekday.{n}" for n in range(7)}
    used |= {f"rem.status.{s.value}" for s in Status}
    programmes = load_programmes()
    used |= {f"rem.method.{m}" for m in programmes.methods.values()}
    used |= {f"rem.result.{code}" for _, code in programmes.results}
    used |= {f"rem.enrolment.{s}" for s in ("awaiting_consent", "active", "ended")}
    missing = sorted(k for k in used if k not in catalog())
    assert not missing, missing
    assert "role.health" in catalog()
    # reminders to residents: a neutral first line, the footer, and no disease in follow-up texts
    assert "提醒" in catalog()["rem.msg.head"] and "{station}" in catalog()["rem.msg.head"]
    for key in [
        k for k in catalog() if k.startswith(("rem.msg.followup", "rem.consent.followup", "rem.fu."))
    ]:
        assert not any(w in catalog()[key] for w in ("高血压", "糖尿病", "精神", "孕", "结核", "体检")), key

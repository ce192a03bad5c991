"""The district of bench/district_scale.py: its 街道 file (N communities, each in a file of its own, 10
grids of 3 buildings and a place each, a leader and two workers per grid, an admin) and its history in
PostgreSQL, generated inside the server with ``INSERT … SELECT generate_series`` (no row crosses the
wire): residents and their chat accounts, cases over three years with their closing and rating events,
children
and follow-up patients with their reminders.

Per community (scale 1): 10,000 residents, 33,333 cases of which 667 open, 1,000 children (two
reminders each: one pending in the coming year, one sent) and 700 follow-up patients (one pending
reminder in the coming 90 days). 300 communities make the issue's district: 3 million residents, 10
million cases, 200,000 open.

Distributions: categories garbage 35 %, poster 20 %, mosquito, pests, sewage 10 % each, other 15 %;
finished cases spread evenly over the three years before the stage's ``now`` (numbers rise with time),
10 % closed without a fix (not ours 1/2, duplicate 1/4, invalid 1/4), the rest confirmed, resolved
after an exponential time of mean 1.3 × the limit (about 85 % on time: due = 2.5 × the limit in wall
hours), 30 % rated 满意 and 4 % 不满意 (reopened once); open cases mostly from the last days (new 5 %,
assigned 45 %, accepted 30 %, in progress 20 %), their next alarm within three weeks, one in a
thousand due now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

GRIDS = 10
BUILDINGS_PER_GRID = 3
PLACES = ("东门", "南门", "西门", "北门", "幼儿园", "菜场", "健身广场", "垃圾站", "停车场", "卫生服务站")
_FIRST_WORDS = (
    "和平 幸福 光明 锦绣 金桥 银杏 翠湖 紫荆 丹桂 青松 长青 松鹤 梅园 兰亭 竹溪 荷塘 桃源 杏林 柳岸 枫林 "
    "清河 白云 碧水 星河 朝阳 晨曦 东风 新华 建设 胜利 团结 友谊 振兴 华苑 康乐 福寿 安居 嘉禾 瑞祥 "
    "景泰 永安 泰和 鸿福 仁和 春晖 秋实 明珠 望江 临湖 滨江 天一 双桥 三元 五福 七星 九龙 百合 千禧 万象"
)
_FIRST = _FIRST_WORDS.split()
_TAIL = ("里", "苑", "园", "新村", "花园", "家园")
_SURNAMES = (
    "王李张刘陈杨黄赵周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红"
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
# (category, cumulative share): the mix of reports
CATEGORY_MIX = (("poster", 0.20), ("garbage", 0.55), ("mosquito", 0.65), ("pests", 0.75), ("sewage", 0.85))
OTHER = "other"
WORKER_A = ("poster", "garbage")
WORKER_B = ("mosquito", "pests", "sewage", OTHER)


@dataclass(frozen=True)
class Sizes:
    """Per community, at the given scale."""

    residents: int
    cases: int
    open: int
    children: int
    followups: int

    @classmethod
    def at(cls, scale: float) -> Sizes:
        def n(full: int) -> int:
            return max(1, round(full * scale))

        return cls(n(10_000), n(33_333), n(667), n(1_000), n(700))


# -- the 街道 file ----------------------------------------------------------------------------------------


def code(i: int) -> str:
    """The i-th community's code: three letters (AAB, AAC …), never a letter-digit mix."""
    n = i + 1
    return "".join(_LETTERS[(n // len(_LETTERS) ** k) % len(_LETTERS)] for k in (2, 1, 0))


def community_name(i: int) -> tuple[str, str]:
    """The i-th community's name and everyday alias (锦绣园社区, 锦绣园): 360 distinct ones."""
    core = _FIRST[i % len(_FIRST)] + _TAIL[(i // len(_FIRST)) % len(_TAIL)]
    return core + "社区", core


def person(k: int) -> str:
    return (
        _SURNAMES[k % len(_SURNAMES)] + _GIVEN[(k // len(_SURNAMES)) % len(_GIVEN)] + _GIVEN[k % len(_GIVEN)]
    )


def staff_ids(i: int, grid: int) -> tuple[str, str, str]:
    """(leader, worker for posters and garbage, worker for the rest) of grid ``grid`` (1-based)."""
    c = code(i).lower()
    return f"{c}l{grid}", f"{c}w{grid}a", f"{c}w{grid}b"


def admin_id(i: int) -> str:
    return f"{code(i).lower()}adm"


def community_document(i: int) -> dict[str, Any]:
    name, alias = community_name(i)
    grids, staff = [], []
    for g in range(1, GRIDS + 1):
        leader, a, b = staff_ids(i, g)
        first = (g - 1) * BUILDINGS_PER_GRID + 1
        grids.append(
            {
                "code": f"G{g}",
                "name": f"第{g}网格",
                "buildings": [f"{first}-{first + BUILDINGS_PER_GRID - 1}"],
                "places": [PLACES[g - 1]],
                "leader": leader,
                "workers": [
                    {"staff": a, "categories": list(WORKER_A)},
                    {"staff": b, "categories": list(WORKER_B)},
                ],
            }
        )
        for k, (sid, role) in enumerate(((leader, "leader"), (a, "worker"), (b, "worker"))):
            staff.append(
                {
                    "id": sid,
                    "name": person(i * 40 + g * 3 + k),
                    "role": role,
                    "telegram": telegram(i, g * 3 + k),
                }
            )
    staff.append(
        {"id": admin_id(i), "name": person(i * 40 + 39), "role": "admin", "telegram": telegram(i, 0)}
    )
    return {"community": {"name": name, "aliases": [alias]}, "grids": grids, "staff": staff, "categories": []}


def telegram(i: int, k: int) -> int:
    return 700_000_000 + i * 100 + k


def write_district(folder: Path, n: int) -> Path:
    """The 街道 file of ``n`` communities (each in ``communities/<code>.yaml``); returns its path."""
    (folder / "communities").mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(n):
        path = folder / "communities" / f"{code(i)}.yaml"
        if not path.exists():
            path.write_text(
                yaml.safe_dump(community_document(i), allow_unicode=True, sort_keys=False), "utf-8"
            )
        entries.append({"code": code(i), "file": f"communities/{code(i)}.yaml"})
    street = {
        "street": {"name": "和平区", "timezone": "Asia/Shanghai"},
        "admins": [{"id": "qu", "name": "区管理员", "role": "admin", "telegram": 699_999_999}],
        "communities": entries,
    }
    path = folder / f"district_{n}.yaml"
    path.write_text(yaml.safe_dump(street, allow_unicode=True, sort_keys=False), "utf-8")
    return path


# -- the history, in SQL ------------------------------------------------------------------------------------

# Every statement takes the stage's communities as {ids} (row ids) and {ranks} (their rank in the district:
# residents, children and patients get ids rank * size + k, so stages never collide), {now} the stage's
# now and {day} its first day of reminders. ``r`` columns are uniform randoms drawn once per row.

RESIDENTS = """
INSERT INTO residents (id, display_name, created_at, blocked, community_id)
SELECT s.rank * {residents} + k, '居民' || (s.rank * {residents} + k),
       {now} - (k % 1000) * interval '1 day', false, s.cid
FROM unnest({ids}, {ranks}) AS s(cid, rank), generate_series(1, {residents}) AS k
"""

IDENTITIES = """
INSERT INTO resident_identities (channel, external_id, resident_id, created_at)
SELECT 'console', 'u' || r.id, r.id, r.created_at FROM residents r WHERE r.community_id = ANY({ids})
"""

_CATEGORY = (
    "CASE " + " ".join(f"WHEN r2 < {share} THEN '{c}'" for c, share in CATEGORY_MIX) + f" ELSE '{OTHER}' END"
)

# One row per case with its randoms; the outer query shapes it.
_DRAWS = """
SELECT s.cid, s.rank, s.ccode, k AS number, k > {finished} AS is_open,
       1 + floor(random() * {grids})::int AS grid, random() AS r2, random() AS r3, random() AS r4,
       random() AS r5, random() AS r6, random() AS r7, random() AS r8, random() AS r9, random() AS r10
FROM generate_series(1, {cases}) AS k,
    LATERAL (SELECT u.* FROM unnest({ids}, {ranks}, {codes}) AS u(cid, rank, ccode) WHERE k > 0) AS s
"""
# k outside, the communities inside (the LATERAL keeps that order): ids rise with time across the whole
# district, as they do in a running deployment, so a period's cases lie together on disk.

CASES = """
INSERT INTO cases (community_id, number, status, category_code, categories, confidence, text, location_text,
    building, grid_code, assignee_id, in_triage, urgent, time_limit_hours, clock_started_at, due_at,
    alarm_stage, next_alarm_at, close_reason, referral, rating, reopen_count, reporter_id, channel,
    reporter_external, resolution_note, created_at, updated_at, assigned_at, accepted_at, resolved_at,
    closed_at)
SELECT cid, number, status, category, json_build_array(category), 0.8, building || '号楼 ' || category,
    building || '号楼', building, 'G' || grid, CASE WHEN status = 'new' THEN NULL ELSE assignee END,
    status = 'new', r8 < 0.03, lim, created + interval '2 minutes', created + lim * interval '150 minutes',
    CASE WHEN is_open THEN (r10 * 1000)::int % 3 ELSE 0 END,
    CASE WHEN NOT is_open THEN NULL
         WHEN r10 < 0.001 THEN {now} - r9 * interval '50 minutes'
         ELSE {now} + interval '1 hour' + r9 * interval '503 hours' END,
    reason, CASE WHEN reason = 'not_ours' THEN '城管执法队' END,
    CASE WHEN status = 'confirmed' AND r7 < 0.30 THEN 'good' WHEN status = 'confirmed' AND r7 < 0.34
         THEN 'bad' END,
    CASE WHEN status = 'confirmed' AND r7 >= 0.30 AND r7 < 0.34 THEN 1 ELSE 0 END,
    rank * {residents} + 1 + floor(r9 * {residents})::int, 'console',
    'u' || (rank * {residents} + 1 + floor(r9 * {residents})::int),
    CASE WHEN status = 'confirmed' THEN '已处理' END,
    created, coalesce(closed, created), CASE WHEN status <> 'new' THEN created + interval '2 minutes' END,
    CASE WHEN status IN ('accepted', 'in_progress', 'confirmed') THEN created + interval '20 minutes' END,
    resolved, closed
FROM (
    SELECT d.*, created, status, category, lim, building, assignee, reason,
        CASE WHEN status = 'confirmed'
             THEN created - ln(1 - r5) * lim * interval '78 minutes' END AS resolved,
        CASE WHEN status = 'confirmed'
             THEN created - ln(1 - r5) * lim * interval '78 minutes' + r6 * interval '3 days'
             WHEN status = 'closed' THEN created + r6 * interval '2 days' END AS closed
    FROM ({draws}) AS d,
    LATERAL (SELECT {category} AS category) AS c,
    LATERAL (SELECT CASE WHEN d.is_open
        THEN {now} - least(1 - ln(1 - d.r3) * 30, 504) * interval '1 hour'
        ELSE {now} - interval '21 days'
             - (1 - d.number::float / {finished}) * interval '1074 days' - d.r3 * interval '12 hours'
        END AS created) AS t,
    LATERAL (SELECT CASE
        WHEN d.is_open AND d.r4 < 0.05 THEN 'new' WHEN d.is_open AND d.r4 < 0.50 THEN 'assigned'
        WHEN d.is_open AND d.r4 < 0.80 THEN 'accepted' WHEN d.is_open THEN 'in_progress'
        WHEN d.r4 < 0.10 THEN 'closed' ELSE 'confirmed' END AS status) AS st,
    LATERAL (SELECT CASE WHEN st.status = 'closed' THEN CASE WHEN d.r6 < 0.5 THEN 'not_ours'
        WHEN d.r6 < 0.75 THEN 'duplicate' ELSE 'invalid' END END AS reason) AS cr,
    LATERAL (SELECT ({limits})[array_position({category_codes}, c.category)] AS lim,
        ((d.grid - 1) * {per_grid} + 1 + floor(d.r8 * {per_grid})::int)::text AS building,
        lower(d.ccode) || CASE WHEN c.category IN ('poster', 'garbage') THEN 'w' || d.grid || 'a'
            ELSE 'w' || d.grid || 'b' END AS assignee) AS x
) AS q
"""

# The reporters' ratings (满意 confirms, 不满意 reopens), the only events stats read.
RATING_EVENTS = """
INSERT INTO case_events (case_id, at, actor_type, actor_id, action, from_status, to_status, data)
SELECT id, CASE WHEN rating = 'good' THEN closed_at ELSE resolved_at + interval '1 day' END, 'resident',
    reporter_id::text, CASE WHEN rating = 'good' THEN 'confirmed' ELSE 'reopened' END, 'resolved',
    CASE WHEN rating = 'good' THEN 'confirmed' ELSE 'assigned' END, '{{}}'
FROM cases WHERE rating IS NOT NULL AND community_id = ANY({ids}) ORDER BY id
"""

# Each finished case's last step by staff (resolved, or closed as not ours / duplicate / invalid): the
# event log is then as long as a real one's in the rows statistics must skip.
CLOSING_EVENTS = """
INSERT INTO case_events (case_id, at, actor_type, actor_id, action, from_status, to_status, data)
SELECT id, coalesce(resolved_at, closed_at), 'staff', assignee_id,
    CASE WHEN status = 'closed' THEN 'closed_' || close_reason ELSE 'resolved' END, 'accepted',
    CASE WHEN status = 'closed' THEN 'closed' ELSE 'resolved' END, '{{}}'
FROM cases WHERE status IN ('closed', 'confirmed') AND community_id = ANY({ids}) ORDER BY id
"""

CHILDREN = """
INSERT INTO rem_children (id, nickname, birth_date, created_at)
SELECT s.rank * {children} + k, '娃' || k, {day} - ((s.rank * {children} + k) % 2000), {now}
FROM unnest({ids}, {ranks}) AS s(cid, rank), generate_series(1, {children}) AS k
"""

CONSENTS = """
INSERT INTO rem_consents (id, resident_id, programme, text_version, channel, given_at)
SELECT s.rank * {children} + k, s.rank * {residents} + 1 + (k * 7) % {residents}, 'child_vaccination', 'v1',
    'console', {now}
FROM unnest({ids}, {ranks}) AS s(cid, rank), generate_series(1, {children}) AS k
"""

GUARDIANS = """
INSERT INTO rem_guardians (child_id, resident_id, consent_id, created_at)
SELECT id, resident_id, id, given_at FROM rem_consents
WHERE id > {first_rank} * {children} AND id <= ({last_rank} + 1) * {children}
"""

# Children: one reminder pending on a day of the coming year (from the stage's day {day}, 09:00 local),
# one sent the year before. Follow-ups: one pending within 90 days.
CHILD_REMINDERS = """
INSERT INTO rem_reminders (id, kind, child_id, followup_id, for_date, offset_days, postponed, doses, due_at,
    expires_at, status, key, attempts, sent_at, created_at)
SELECT 2 * c + p, 'vaccine', c, NULL, day, 0, false, '[["DTaP", 2]]', at9, at9 + interval '3 days',
    CASE WHEN p = 0 THEN 'pending' ELSE 'sent' END, 'c' || c || ':' || day || ':0', p,
    CASE WHEN p = 1 THEN at9 END, {now}
FROM unnest({ids}, {ranks}) AS s(cid, rank), generate_series(1, {children}) AS k,
    LATERAL (SELECT s.rank * {children} + k AS c) AS ch, generate_series(0, 1) AS p,
    LATERAL (SELECT CASE WHEN p = 0 THEN {day} + (c % 365) ELSE {day} - 1 - (c % 365) END AS day) AS d,
    LATERAL (SELECT (day + time '09:00') AT TIME ZONE 'Asia/Shanghai' AS at9) AS t
"""

FOLLOWUPS = """
INSERT INTO rem_followups (id, resident_id, recipient_id, programme, interval_days, next_due, status,
    enrolled_by, created_at)
SELECT f, r, r, (ARRAY['hypertension', 'diabetes_t2', 'elderly_65', 'hypertension'])[1 + f % 4], 90,
    {day} + (f % 90), 'active', 'doc', {now}
FROM unnest({ids}, {ranks}) AS s(cid, rank), generate_series(1, {followups}) AS k,
    LATERAL (SELECT s.rank * {followups} + k AS f, (s.rank + 1) * {residents} - k AS r) AS x
"""

FOLLOWUP_REMINDERS = """
INSERT INTO rem_reminders (id, kind, child_id, followup_id, for_date, offset_days, postponed, doses, due_at,
    expires_at, status, key, attempts, sent_at, created_at)
SELECT 1000000000 + f.id, 'followup', NULL, f.id, f.next_due, 0, false, '[]', at9, at9 + interval '3 days',
    'pending', 'f' || f.id || ':' || f.next_due || ':0', 0, NULL, {now}
FROM rem_followups f, LATERAL (SELECT (f.next_due + time '09:00') AT TIME ZONE 'Asia/Shanghai' AS at9) AS t
WHERE f.id > {first_rank} * {followups} AND f.id <= ({last_rank} + 1) * {followups}
"""

# The tables the load fills: their secondary indexes are dropped before and built after (faster than
# keeping them up to date row by row); the same definitions come back.
LOADED_TABLES = (
    "residents",
    "resident_identities",
    "cases",
    "case_events",
    "rem_children",
    "rem_consents",
    "rem_guardians",
    "rem_reminders",
    "rem_followups",
)


@dataclass(frozen=True)
class Stage:
    """The communities a stage adds: their row ids, district ranks and codes, and the stage's clock."""

    ids: list[int]
    ranks: list[int]
    codes: list[str]
    now: datetime
    day: date


def _array(values: list[Any], kind: str) -> str:
    return "ARRAY[" + ", ".join(repr(v) if kind == "text" else str(int(v)) for v in values) + f"]::{kind}[]"


SERIAL_TABLES = (
    "residents",
    "cases",
    "case_events",
    "rem_children",
    "rem_consents",
    "rem_reminders",
    "rem_followups",
)


def statements(stage: Stage, sizes: Sizes, limits: dict[str, float]) -> list[tuple[str, str]]:
    """(what, SQL) in the order they run: literals only (values this script made, no parameters)."""
    codes = sorted(limits)
    fmt = {
        "ids": _array(stage.ids, "int"),
        "ranks": _array(stage.ranks, "int"),
        "codes": _array(stage.codes, "text"),
        "first_rank": min(stage.ranks),
        "last_rank": max(stage.ranks),
        "now": f"'{stage.now.isoformat()}'::timestamptz",
        "day": f"'{stage.day.isoformat()}'::date",
        "residents": sizes.residents,
        "cases": sizes.cases,
        "finished": sizes.cases - sizes.open,
        "children": sizes.children,
        "followups": sizes.followups,
        "grids": GRIDS,
        "per_grid": BUILDINGS_PER_GRID,
        "category": _CATEGORY.replace("r2", "d.r2"),
        "category_codes": "ARRAY[" + ", ".join(f"'{c}'" for c in codes) + "]",
        "limits": "ARRAY[" + ", ".join(f"{float(limits[c])}::float" for c in codes) + "]",
    }
    fmt["draws"] = _DRAWS.format(**fmt)
    return [
        ("residents", RESIDENTS.format(**fmt)),
        ("resident accounts", IDENTITIES.format(**fmt)),
        ("cases", CASES.format(**fmt)),
        ("closing events", CLOSING_EVENTS.format(**fmt)),
        ("rating events", RATING_EVENTS.format(**fmt)),
        ("children", CHILDREN.format(**fmt)),
        ("consents", CONSENTS.format(**fmt)),
        ("guardians", GUARDIANS.format(**fmt)),
        ("child reminders", CHILD_REMINDERS.format(**fmt)),
        ("follow-ups", FOLLOWUPS.format(**fmt)),
        ("follow-up reminders", FOLLOWUP_REMINDERS.format(**fmt)),
    ]


async def secondary_indexes(conn: Any) -> list[tuple[str, str]]:
    """(name, definition) of the loaded tables' indexes other than those of constraints."""
    rows = await conn.fetch(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "JOIN pg_class c ON c.relname = i.indexname JOIN pg_index x ON x.indexrelid = c.oid "
        "WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[]) AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)",
        list(LOADED_TABLES),
    )
    return [(r["indexname"], r["indexdef"]) for r in rows]


async def generate(conn: Any, stage: Stage, sizes: Sizes, limits: dict[str, float], say: Any) -> None:
    """Fill the stage's communities on an asyncpg connection (one transaction, then VACUUM ANALYZE)."""
    import time

    indexes = await secondary_indexes(conn)
    async with conn.transaction():
        # No foreign-key triggers row by row: the rows are consistent by construction.
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("SET LOCAL maintenance_work_mem = '512MB'")  # the index builds sort in memory
        await conn.execute("SELECT setseed(0.15)")
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        for what, sql in statements(stage, sizes, limits):
            started = time.perf_counter()
            status = await conn.execute(sql)
            say(f"    {what:20s} {int(status.split()[-1]):>11,} rows  {time.perf_counter() - started:6.1f} s")
        started = time.perf_counter()
        for _, definition in indexes:
            await conn.execute(definition)
        say(f"    {len(indexes)} indexes rebuilt {'':13s}{time.perf_counter() - started:6.1f} s")
    for table in SERIAL_TABLES:
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
    started = time.perf_counter()
    for table in LOADED_TABLES:
        await conn.execute(f"VACUUM (ANALYZE) {table}")
    await conn.execute("ANALYZE")  # the tables the district file filled too (staff, their accounts …)
    say(f"    vacuum analyze {'':20s}{time.perf_counter() - started:6.1f} s")


def stage_day(day0: date, stage: int) -> date:
    return day0 + timedelta(days=stage)

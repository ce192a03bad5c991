"""The command-line contract, run as a user runs it: the installed ``outreach-bot`` in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from bench.support.live_server import free_port
from bench.support.waiting import wait_until
from tests.community.test_community import BASE
from tests.support.cli import EXE, lines, run


def db_path(env: dict[str, str]) -> Path:
    return Path(env["OUTREACH_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))


@pytest.fixture
def db_env(tmp_path: Path) -> dict[str, str]:
    return {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}


def test_help_lists_the_commands() -> None:
    result = run(["--help"])
    assert result.returncode == 0
    for command in ("demo", "classify", "route", "tickets", "config"):
        assert command in result.stdout.decode()


def test_classify_emits_one_json_object_per_line_with_real_chinese() -> None:
    messages = ["3号楼楼道里好多小广告", "你好", "8号楼路灯坏了", "下水道堵了还有老鼠", ""]
    result = run(["classify"], "\n".join(messages) + "\n")
    assert "小广告" in result.stdout.decode("utf-8")  # not \\u escapes
    out = lines(result)
    assert [o["text"] for o in out] == messages
    assert out[0]["category"] == "poster" and out[0]["categories"] == ["poster"]
    assert out[1]["category"] is None
    assert out[2]["category"] == "other"
    assert set(out[3]["categories"]) == {"sewage", "pests"}  # type: ignore[arg-type]
    assert out[4]["category"] is None
    for o in out:
        fields = {"text", "category", "categories", "confidence", "keywords", "urgent", "ask", "candidates"}
        assert set(o) == fields
        assert 0.0 <= float(o["confidence"]) <= 1.0  # type: ignore[arg-type]


def test_classify_survives_binary_garbage() -> None:
    result = run(["classify"], b"\xff\xfe\x00\x01garbage\n\xe5\x9e\x83\xe5\x9c\xbe\xe6\xbb\xa1\xe4\xba\x86\n")
    out = lines(result)
    assert len(out) == 2 and out[1]["category"] == "garbage"


def test_route_reads_the_config_not_the_database(write_yaml: Callable[[str], Path], tmp_path: Path) -> None:
    config = write_yaml(BASE)
    env = {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'never.db'}"}
    out = lines(
        run(["route", "--config", str(config)], "三号楼有小广告\n9号楼下水道堵了\n垃圾桶满了\n你好\n", env)
    )
    assert [(o["grid"], o["assignee"], o["location"]) for o in out] == [
        ("G1", "zhang", "三号楼"),
        ("G2", "li", "9号楼"),  # G2 has no sewage worker: its leader
        (None, None, None),
        (None, None, None),
    ]
    assert out[0]["category"] == "poster" and "keywords" in out[0]
    assert not (tmp_path / "never.db").exists()


def test_config_load_reports_problems_and_exits_nonzero(
    write_yaml: Callable[[str], Path], db_env: dict[str, str]
) -> None:
    bad = write_yaml(BASE.replace("{staff: wang,", "{staff: wong,"))
    result = run(["config", "load", str(bad)], env=db_env)
    assert result.returncode == 1
    assert "grids[0].workers[1].staff" in result.stderr.decode() and "wong" in result.stderr.decode()


def test_config_load_then_tickets_then_demo(
    write_yaml: Callable[[str], Path], db_env: dict[str, str]
) -> None:
    result = run(["config", "load", str(write_yaml(BASE))], env=db_env)
    assert result.returncode == 0, result.stderr.decode()
    assert "幸福社区" in result.stdout.decode()

    script = "3号楼楼道里贴满了小广告\n/as zhang\n接单 1\n完成 1 已清理干净\n/as 小王\n我的\n"
    demo = run(["demo"], script, env=db_env)
    assert demo.returncode == 0, demo.stderr.decode()
    shown = demo.stdout.decode("utf-8")
    assert "#1" in shown and "张伟" in shown and "已清理干净" in shown
    assert "Traceback" not in demo.stderr.decode()

    tickets = lines(run(["tickets"], env=db_env))
    assert len(tickets) == 1
    assert tickets[0]["status"] == "resolved" and tickets[0]["assignee"] == "zhang"
    assert tickets[0]["resolution_note"] == "已清理干净"
    assert lines(run(["tickets", "--status", "assigned"], env=db_env)) == []

    # JSON keeps its keys; times are ISO 8601 with the community's offset
    created = datetime.fromisoformat(str(tickets[0]["created_at"]))
    assert str(tickets[0]["created_at"]).endswith("+08:00")

    # CSV for Excel and WPS: a BOM, CRLF, Chinese headers, local time without an offset
    csv_out = run(["tickets", "--format", "csv"], env=db_env)
    assert csv_out.returncode == 0, csv_out.stderr.decode()
    assert csv_out.stdout.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(csv_out.stdout.decode("utf-8-sig"), newline="")))
    assert rows[0][:4] == ["案件编号", "状态", "类别", "全部类别"]
    one = dict(zip(rows[0], rows[1], strict=True))
    assert (one["案件编号"], one["状态"], one["类别"], one["处理说明"]) == (
        "1",
        "已处理",
        "poster",
        "已清理干净",
    )
    assert one["受理时间"] == created.strftime("%Y-%m-%d %H:%M:%S")

    xlsx = run(
        ["tickets", "--format", "xlsx", "--output", str(db_path(db_env).with_suffix(".xlsx"))], env=db_env
    )
    assert xlsx.returncode == 0, xlsx.stderr.decode()
    from openpyxl import load_workbook

    sheet = load_workbook(db_path(db_env).with_suffix(".xlsx")).active
    header, first = list(sheet.iter_rows(values_only=True))[:2]
    assert header[:2] == ("案件编号", "状态") and first[:2] == (1, "已处理")


def test_demo_on_a_fresh_database_uses_the_sample_and_exits_on_eof(db_env: dict[str, str]) -> None:
    demo = run(["demo"], "你好\n\n😀\n" + "垃圾" * 6000 + "\n", env=db_env)
    assert demo.returncode == 0, demo.stderr.decode()
    shown = demo.stdout.decode("utf-8")
    assert "幸福社区" in shown and "太长" in shown and "表情" in shown
    assert "Traceback" not in demo.stderr.decode()


def test_staff_invite_prints_a_code_that_binds_once(
    write_yaml: Callable[[str], Path], db_env: dict[str, str]
) -> None:
    assert run(["config", "load", str(write_yaml(BASE))], env=db_env).returncode == 0
    result = run(["staff", "invite", "zhang"], env=db_env)
    assert result.returncode == 0, result.stderr.decode()
    code = result.stdout.decode("utf-8").split("：")[1].split("（")[0]
    assert len(code) == 8
    assert run(["staff", "invite", "nobody"], env=db_env).returncode == 1
    demo = run(["demo"], f"/as 新手机\n绑定 {code}\n任务\n/as 另一台\n绑定 {code}\n", env=db_env)
    shown = demo.stdout.decode("utf-8")
    assert "绑定成功" in shown and "目前没有待办案件" in shown and "邀请码无效" in shown


async def test_serve_with_two_workers_answers_healthz(db_env: dict[str, str]) -> None:
    import httpx

    port = free_port()
    command = [EXE or sys.executable, "serve", "--port", str(port), "--workers", "2"]
    env = {**os.environ, "OUTREACH_LOG_LEVEL": "WARNING", **db_env}
    for key in [k for k in env if k.startswith(("OUTREACH_TELEGRAM", "OUTREACH_WECHAT"))]:
        del env[key]
    # Its log goes to a file: a pipe nobody reads would block the server once 64 KiB were written.
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            async with httpx.AsyncClient(timeout=2) as http:

                async def healthy() -> bool:
                    try:
                        return (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
                    except httpx.HTTPError:
                        return False

                await wait_until(healthy, "/healthz to answer 200", timeout=60, interval=0.3)
        finally:
            server.terminate()
            server.wait(timeout=30)
        log.seek(0)
        assert b"Traceback" not in log.read()


def test_workers_refuse_telegram_long_polling(db_env: dict[str, str]) -> None:
    result = run(["serve", "--workers", "2"], env={**db_env, "OUTREACH_TELEGRAM_TOKEN": "123:ABC"})
    assert result.returncode == 2 and "Webhook" in result.stderr.decode("utf-8")


# -- one-line errors (issue #12, point 13) ---------------------------------------------------------------


def one_line_error(result: subprocess.CompletedProcess[bytes], code: int = 1) -> str:
    err = result.stderr.decode("utf-8")
    assert result.returncode == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_unusable_config_files_are_one_clear_error(tmp_path: Path, db_env: dict[str, str]) -> None:
    binary = tmp_path / "photo.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    folder = tmp_path / "folder"
    folder.mkdir()
    for path, words in ((tmp_path / "missing.yaml", "无法读取"), (folder, "无法读取"), (binary, "UTF-8")):
        for args in (
            ["config", "check", str(path)],
            ["config", "load", str(path)],
            ["demo", "--config", str(path)],
        ):
            result = run(args, env=db_env)
            err = result.stderr.decode("utf-8")
            assert result.returncode == 1 and "Traceback" not in err, (args, err)
            assert words in err and str(path) in err, (args, err)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("foo://nowhere", "数据库地址无效"),
        ("postgresql+asyncpg://nobody:hunter2@127.0.0.1:{port}/x", "无法连接数据库"),
        ("sqlite+aiosqlite:///{tmp}/no/such/folder/x.db", "unable to open database file"),
    ],
)
def test_database_problems_are_one_line(url: str, words: str, tmp_path: Path) -> None:
    env = {"OUTREACH_DATABASE_URL": url.format(port=free_port(), tmp=tmp_path)}
    for args in (["tickets"], ["stats"], ["config", "load", "bot/data/sample_community.yaml"], ["serve"]):
        err = one_line_error(run(args, env=env))
        assert words in err and "hunter2" not in err, (args, err)


def test_a_missing_postgresql_database_is_named() -> None:
    import asyncio

    from sqlalchemy.engine import make_url

    from bench.support.scratch_db import PG_URL
    from tests.support.db import require_postgres

    asyncio.run(require_postgres())
    missing = make_url(PG_URL).set(database="outreach_no_such_db").render_as_string(hide_password=False)
    err = one_line_error(run(["tickets"], env={"OUTREACH_DATABASE_URL": missing}))
    assert "outreach_no_such_db" in err and "不存在" in err and "createdb" in err


def test_config_check_reports_every_problem_in_one_run(write_yaml: Callable[[str], Path]) -> None:
    text = (
        BASE.replace("timezone: Asia/Shanghai", "timezone: Mars/Olympus\n  colour: red")
        .replace("{staff: wang,", "{staff: wong,")
        .replace("role: admin}", "role: boss}")
    )
    result = run(["config", "check", str(write_yaml(text))])
    err = result.stderr.decode("utf-8")
    assert result.returncode == 1 and "Traceback" not in err
    for key in ("community.timezone", "community.colour", "grids[0].workers[1].staff", ".role"):
        assert key in err, (key, err)


def test_unknown_status_and_grid_are_errors_naming_the_valid_values(db_env: dict[str, str]) -> None:
    err = one_line_error(run(["tickets", "--status", "bogus"], env=db_env), code=2)
    assert "bogus" in err and "assigned" in err and "in_progress" in err
    err = one_line_error(run(["stats", "--grid", "G9"], env=db_env), code=2)
    assert "G9" in err and "G1" in err and "G4" in err


def test_piping_into_head_prints_no_broken_pipe_traceback(tmp_path: Path) -> None:
    # far more output than a pipe holds, so the writer meets the closed pipe
    source = tmp_path / "reports.txt"
    source.write_text("3号楼楼道里好多小广告\n" * 3000, encoding="utf-8")
    command = [EXE, "classify"] if EXE else [sys.executable, "-m", "bot.cli", "classify"]
    with (
        source.open("rb") as stdin,
        subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc,
    ):
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # what `head -1` does
        err = proc.stderr.read().decode("utf-8")
        proc.wait(timeout=60)
    assert b"poster" in first
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_demo_runs_the_jobs_and_time_moves_its_clock(db_env: dict[str, str]) -> None:
    script = "\n".join(
        [
            "/time 2026-11-23 09:30",  # a Monday morning: the working-time limits run
            "5号楼门口垃圾堆满了",  # garbage: 4 working hours, due 15:00
            "/time +5h",  # 14:30: past half the limit
            "/time +1h",  # 15:30: overdue
            "/as chen",
            "广播 G1 明天上午停水",
            "确认发送",
            "/time +2m",
            "/time later",
        ]
    )
    demo = run(["demo"], script + "\n", env=db_env)
    assert demo.returncode == 0, demo.stderr.decode()
    assert "Traceback" not in demo.stderr.decode()
    shown = demo.stdout.decode("utf-8")
    half, overdue = shown.index("[居民小王] > /time +5h"), shown.index("[居民小王] > /time +1h")
    assert "2026-11-23 14:30" in shown[half:overdue]
    warned = shown[half:overdue]
    assert (
        "发给 网格员张伟（zhang）" in warned and "【提醒】案件已过处置时限的一半" in warned and "#1" in warned
    )
    assert "【超时督办】" not in shown[:overdue]  # the leader only hears at the limit …
    told = shown[overdue : shown.index("/as chen")]
    assert "发给 网格长李娜（li）" in told and "【超时督办】" in told  # … which the job saw pass
    # the broadcast is expanded and delivered by the broadcast job and the outbox, as under serve
    sent = shown[shown.index("确认发送") :]
    assert "发给 居民小王" in sent and "明天上午停水" in sent and "发送完毕" in sent
    assert "用法：/time +3h" in shown  # a bad /time is explained, and the demo goes on


def test_demo_time_steps() -> None:
    from datetime import timedelta

    from bot.demo_clock import parse_step

    assert parse_step("+3h") == timedelta(hours=3)
    assert parse_step("+30m") == timedelta(minutes=30)
    assert parse_step("+2d") == timedelta(days=2)
    assert parse_step("+1d2h") == timedelta(days=1, hours=2)
    for bad in ("3h", "+", "+3x", "+h3", "-2h", "+3h later"):
        assert parse_step(bad) is None, bad


def test_broadcast_send_without_a_channel_stops_and_the_list_agrees_with_show(
    db_env: dict[str, str],
) -> None:
    assert run(["demo"], "5号楼门口垃圾堆满了\n", env=db_env).returncode == 0  # one resident, on the console
    stuck = run(["broadcast", "--text", "明天停水", "--yes", "--send"], env=db_env, timeout=60)
    err = stuck.stderr.decode("utf-8")
    assert stuck.returncode == 1 and "Traceback" not in err
    assert "没有配置任何发送渠道" in err and "broadcasts --show 1" in err  # said, and it did not wait

    # The demo's console delivers the queued notice; the broadcast's counters are not settled yet.
    assert "明天停水" in run(["demo"], "", env=db_env).stdout.decode("utf-8")
    listed = run(["broadcasts", "--format", "json"], env=db_env)
    (row,) = lines(listed)
    shown = json.loads(run(["broadcasts", "--show", "1", "--format", "json"], env=db_env).stdout)
    assert row["status"] == shown["status"] == "sending"
    assert (row["sent"], row["total"]) == (shown["progress"]["sent"], shown["progress"]["total"]) == (1, 1)
    text = run(["broadcasts"], env=db_env).stdout.decode("utf-8")
    assert "1/1" in text, text


@pytest.mark.parametrize(
    "given", ["http://127.0.0.1:8081", "http://127.0.0.1:8081/", "http://127.0.0.1:8081/bot"]
)
def test_telegram_api_url_with_or_without_bot(given: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings

    monkeypatch.setenv("OUTREACH_TELEGRAM_API_URL", given)
    assert Settings().telegram_api_url == "http://127.0.0.1:8081/bot"

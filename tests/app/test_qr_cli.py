"""``outreach-bot qr``: posters written and readable, one JSON line each; the Telegram deep link and the
WeChat permanent code (created once per scene against the fake API on 127.0.0.1); one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from bench.support import fake_telegram as ft
from bench.support import fake_wechat as fw
from bench.support import wechat_payloads as wx
from bot.qr_posters import HEIGHT, WIDTH, NoFont, find_cjk_font
from tests.support.cli import lines, run


@pytest.fixture
def db_env(tmp_path: Path) -> dict[str, str]:
    return {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'qr.db'}"}


@pytest.fixture(scope="module")
def wechat() -> Iterator[fw.FakeWeChat]:
    fake = fw.FakeWeChat(wx.APP_ID, wx.APP_SECRET).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def telegram() -> Iterator[ft.FakeTelegram]:
    fake = ft.FakeTelegram().start()
    yield fake
    fake.stop()


def one_line(result: object, status: int = 1) -> str:
    assert result.returncode == status, result.stderr.decode()  # type: ignore[attr-defined]
    err = result.stderr.decode().strip()  # type: ignore[attr-defined]
    assert "\n" not in err and "Traceback" not in err
    return err


def test_all_posters_are_written_one_json_line_each(tmp_path: Path, db_env: dict[str, str]) -> None:
    out = tmp_path / "posters"
    rows = lines(run(["qr", "--all", "--out", str(out)], env=db_env))
    labels = [r.get("building") or r.get("place") for r in rows]
    assert "3号楼" in labels and "A座" in labels and "东门" in labels and len(labels) == len(set(labels))
    assert len(rows) == 26 + 2 + 1 + 16  # 1-26, A座, B座, C座 and the sixteen places of the sample
    for row in rows:
        assert set(row) >= {"community", "scene", "grid", "file"} and "wechat" not in row
        assert "telegram" not in row  # no Telegram configured
        assert row["community"] == "C1" and len(str(row["scene"])) <= 64
        with Image.open(str(row["file"])) as image:
            image.verify()
        with Image.open(str(row["file"])) as image:
            assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    again = lines(run(["qr", "--community", "C1", "--building", "3号楼", "--out", str(out)], env=db_env))
    assert again[0]["scene"] == next(r["scene"] for r in rows if r.get("building") == "3号楼")  # stable


def test_a_printed_code_typed_into_the_demo_binds_and_places_the_report(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    [row] = lines(run(["qr", "--building", "3", "--out", str(tmp_path)], env=db_env))
    typed = f"/as 小王\n/start {row['scene']}\n楼道里贴满了小广告\n/start SQ_bAAAAAAAA_BBBBBBBBBBBBBBBB\n"
    result = run(["demo"], stdin=typed, env=db_env)
    said = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "这里是幸福社区3号楼" in said and "无法识别" in said
    tickets = lines(run(["tickets"], env=db_env))
    assert [(t["location"], t["grid"]) for t in tickets] == [("3号楼", "G1")]


def test_telegram_links_and_wechat_codes_are_made_once_per_scene(
    tmp_path: Path, db_env: dict[str, str], wechat: fw.FakeWeChat, telegram: ft.FakeTelegram
) -> None:
    env = {
        **db_env,
        "OUTREACH_TELEGRAM_TOKEN": telegram.token,
        "OUTREACH_TELEGRAM_API_URL": telegram.api_url,
        "OUTREACH_WECHAT_TOKEN": wx.TOKEN,
        "OUTREACH_WECHAT_APP_ID": wx.APP_ID,
        "OUTREACH_WECHAT_APP_SECRET": wx.APP_SECRET,
        "OUTREACH_WECHAT_API_URL": wechat.url,
    }
    before = wechat.count(fw.QRCODE)
    [gate] = lines(run(["qr", "--place", "东门", "--out", str(tmp_path)], env=env))
    assert (
        gate["place"] == "东门"
        and gate["telegram"] == f"https://t.me/shequtong_test_bot?start={gate['scene']}"
    )
    code = gate["wechat"]
    assert code["url"].startswith("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=")
    assert code["content"].startswith("http://weixin.qq.com/q/") and code["ticket"]
    created = [c for c in wechat.calls[before:] if c.path == fw.QRCODE]
    assert [c.body for c in created] == [
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": gate["scene"]}}}
    ]
    again = lines(run(["qr", "--all", "--out", str(tmp_path)], env=env))
    assert next(r for r in again if r.get("place") == "东门")["wechat"] == code  # from the cache
    assert wechat.count(fw.QRCODE) == before + len(again)  # one each: the gate's was not made again
    third = wechat.count(fw.QRCODE)
    lines(run(["qr", "--all", "--out", str(tmp_path)], env=env))
    assert wechat.count(fw.QRCODE) == third  # a second run makes no API call
    # Telegram's name from the settings rather than getMe:
    named = lines(
        run(
            ["qr", "--building", "3", "--out", str(tmp_path)],
            env={**env, "OUTREACH_QR_TELEGRAM_BOT": "@hpl_bot"},
        )
    )
    assert str(named[0]["telegram"]).startswith("https://t.me/hpl_bot?start=")


def test_a_wechat_error_is_one_line_with_its_code(
    tmp_path: Path, db_env: dict[str, str], wechat: fw.FakeWeChat
) -> None:
    env = {
        **db_env,
        "OUTREACH_WECHAT_TOKEN": wx.TOKEN,
        "OUTREACH_WECHAT_APP_ID": wx.APP_ID,
        "OUTREACH_WECHAT_APP_SECRET": wx.APP_SECRET,
        "OUTREACH_WECHAT_API_URL": wechat.url,
    }
    wechat.fail(fw.QRCODE, 45009)
    assert "errcode 45009" in one_line(run(["qr", "--building", "7", "--out", str(tmp_path)], env=env))
    assert (
        wx.APP_SECRET not in run(["qr", "--building", "7", "--out", str(tmp_path)], env=env).stderr.decode()
    )


def test_operator_mistakes_are_one_line(tmp_path: Path, db_env: dict[str, str]) -> None:
    out = str(tmp_path)
    assert "HPL" in one_line(run(["qr", "--community", "HPL", "--all", "--out", out], env=db_env), 2)
    assert "99" in one_line(run(["qr", "--building", "99", "--out", out], env=db_env))
    assert "东门" in one_line(run(["qr", "--place", "北京", "--out", out], env=db_env))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "无法写入" in one_line(run(["qr", "--all", "--out", str(blocker / "x")], env=db_env))
    no_font = {**db_env, "OUTREACH_QR_FONT": str(tmp_path / "missing.ttc")}
    assert "中文字体" in one_line(run(["qr", "--building", "3", "--out", out], env=no_font))
    assert run(["qr", "--out", out], env=db_env).returncode == 2  # which code: --building, --place or --all


def test_the_font_is_found_and_a_missing_configured_one_is_refused(tmp_path: Path) -> None:
    found = find_cjk_font()
    assert found.is_file()
    with pytest.raises(NoFont):
        find_cjk_font(tmp_path / "missing.ttc")

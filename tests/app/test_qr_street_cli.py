"""``outreach-bot qr`` over a 街道 file (tests/data/street/heping_street.yaml: HPL and JXY, each with its
own "3号楼"): each community its own codes, ``--community`` required when the file has several, and a
printed code typed into the demo of that 街道 binding the resident to that community's building."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import lines, run

STREET = str(Path(__file__).parents[1] / "data" / "street" / "heping_street.yaml")


@pytest.fixture
def db_env(tmp_path: Path) -> dict[str, str]:
    return {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'qr.db'}"}


def test_each_community_has_its_own_codes_and_which_one_must_be_said(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    out = str(tmp_path / "posters")
    hpl = lines(
        run(["qr", "--config", STREET, "--community", "HPL", "--building", "3", "--out", out], env=db_env)
    )
    jxy = lines(
        run(["qr", "--config", STREET, "--community", "jxy", "--building", "3", "--out", out], env=db_env)
    )
    assert [r["community"] for r in hpl + jxy] == ["HPL", "JXY"]
    assert hpl[0]["building"] == jxy[0]["building"] == "3号楼"
    assert hpl[0]["scene"] != jxy[0]["scene"] and str(hpl[0]["scene"]).startswith("HPL_")
    assert hpl[0]["file"] != jxy[0]["file"] and Path(str(hpl[0]["file"])).is_file()
    every = lines(run(["qr", "--config", STREET, "--community", "HPL", "--all", "--out", out], env=db_env))
    assert [r.get("building") or r.get("place") for r in every] == [
        *(f"{n}号楼" for n in range(1, 7)),
        "东门",
    ]
    for args in (["--all"], ["--community", "XYZ", "--all"]):
        result = run(["qr", "--config", STREET, *args, "--out", out], env=db_env)
        err = result.stderr.decode().strip()
        assert result.returncode == 2 and "\n" not in err and "Traceback" not in err
        assert "HPL" in err and "JXY" in err and ("XYZ" in err if "XYZ" in args else "--community" in err)


def test_a_printed_code_typed_into_the_street_demo_files_the_report_there(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    [row] = lines(
        run(
            ["qr", "--config", STREET, "--community", "HPL", "--building", "3", "--out", str(tmp_path)],
            env=db_env,
        )
    )
    typed = f"/as 小王\n/start {row['scene']}\n垃圾没人收\n"
    result = run(["demo", "--config", STREET], stdin=typed, env=db_env)
    said = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "这里是和平里社区3号楼" in said and "#HPL-1" in said and "哪个社区" not in said
    assert "张和平" in said  # HPL's worker for 3号楼, not JXY's
    tickets = lines(run(["tickets", "--format", "json"], env={**db_env, "OUTREACH_CONFIG": STREET}))
    assert [(t["location"], t["grid"]) for t in tickets] == [("3号楼", "G1")]


def test_the_demo_over_the_sample_street(tmp_path: Path, db_env: dict[str, str]) -> None:
    sample = str(Path(__file__).parents[2] / "bot" / "data" / "sample_street.yaml")
    typed = "\n".join(
        [
            "/as 小李",
            "5号楼楼道里贴满了小广告",  # which community? asked
            "2",  # 和平里社区: HPL-1, 钱晓红's (HPL's G1 worker for posters)
            "/as qian",
            "接单 HPL-1",
            "/as zhang",  # 幸福社区's worker: not theirs
            "接单 HPL-1",
            "/as gao",  # the 街道's admin sees every community's cases
            "查看 HPL-1",
            "",
        ]
    )
    result = run(["demo", "--config", sample], stdin=typed, env=db_env)
    said = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "本地控制台演示（和平街道）" in said and "qian" in said.split("\n", 5)[3]  # all staff
    assert "请问您在哪个社区" in said and "2. 和平里社区" in said
    assert "案件编号 #HPL-1" in said and "已派给网格员钱晓红" in said
    assert "已接单 #HPL-1" in said and "您无权处理 #HPL-1" in said
    assert "案件 #HPL-1" in said and "状态：处理中" in said

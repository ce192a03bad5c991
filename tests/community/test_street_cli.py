"""``outreach-bot route`` and ``outreach-bot config check`` over a 街道 file and a community file, run as
a user runs them (the installed command in a subprocess)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.cli import lines, run

SAMPLE_STREET = Path(__file__).parents[2] / "bot" / "data" / "sample_street.yaml"
CONTRACT = {"community", "category", "grid", "assignee", "confidence", "urgent", "ask"}

MESSAGES = "\n".join(
    [
        "和平里小区3号楼楼道里全是小广告",
        "星星幼儿园门口垃圾堆了三天",
        "錦繡園二期3号楼下水道堵了",
        "3号楼垃圾没人收",
        "和平里和锦绣园都有小广告",
        "谢谢你们，垃圾已经清理干净了",
    ]
)


def test_route_over_a_street_file_tells_the_community_or_asks() -> None:
    out = lines(run(["route", "--config", str(SAMPLE_STREET)], MESSAGES + "\n"))
    assert all(set(line) >= CONTRACT for line in out)
    named, placed, traditional, unknown, two, thanks = out
    assert (named["community"], named["grid"], named["assignee"], named["ask"]) == (
        "HPL",
        "G1",
        "qian",
        False,
    )
    assert (placed["community"], placed["location"], placed["category"]) == ("HPL", "星星幼儿园", "garbage")
    assert (traditional["community"], traditional["grid"], traditional["assignee"]) == ("JXY", "G2", "pan")
    # a report whose community the message does not tell: classified, not routed, asked
    assert unknown["community"] is None and unknown["ask"] is True and unknown["category"] == "garbage"
    assert unknown["grid"] is None and unknown["assignee"] is None and unknown["community_choices"] == []
    assert two["ask"] is True and two["community_choices"] == ["HPL", "JXY"]
    # thanks names no community and is no report: nothing to ask
    assert thanks["community"] is None and thanks["category"] is None and thanks["ask"] is False


def test_route_in_a_given_community() -> None:
    out = lines(run(["route", "--config", str(SAMPLE_STREET), "--community", "jxy"], "3号楼垃圾没人收\n"))
    # routed in 锦绣园 whatever the message says (3号楼 there is a number both phases have)
    assert out[0]["community"] == "JXY" and out[0]["category"] == "garbage"
    out = lines(run(["route", "--config", str(SAMPLE_STREET), "--community", "XF"], "3号楼垃圾没人收\n"))
    assert (out[0]["community"], out[0]["grid"], out[0]["assignee"], out[0]["ask"]) == (
        "XF",
        "G1",
        "zhang",
        False,
    )


def test_an_unknown_community_is_one_line_and_exit_2() -> None:
    result = run(["route", "--config", str(SAMPLE_STREET), "--community", "NOPE"], "3号楼垃圾\n")
    assert result.returncode == 2 and result.stdout == b""
    error = result.stderr.decode("utf-8").strip().splitlines()
    assert len(error) == 1 and "NOPE" in error[0] and "HPL" in error[0]


def test_route_over_a_community_file_is_as_before_plus_its_community() -> None:
    out = lines(run(["route"], "3号楼楼道里煤气味很重\n谢谢\n"))
    assert out[0]["community"] == "C1" and out[0]["grid"] == "G1" and out[0]["urgent"] == "gas"
    assert out[1]["community"] == "C1" and out[1]["category"] is None and "community_choices" not in out[1]
    assert lines(run(["route", "--community", "c1"], "3号楼有老鼠\n"))[0]["assignee"] == "wang"
    assert run(["route", "--community", "HPL"], "3号楼有老鼠\n").returncode == 2


def test_config_check_of_a_street_file_prints_each_community() -> None:
    result = run(["config", "check", str(SAMPLE_STREET)])
    assert result.returncode == 0, result.stderr.decode()
    shown = result.stdout.decode("utf-8").splitlines()
    assert "和平街道" in shown[0] and "3 个社区" in shown[0]
    assert [line.split()[0] for line in shown[1:]] == ["XF", "HPL", "JXY"]
    assert "幸福社区" in shown[1] and "4 个网格" in shown[1]


def test_config_check_of_a_bad_street_file_lists_every_problem(tmp_path: Path) -> None:
    data = yaml.safe_load(SAMPLE_STREET.read_text(encoding="utf-8"))
    data["communities"][0]["file"] = "missing.yaml"
    data["communities"][2]["code"] = "hpl"
    data["communities"][1]["staff"][0]["telegram"] = 200001  # the 街道 admin's account
    path = tmp_path / "street.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run(["config", "check", str(path)])
    assert result.returncode == 1 and result.stdout == b""
    shown = result.stderr.decode("utf-8")
    assert "3 处问题" in shown
    for key in ("communities[0].file", "communities[2].code", "communities[1].staff[0].telegram"):
        assert key in shown
    assert "200001" not in shown  # an account is never printed


def test_config_check_of_a_community_file_is_unchanged() -> None:
    sample = SAMPLE_STREET.parent / "sample_community.yaml"
    result = run(["config", "check", str(sample)])
    assert result.returncode == 0
    assert (
        result.stdout.decode("utf-8").strip()
        == f"配置文件 {sample} 检查通过：4 个网格，10 名工作人员，5 个类别。"
    )

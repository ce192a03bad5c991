"""`outreach-bot classify eval FILE` and `outreach-bot classify train`, run as a user runs them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.support.cli import lines, run

CORPUS = """\
# a tiny labelled file: labels<TAB>slice<TAB>urgent<TAB>text
garbage\tplain\t-\t楼下垃圾桶满了没人倒
garbage\tplain\t-\t东门垃圾堆了好几天
sewage\tplain\t-\t下水道堵了污水冒出来
sewage\tpinyin\t-\txia shui dao du le
pests\tplain\t-\t楼道里老鼠乱窜
pests\tenglish\t-\trats in the basement
other\turgent\tu\t楼道里一股煤气味
other\toutside\t-\t路灯坏了好几天
none\ttrap\t-\t谢谢你们
none\ttrap\t-\t你好
"""


def test_classify_prints_urgent_and_ask() -> None:
    out = lines(run(["classify"], "3号楼楼道里煤气味很重\n楼下那个地方一直不太对劲\n"))
    assert out[0]["urgent"] == "gas" and out[0]["category"] is not None
    assert out[1]["ask"] is True and out[1]["candidates"][0] == out[1]["category"]  # type: ignore[index]


def test_route_prints_urgent_and_ask() -> None:
    out = lines(run(["route"], "3号楼楼道里煤气味很重\n"))
    assert out[0]["urgent"] == "gas" and out[0]["grid"] == "G1" and "ask" in out[0]


def test_eval_prints_the_figures(tmp_path: Path) -> None:
    corpus = tmp_path / "small.tsv"
    corpus.write_text(CORPUS, encoding="utf-8")
    result = run(["classify", "eval", str(corpus)])
    assert result.returncode == 0, result.stderr.decode()
    shown = result.stdout.decode("utf-8")
    assert "== small.tsv: 10 messages" in shown
    assert "accuracy" in shown and "problems turned away" in shown and "urgent recall 1/1" in shown
    assert "confusion" in shown and "precision" in shown and "recall" in shown
    for label in ("poster", "garbage", "mosquito", "pests", "sewage", "other", "none"):
        assert label in shown


def test_eval_of_a_bad_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("rubbish\tplain\t-\tsome text\n", encoding="utf-8")
    result = run(["classify", "eval", str(bad)])
    assert result.returncode == 1
    error = result.stderr.decode("utf-8")
    assert "bad.tsv" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
    missing = run(["classify", "eval"])
    assert missing.returncode == 2 and "classify eval" in missing.stderr.decode("utf-8")


def test_train_is_reproducible_and_records_the_corpus(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "small.tsv").write_text(CORPUS, encoding="utf-8")
    first, second = tmp_path / "m1.json.gz", tmp_path / "m2.json.gz"
    for out in (first, second):
        result = run(["classify", "train", "--data", str(data), "--out", str(out)], timeout=300)
        assert result.returncode == 0, result.stderr.decode()
        assert "trained on" in result.stdout.decode("utf-8")
    assert first.read_bytes() == second.read_bytes()
    model = json.loads(gzip.decompress(first.read_bytes()))
    assert len(model["corpus_sha256"]) == 64 and model["settings"]["seed"] == 13
    assert model["weights"] and model["labels"]


def test_train_without_data_fails_cleanly(tmp_path: Path) -> None:
    result = run(["classify", "train", "--data", str(tmp_path), "--out", str(tmp_path / "m.json.gz")])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr.decode("utf-8")


def test_classify_lists_a_problem_of_no_category_beside_a_known_one_as_other() -> None:
    messages = "东门垃圾桶满了没人倒，另外单元门也关不上了\n东门垃圾堆满了，走路都过不去\n"
    out = lines(run(["classify"], messages))
    assert out[0]["category"] == "garbage" and out[0]["categories"] == ["garbage", "other"]
    assert out[1]["categories"] == ["garbage"]  # what the rubbish causes is no second problem


def test_route_lists_the_other_problem_too() -> None:
    out = lines(run(["route"], "3号楼楼道贴满小广告，还有楼道灯也坏了\n"))
    assert out[0]["categories"] == ["poster", "other"] and out[0]["grid"] == "G1"

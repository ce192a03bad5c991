"""The start-up caches (kernel/disk_cache.py, regex_cache.py, jieba_cache.py): a changed input is never
answered from an old file, a damaged file is rebuilt, several processes writing at once leave one whole
file, and what comes back from a cache is what building gives."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from handlers.community import jieba_cache, lexicon
from handlers.kernel import disk_cache, regex_cache

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    regex_cache.forget()
    yield tmp_path / "shequtong"
    regex_cache.forget()


def _files(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.exists() else []


def test_a_changed_input_is_a_different_file_and_is_built_again(cache_home: Path) -> None:
    built: list[str] = []

    def build(text: str) -> str:
        built.append(text)
        return text.upper()

    for text in ("垃圾", "垃圾", "垃圾桶"):
        key = disk_cache.fingerprint([text])
        assert disk_cache.load_or_build("t", key, lambda text=text: build(text)) == text.upper()
    assert built == ["垃圾", "垃圾桶"]  # the second start read the file; the changed input did not
    assert len(_files(cache_home, "t-*.pickle")) == 2


def test_the_fingerprint_covers_every_part_and_where_parts_end() -> None:
    assert disk_cache.fingerprint(["ab", "c"]) != disk_cache.fingerprint(["a", "bc"])
    assert disk_cache.fingerprint([b"x"]) == disk_cache.fingerprint(["x"])
    assert disk_cache.fingerprint(["x"]) != disk_cache.fingerprint(["y"])


def test_a_damaged_file_is_rebuilt_and_rewritten(cache_home: Path) -> None:
    key = disk_cache.fingerprint(["damaged"])
    assert disk_cache.load_or_build("t", key, lambda: {"v": 1}) == {"v": 1}
    (path,) = _files(cache_home, "t-*.pickle")
    path.write_bytes(path.read_bytes()[:7])  # a crash halfway through a write by another tool
    assert disk_cache.load_or_build("t", key, lambda: {"v": 2}) == {"v": 2}
    assert pickle.loads(path.read_bytes()) == {"v": 2}


def test_an_unwritable_cache_directory_only_costs_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert disk_cache.load_or_build("t", "k", lambda: 5) == 5


_WRITER = textwrap.dedent(
    """
    import sys
    from handlers.kernel import disk_cache
    barrier = float(sys.argv[1])
    import time
    while time.time() < barrier:
        pass
    value = disk_cache.load_or_build("race", "k", lambda: list(range(200_000)))
    assert value == list(range(200_000))
    """
)


def test_several_processes_building_at_once_leave_one_whole_file(cache_home: Path) -> None:
    import time

    barrier = time.time() + 1.5  # all start building together
    env = {"XDG_CACHE_HOME": str(cache_home.parent), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(barrier)], cwd=ROOT, env=env) for _ in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert [p.name for p in _files(cache_home)] == ["race-k.pickle"]  # no temporary file left behind
    assert pickle.loads((cache_home / "race-k.pickle").read_bytes()) == list(range(200_000))


def test_a_pattern_from_the_cache_is_the_pattern_re_compiles(cache_home: Path) -> None:
    patterns = ["(?:煤气|燃气)(?:味|泄漏)", r"(?<![a-z])(?:gas|fire)", "(?P<n>\\d+)号楼", "楼道|[一二三]楼"]
    first = [regex_cache.compile(p) for p in patterns]
    regex_cache.save()
    regex_cache.forget()  # as the next start: read from the file
    again = [regex_cache.compile(p) for p in patterns]
    assert again == first == [re.compile(p) for p in patterns]  # same text, flags and compiled code
    assert again[2].groupindex == {"n": 1}
    assert again[2].search("住在12号楼").group("n") == "12"
    assert regex_cache._dirty is False  # every one came from the file


def test_a_bad_pattern_still_raises(cache_home: Path) -> None:
    with pytest.raises(re.error):
        regex_cache.compile("(未闭合")


def test_a_damaged_regex_file_is_compiled_again(cache_home: Path) -> None:
    regex_cache.compile("垃圾|老鼠")
    regex_cache.save()
    regex_cache.forget()
    (path,) = _files(cache_home, "regex-*.pickle")
    path.write_bytes(b"\x80\x05garbage")
    assert regex_cache.compile("垃圾|老鼠").search("有老鼠") is not None
    regex_cache.save()
    assert ("re", "垃圾|老鼠", 0) in pickle.loads(path.read_bytes())


def test_the_word_table_is_jiebas_dictionary_with_the_words_added() -> None:
    # The table read group by group gives every lookup jieba's add_word gives, and the words' own
    # frequencies in jieba's dictionary (for telling a typo from a word) are jieba's.
    added = frozenset({"小广告", "下水道堵", "垃圾桶", "仓库垃圾", "zzq新词"})
    groups, total = jieba_cache.base_groups()
    table = jieba_cache.WordTable(groups, total, added, 10**6)
    assert table.freq == {}  # nothing read before a text needs it
    table.ensure("小广告")
    assert set(table.freq) and all(word[0] in "小广告" for word in table.freq)
    jieba = jieba_cache.jieba_tokenizer(added, 10**6)
    base = jieba_cache.jieba_tokenizer()
    assert table.read_all() == jieba.FREQ
    assert table.total == jieba.total
    for word in [*added, "垃圾", "文字", "不存在的词"]:
        assert table.base_freq(word) == base.FREQ.get(word, 0), word


def test_the_jieba_cache_key_follows_the_dictionary_file(tmp_path: Path) -> None:
    dictionary = tmp_path / "dict.txt"
    dictionary.write_text("垃圾 100 n\n")
    before = jieba_cache._key([dictionary])
    dictionary.write_text("垃圾 100 n\n老鼠 50 n\n")
    assert jieba_cache._key([dictionary]) != before


def test_a_lexicon_from_the_cache_reads_messages_as_a_new_one(cache_home: Path) -> None:
    words = sorted({"下水道", "垃圾", "着火了", "蟑螂", "老鼠"})
    fresh = lexicon.Lexicon(words)
    cached = lexicon.cached_lexicon(words)  # built and written
    regex_cache.forget()
    read = lexicon.cached_lexicon(words)  # read back
    assert _files(cache_home, "lexicon-*.pickle")
    for text in ["拉圾太多了", "xia shui dao du le", "rats in the basement", "耗儿好多", "着或了"]:
        assert read.normalize(text) == cached.normalize(text) == fresh.normalize(text), text


_CLASSIFY = textwrap.dedent(
    """
    import json
    from handlers.community.classify import default_classifier
    texts = ["3号楼楼道里贴满了小广告", "煤气味好大", "拉圾桶满了没人收", "谢谢你们", "xia shui dao du le"]
    print(json.dumps([repr(default_classifier().classify(t)) for t in texts], ensure_ascii=False))
    """
)


def test_answers_are_the_same_from_empty_and_filled_caches(cache_home: Path) -> None:
    env = {"XDG_CACHE_HOME": str(cache_home.parent), "PATH": "/usr/bin:/bin"}

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", _CLASSIFY], cwd=ROOT, env=env, capture_output=True, check=True
        )
        return done.stdout.decode()

    cold = run()  # builds and writes every cache
    names = {p.name.split("-")[0] for p in _files(cache_home, "*.pickle")}
    assert {"jieba", "regex", "lexicon", "pinyin", "model"} <= names
    assert run() == cold  # reads them

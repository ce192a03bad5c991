"""Safety first, round 5 (issue #13 point 2): the kinds an outside evaluator saw missed (an open or broken
manhole or septic-tank cover, sewage or flood water reaching electrics, a gas alarm going off, water on an
open electric box, walls told with less common collapse verbs, a storm-broken tree on power lines, a
burning bin) and the words it saw raise an alarm out of context (a past fire, noise, 救命 about a smell, a
burst pipe, a rattling cover, news and hearsay), with the categories it saw wrong (slop, leaves, fire ants,
manholes are the sewer's). The texts here are variants, not the corpus rows themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.cases.models import Case
from handlers.community.classify import default_classifier
from handlers.community.classify_corpus import read_rows
from tests.support.chat import Chat

EXAMPLES = Path(__file__).resolve().parents[2] / "bench" / "data" / "corpus" / "own_examples_7.tsv"


def classify(text: str) -> Any:
    return default_classifier().classify(text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # an open, missing or broken manhole or septic-tank cover: someone can fall in
        ("7号楼前面的井盖不见了，地上一个黑窟窿", "water"),
        ("化粪池盖板碎了，小朋友在旁边玩", "water"),
        ("小区后门沙井盖俾人偷咗", "water"),
        ("the manhole cover near gate 3 is missing", "water"),
        ("someone stole the manhole cover by building 2", "water"),
        # sewage or flood water reaching electrics
        ("污水一直流到2号楼的配电箱下面了", "electric"),
        ("车库积水快淹到充电桩了", "electric"),
        # a gas alarm going off
        ("燃气报警器一直在响，家里就我一个人", "gas"),
        ("邻居家的煤气报警器响个不停", "gas"),
        # an open electric box with water on its wires, even beside the garbage room
        ("垃圾房旁边的电箱门没关，电线露着还在滴水", "electric"),
        # walls told with less common collapse verbs
        ("小区东边的围墙垮了一大段", "collapse"),
        ("车棚后面的墙往外鼓，好像要倒", "collapse"),
        # a storm-broken tree on power lines
        ("大风把树吹断了，搭在电线上", "electric"),
        # a burning bin
        ("垃圾桶烧起来了，好大的烟", "fire"),
    ],
)
def test_round5_dangers_are_caught(text: str, kind: str) -> None:
    assert classify(text).urgent == kind


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("3号楼楼上每天半夜摔东西，吵得睡不着", "other"),  # noise, not a fall
        ("救命啊，楼下下水道的臭味太冲了", "sewage"),  # an exclamation about a smell
        ("4号楼的水管爆了，楼道全是水", "other"),  # a burst pipe with no electrics and nobody trapped
        ("门口的井盖一压就咣当咣当响", "sewage"),  # a rattling cover, not a collapse
        ("the manhole cover rattles when cars drive over it", "sewage"),
        ("配电房门口堆了很多纸箱", "garbage"),  # things piled by a switch room
        ("围墙上有条老裂缝，好几年了", "other"),  # an old crack
        ("楼下那棵树的枝条快碰到电线了，麻烦修剪", "other"),  # a branch near the lines, nothing broken
    ],
)
def test_round5_neighbours_are_reports_without_alarm(text: str, category: str) -> None:
    result = classify(text)
    assert result.urgent is None
    assert result.category == category


@pytest.mark.parametrize(
    "text",
    [
        "听说隔壁小区有人家着火了",
        "燃气报警器没电了滴滴叫怎么换电池",
        "上次失火以后大家都买了灭火器",
    ],
)
def test_hearsay_questions_and_past_fires_are_no_alarm(text: str) -> None:
    result = classify(text)
    assert result.urgent is None
    assert result.category is None


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("垃圾桶边上放着一桶泔水没人管", "garbage"),  # kitchen slop by the bins
        ("小区路上落叶和树枝没人扫", "garbage"),  # leaves and branches on a road
        ("花坛里有红火蚁，咬人很疼", "pests"),
        ("7号楼前面的井盖不见了，地上一个黑窟窿", "sewage"),  # a manhole is the sewer's
        ("垃圾桶烧起来了，好大的烟", "garbage"),  # a burning bin is garbage and urgent
    ],
)
def test_round5_categories(text: str, category: str) -> None:
    assert classify(text).category == category


def _train_rows() -> Iterator[Any]:
    for row in read_rows(EXAMPLES):
        if row.split == "train":  # the test split is only measured (bench/classify_accuracy.py)
            yield pytest.param(row.text, bool(row.urgent), id=row.text[:24])


@pytest.mark.parametrize(("text", "is_urgent"), list(_train_rows()))
def test_every_train_example_gets_its_urgency(text: str, is_urgent: bool) -> None:
    assert (classify(text).urgent is not None) == is_urgent


async def test_a_gas_alarm_gets_the_gas_line_and_alerts_staff(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼我家燃气报警器一直在响")
    safety = chat.to(out, "小王")[0]
    assert "燃气泄漏" in safety and "119" in safety and "燃气公司" in safety
    assert any("【紧急】" in t for t in chat.to(out, "chen"))


async def test_an_open_manhole_is_an_urgent_sewage_case_with_110(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼门口的井盖被偷了，一个大洞")
    safety = chat.to(out, "小王")[0]
    assert "110" in safety and "井口" in safety
    async with chat.services.sessions() as session:
        stored = await session.get(Case, 1)
    assert stored is not None and stored.urgent and stored.category_code == "sewage"


async def test_water_reaching_a_switch_room_gives_the_power_line(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼地下车库的水快漫到配电房了")
    safety = chat.to(out, "小王")[0]
    assert "95598" in safety


async def test_a_burst_pipe_alone_opens_a_case_that_is_not_urgent(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼的水管爆了，楼道全是水")
    assert any("#1" in t for t in chat.to(out, "小王"))
    assert not any("【紧急】" in t for t in chat.to(out, "chen"))
    async with chat.services.sessions() as session:
        stored = await session.get(Case, 1)
    assert stored is not None and not stored.urgent

"""Safety first, by kind: the dangers an outside evaluator saw missed (smoke, things about to fall, a
person behind a door, people in a flooding garage, an open manhole), the words it saw raise an alarm
out of context (plaster, a near slip, 救命 about cockroaches, a hissing manhole, a deep puddle, a cat's
mouse), and politeness around a report that made the report disappear (issue #13 point 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.cases.emergency import emergency_keys
from handlers.cases.models import Case
from handlers.community import urgent
from handlers.community.classify import default_classifier
from handlers.community.classify_corpus import read_rows
from tests.support.chat import Chat

EXAMPLES = Path(__file__).resolve().parents[2] / "bench" / "data" / "corpus" / "own_examples_urgent3.tsv"


def danger(text: str) -> str | None:
    return default_classifier().classify(text).urgent


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # smoke or a burning smell from something burning
        ("楼下有人在烧垃圾，黑烟滚滚的", "fire"),
        ("3号楼楼道里一股焦糊味，不知道哪里烧起来了", "fire"),
        ("楼梯间冒黑烟了", "fire"),
        ("Someone is burning trash behind building 4, thick smoke", "fire"),
        ("lou dao li you jiao hu wei", "fire"),
        # heavy things about to fall from height
        ("12楼空调外机支架锈断了，外机斜挂着，下面是人行道", "collapse"),
        ("沿街的大招牌被风吹得晃来晃去，螺丝都松了", "collapse"),
        ("窗台边上摆着大花盆，一半悬在外面", "collapse"),
        ("An AC unit is hanging by one rusted bracket over the entrance", "collapse"),
        # a person possibly in danger behind a door
        ("隔壁独居老人三天没出门了，敲门也没人应", "welfare"),
        ("501门口有股很臭的味道，敲门没人开", "welfare"),
        ("隔篱屋个伯伯几日冇出过门，拍门都冇人应", "welfare"),
        ("My elderly neighbour hasn't answered the door for three days", "welfare"),
        ("ge bi lao ren qiao men mei ren ying", "welfare"),
        # people inside a flooding garage, basement or lift
        ("地下车库进水了，水到腰了，还有人在里面挪车", "flood"),
        ("地下室灌水了，里面有个瘫痪的老人出不来", "flood"),
        ("The underground garage is flooding and people are still inside", "flood"),
        # an open manhole where people walk (decided: urgent)
        ("幼儿园门口的井盖被人偷了，一个大洞", "water"),
        ("门口个沙井盖冇咗，得返个窿", "water"),
        ("Manhole cover is missing on the main path, an open hole in the dark", "water"),
    ],
)
def test_missed_dangers_are_caught(text: str, kind: str) -> None:
    assert danger(text) == kind


@pytest.mark.parametrize(
    "text",
    [
        # a word of danger out of context
        "楼道墙皮大片脱落，白灰掉了一地",
        "电梯间墙上的涂料起皮脱落了",
        "健身器材上的踏板掉了一个，转不动了",
        "A small part fell off the exercise machine in the park",
        "门口地砖太滑了，我今天差点滑倒",
        "上次有人在这摔过，能不能铺个防滑垫",
        "路面结冰了，老人容易滑倒，请撒点盐",
        "lou ti hen hua cha dian shuai dao",
        "救命，家里厨房全是蟑螂",
        "救命啊楼道里一只巨大的老鼠",
        "井盖下面一直嘶嘶地响，像是有水在流",
        "窨井里一直嗞嗞响，不知道是什么",
        "楼下积水很深，都没过脚脖子了",
        "门口积了好深水，鞋都湿了",
        "我家猫抓到一只老鼠，咬得血淋淋的",
        "猫追老鼠，老鼠掉进水沟里淹死了",
        # decided: a broken handrail is a repair, not an emergency (walkway is off by default)
        "2单元楼梯扶手断了一截，请来修",
    ],
)
def test_words_out_of_context_raise_no_alarm(text: str) -> None:
    assert danger(text) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("井盖下面嘶嘶响，还有一股煤气味", "gas"),  # a hiss with a gas smell is a leak
        ("阳台下面的墙皮大块往下掉，有小孩在下面玩", "collapse"),  # falling on someone
        ("楼下的狗把一个小孩咬伤了，在流血", "fall"),  # a person hurt beside an animal
        ("积水里泡着断了的电线，还在冒火花", "electric"),
    ],
)
def test_the_same_words_with_a_real_danger_still_alarm(text: str, kind: str) -> None:
    assert danger(text) == kind


POLITE = [
    ("3号楼下水道堵了 谢谢", "sewage"),
    ("3号楼下水道堵了谢谢", "sewage"),
    ("谢谢 3号楼下水道堵了", "sewage"),
    ("5栋门口的垃圾好几天没人收了 麻烦了", "garbage"),
    ("辛苦你们了，楼道里又贴满了小广告", "poster"),
    ("地下室好多老鼠 拜托拜托", "pests"),
    ("路灯坏了 谢谢你们", "other"),
    ("thx, bins by gate 2 are overflowing", "garbage"),
    ("drain blocked at building 3 thanks", "sewage"),
]


@pytest.mark.parametrize(("text", "category"), POLITE)
def test_politeness_around_a_report_keeps_the_report(text: str, category: str) -> None:
    result = default_classifier().classify(text)
    assert result.category == category and result.intent is None


@pytest.mark.parametrize(
    "text",
    [
        "谢谢",
        "谢谢 辛苦了",
        "垃圾已经清走了 谢谢",
        "谢谢你们把楼道的小广告都撕掉了",
        "thanks, the drain is fixed now",
    ],
)
def test_real_thanks_still_close(text: str) -> None:
    assert default_classifier().classify(text).category is None


def _rows() -> Iterator[Any]:
    for row in read_rows(EXAMPLES):
        yield pytest.param(row.text, bool(row.urgent), id=row.text[:24])


@pytest.mark.parametrize(("text", "is_urgent"), list(_rows()))
def test_every_example_of_the_kinds_gets_its_urgency(text: str, is_urgent: bool) -> None:
    assert (danger(text) is not None) == is_urgent


@pytest.fixture
def walkway_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The shipped data with the `walkway` kind switched on, as a community's maintainer would."""
    data = urgent.urgent_data()
    kinds = {key: dict(raw) for key, raw in data["kinds"].items()}
    kinds["walkway"]["enabled"] = True
    monkeypatch.setattr(urgent, "urgent_data", lambda: {**data, "kinds": kinds})
    cached = (urgent.urgent_kinds, urgent._prefilter, urgent._leading_text, urgent.plain_words)
    for function in cached:
        function.cache_clear()
    yield
    monkeypatch.undo()
    for function in cached:
        function.cache_clear()


def test_a_disabled_kind_is_known_but_raises_no_alarm() -> None:
    assert "walkway" in emergency_keys()  # a community may still give it a number
    assert urgent.detect("楼梯扶手断了一截") is None


@pytest.mark.usefixtures("walkway_on")
def test_a_kind_switched_on_in_the_data_raises_its_alarm() -> None:
    assert urgent.detect("楼梯扶手断了一截") == "walkway"


async def test_a_neighbour_behind_a_door_alerts_staff_and_gives_110(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼隔壁独居的王奶奶三天没出门了，敲门也没人应")
    safety = chat.to(out, "小王")[0]
    assert "110" in safety and "无人应门" in safety and "不要独自破门" in safety
    assert any("【紧急】" in t for t in chat.to(out, "chen"))


async def test_people_in_a_flooding_garage_get_119(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼地下车库进水了，水到腰了，还有人在里面")
    safety = chat.to(out, "小王")[0]
    assert "119" in safety and "被困水中" in safety
    assert any("【紧急】" in t for t in chat.to(out, "li"))


@pytest.mark.parametrize("text", ["3号楼下水道堵了 谢谢", "谢谢 3号楼下水道堵了", "3号楼下水道堵了 thx"])
async def test_a_polite_report_opens_a_case(chat: Chat, text: str) -> None:
    out = await chat.send("小王", text)
    assert any("#1" in t for t in chat.to(out, "小王"))
    async with chat.services.sessions() as session:
        stored = await session.get(Case, 1)
    assert stored is not None and stored.category_code == "sewage"


async def test_only_thanks_opens_no_case(chat: Chat) -> None:
    await chat.send("小王", "谢谢 辛苦了")
    async with chat.services.sessions() as session:
        assert await session.get(Case, 1) is None

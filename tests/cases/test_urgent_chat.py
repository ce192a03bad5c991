"""Safety first, from the resident's side: a report naming a danger opens an urgent case, alerts the
grid leader and the admins at once, and tells the resident which number to call."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from handlers.cases.models import Case, CaseEvent
from handlers.community.classify import default_classifier
from handlers.community.model import CommunityConfigError, load_community, parse_community
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from tests.support.chat import Chat, Clock, RecordingSender


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def actions(chat: Chat, number: int) -> list[str]:
    async with chat.services.sessions() as session:
        rows = await session.scalars(select(CaseEvent.action).where(CaseEvent.case_id == number))
        return list(rows)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("3号楼2单元楼道里一股很浓的煤气味，快来人", "gas"),
        ("隔壁家燃气泄漏了，敲门没人应", "gas"),
        ("楼下小饭店门口的液化气罐一直嘶嘶漏气", "gas"),
        ("Strong gas smell in the stairwell of building 3", "gas"),
        ("5号楼有家窗户在冒黑烟，好像着火了", "fire"),
        ("地下车库有电动车在冒烟，味道很呛", "fire"),
        ("電梯困人了，裡面有老人", "lift"),
        ("楼下电线掉下来了，还在冒火花", "electric"),
        ("大风把电线刮断了搭在车棚顶上，还在滋滋响", "electric"),
        ("6栋电梯卡在8楼和9楼中间了，里面有个老人和小孩", "lift"),
        ("救命 电梯困人 9栋 里面三个人", "lift"),
        ("Someone is trapped in the lift in building 6", "lift"),
        ("小区门口一个老大爷摔倒了起不来，头上有血", "fall"),
        ("楼上阳台的护栏松了，一大块往下掉，差点砸到人", "collapse"),
        ("小区的井盖被偷了，一个大黑洞", "water"),
    ],
)
def test_dangers_are_recognised(text: str, kind: str) -> None:
    assert default_classifier().classify(text).urgent == kind


@pytest.mark.parametrize(
    "text",
    [
        "3号楼楼道里贴满了小广告",
        "楼下烧烤摊油烟很大，熏得没法开窗",
        "没有煤气味了，谢谢你们",
        "电梯坏了好几天了也没人修",
        "燃气费在哪里交",
        "有人在楼道里抽烟，烟味很大",
        "垃圾桶满了好几天没人清",
        "楼下那只流浪猫被困在树上好久了",
        "小狗卡在小区铁栏杆中间出不来",
    ],
)
def test_everyday_problems_are_not_dangers(text: str) -> None:
    assert default_classifier().classify(text).urgent is None


@pytest.mark.parametrize(
    "text", ["猫被困在树上，电梯里还有人出不来", "我家孩子被困在电梯里了", "有人被困住了快来"]
)
def test_a_person_trapped_is_a_danger_even_beside_an_animal(text: str) -> None:
    assert default_classifier().classify(text).urgent == "lift"


async def test_gas_smell_opens_an_urgent_case_and_alerts_leader_and_admins_at_once(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼2单元楼道里一股很浓的煤气味，快来人")
    told = chat.to(out, "小王")
    safety = told[0]  # safety first: the number to call before anything else
    assert "#1" in safety and "紧急" in safety and "119" in safety and "不要点火" in safety
    assert "燃气公司的抢修电话" in safety  # no line of its own in the sample: where to find the company's
    leader, admin = chat.to(out, "li"), chat.to(out, "chen")
    assert any("【紧急】" in t and "#1" in t and "燃气泄漏" in t and "3号楼" in t for t in leader)
    assert any("【紧急】" in t and "#1" in t and "煤气味" in t for t in admin)
    stored = await case(chat, 1)
    assert stored.urgent and stored.grid_code == "G1"
    assert "urgent" in await actions(chat, 1)
    assert any("#1" in t for t in told[1:])  # and the usual acknowledgement follows


async def test_the_alarm_card_masks_phone_numbers(chat: Chat) -> None:
    out = await chat.send("小王", "5号楼楼道里煤气味很重 我电话13812345678")
    alarm = [t for t in chat.to(out, "chen") if "【紧急】" in t]
    assert alarm and "138****5678" in alarm[0] and "13812345678" not in alarm[0]


async def test_urgent_case_card_is_marked_for_the_worker(chat: Chat) -> None:
    out = await chat.send("小王", "12号楼楼下有人在烧垃圾，火已经窜起来了")
    worker = chat.to(out, "zhao")
    assert worker and worker[0].startswith("【新案件】#1") and "【紧急】" in worker[0]
    assert any("119" in t for t in chat.to(out, "小王"))
    assert chat.to(out, "li") and chat.to(out, "chen")


async def test_fallen_person_gets_120_and_lift_entrapment_is_urgent_without_a_category(chat: Chat) -> None:
    out = await chat.send("小李", "东门口一个老人摔倒了起不来，头上有血")
    assert any("120" in t and "紧急" in t for t in chat.to(out, "小李"))
    assert (await case(chat, 1)).urgent
    out = await chat.send("小张", "15号楼电梯困人了，里面有小孩在哭")
    assert any("#2" in t and "电梯困人" in t and "119" in t for t in chat.to(out, "小张"))
    assert any("【紧急】" in t for t in chat.to(out, "zhou"))  # G3's leader
    assert chat.to(out, "li") == []  # not G1/G2's
    stored = await case(chat, 2)
    assert stored.urgent and stored.category_code == "other" and stored.grid_code == "G3"


async def test_urgent_without_a_place_alerts_admins_and_still_asks_where(chat: Chat) -> None:
    out = await chat.send("小李", "闻到很重的燃气味，怎么办")
    told = chat.to(out, "小李")
    assert any("119" in t for t in told) and any("哪里" in t for t in told)
    for staff in ("chen", "li", "zhou"):  # no grid yet: the admins and every grid leader
        assert any("【紧急】" in t for t in chat.to(out, staff))


async def test_community_gas_repair_line_is_given(services: Services, clock: Clock) -> None:
    community = load_community(None)
    data = community.config.model_dump(mode="json", exclude_defaults=True)
    data["emergency"] = {"gas": 96777, "lift": "96333"}  # YAML reads an unquoted number as an int
    own = parse_community(data)
    chat = Chat(
        Services(services.sessions, own, services.channels, clock),
        conversation(Services(services.sessions, own, services.channels, clock)),
        RecordingSender("console"),
        clock,
    )
    out = await chat.send("小王", "2号楼楼道里煤气味很重")
    assert any("燃气抢修电话 96777" in t for t in chat.to(out, "小王"))
    assert any("96777" in t for t in chat.to(out, "chen"))


def test_unknown_emergency_key_is_a_config_problem() -> None:
    data = load_community(None).config.model_dump(mode="json", exclude_defaults=True)
    data["emergency"] = {"gaz": "96777"}
    with pytest.raises(CommunityConfigError) as error:
        parse_community(data)
    assert [p.key for p in error.value.problems] == ["emergency.gaz"]


async def test_a_danger_is_taken_even_past_the_hourly_report_limit(chat: Chat) -> None:
    limit = chat.services.community.config.limits.reports_per_hour
    for n in range(limit):
        await chat.send("小王", f"{n % 6 + 1}号楼门口垃圾没人清")
    out = await chat.send("小王", "2号楼门口的垃圾也没人清")
    assert any("一小时内" in t for t in chat.to(out, "小王"))
    out = await chat.send("小王", "2号楼楼道里煤气味很重")
    assert any("119" in t for t in chat.to(out, "小王"))
    assert any("【紧急】" in t for t in chat.to(out, "chen"))


async def test_an_urgent_report_gets_one_consistent_acknowledgement(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼2单元楼道里一股很浓的煤气味，快来人")
    told = chat.to(out, "小王")
    assert "119" in told[0]
    rest = "\n".join(told[1:])
    assert "紧急" in rest and "#1" in rest
    assert "预计" not in rest and "已收到您的反映" not in rest  # no ordinary time limit after the alarm


async def test_every_staff_card_of_an_urgent_case_is_marked_urgent(chat: Chat) -> None:
    await chat.send("小王", "隔壁家燃气泄漏了，敲门没人应")  # no place: asked where
    out = await chat.send("小王", "不知道")  # then the admins' triage card
    triage = [t for t in chat.to(out, "chen") if "【待分拣】" in t]
    assert triage and all("【紧急】" in t for t in triage)
    out = await chat.send("chen", "分派 1 zhang")
    assert any("【紧急】" in t and "#1" in t for t in chat.to(out, "zhang"))
    await chat.send("zhang", "完成 1 已处理")
    await chat.send("小王", "2")
    out = await chat.send("小王", "还是有煤气味")
    reopened = [t for t in chat.to(out, "zhang") if "【重新打开】" in t]
    assert reopened and all("【紧急】" in t for t in reopened)


async def test_a_danger_told_as_fixed_raises_no_alarm_and_opens_no_case(chat: Chat) -> None:
    out = await chat.send("小王", "上周3号楼楼道里的煤气味，燃气公司已经修好了，谢谢你们")
    told = chat.to(out, "小王")
    assert told and not any("119" in t or "紧急" in t for t in told)
    assert not any("【紧急】" in t for t in chat.to(out, "chen") + chat.to(out, "li"))
    async with chat.services.sessions() as session:
        assert await session.get(Case, 1) is None


async def test_a_danger_back_again_is_urgent(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼上次的煤气味修好了，今天楼道里又闻到很浓的煤气味")
    assert any("119" in t for t in chat.to(out, "小王"))
    assert any("【紧急】" in t for t in chat.to(out, "chen"))
    assert (await case(chat, 1)).urgent

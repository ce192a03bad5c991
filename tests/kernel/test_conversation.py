"""The channel-neutral conversation, end to end through the outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from handlers.cases.models import Case, CaseEvent, CaseStatus
from handlers.feature_set import conversation
from handlers.kernel.inbound import Inbound
from storage.models import InboundMessage, OutboxMessage, OutboxStatus
from tests.support.chat import Chat


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def events(chat: Chat, number: int) -> list[tuple[str, str | None, str | None]]:
    async with chat.services.sessions() as session:
        rows = await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == number).order_by(CaseEvent.id)
        )
        return [(e.action, e.actor_id, e.to_status) for e in rows]


async def count(chat: Chat, model: type) -> int:
    async with chat.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_report_is_acknowledged_assigned_accepted_and_resolved(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼楼道里贴满了小广告，还有办证的电话")
    ack = chat.to(out, "小王")
    assert len(ack) == 1
    assert "#1" in ack[0] and "乱张贴" in ack[0] and "张伟" in ack[0] and "3号楼" in ack[0]
    worker = chat.to(out, "zhang")
    assert len(worker) == 1 and "办证的电话" in worker[0] and "3号楼" in worker[0] and "第一网格" in worker[0]
    buttons = next(m.payload["buttons"] for m in out if m.recipient == "zhang")
    assert [b["action"] for b in buttons] == ["accept:1", "resolve:1", "transfer:1", "duplicate:1"]
    assert "11月24日 10:00" in ack[0]  # Monday 09:30 + 8 working hours (poster) = Tuesday 10:00
    stored = await case(chat, 1)
    assert (stored.status, stored.assignee_id, stored.grid_code, stored.category_code) == (
        CaseStatus.ASSIGNED,
        "zhang",
        "G1",
        "poster",
    )

    out = await chat.send("zhang", "接单 1")
    assert any("已接单 #1" in t for t in chat.to(out, "zhang"))
    assert any("#1" in t and "张伟" in t and "接单" in t for t in chat.to(out, "小王"))
    assert (await case(chat, 1)).status == CaseStatus.ACCEPTED

    out = await chat.send("zhang", "完成 1 已全部清理干净")
    told = chat.to(out, "小王")
    assert len(told) == 1 and "#1" in told[0] and "已全部清理干净" in told[0]
    resolved = await case(chat, 1)
    assert resolved.status == CaseStatus.RESOLVED and resolved.resolution_note == "已全部清理干净"
    assert await events(chat, 1) == [
        ("reported", "1", "new"),
        ("assigned", None, "assigned"),
        ("accepted", "zhang", "accepted"),
        ("resolved", "zhang", "resolved"),
    ]


async def test_button_press_acts_like_the_typed_command(chat: Chat) -> None:
    await chat.send("小王", "5号楼下水道堵了污水冒出来")
    assert (await case(chat, 1)).assignee_id == "wang"
    await chat.conversation.act(Inbound(channel="console", sender="wang"), "accept:1")
    assert (await case(chat, 1)).status == CaseStatus.ACCEPTED


async def test_resolve_without_note_asks_for_one(chat: Chat) -> None:
    await chat.send("小王", "2号楼门口垃圾堆成山了")
    out = await chat.send("zhang", "完成 1")
    assert any("处理说明" in t for t in chat.to(out, "zhang"))
    assert (await case(chat, 1)).status == CaseStatus.ASSIGNED
    out = await chat.send("zhang", "垃圾已清运")
    assert (await case(chat, 1)).resolution_note == "垃圾已清运"
    assert any("垃圾已清运" in t for t in chat.to(out, "小王"))


async def test_missing_location_is_asked_for_then_routed(chat: Chat) -> None:
    out = await chat.send("小李", "这里的垃圾桶满了好几天没人清")
    asked = chat.to(out, "小李")
    assert len(asked) == 1 and "#1" in asked[0] and "哪里" in asked[0]
    assert chat.to(out, "zhang") == []
    assert (await case(chat, 1)).status == CaseStatus.NEW

    out = await chat.send("小李", "在东门旁边")
    stored = await case(chat, 1)
    assert (stored.grid_code, stored.assignee_id, stored.location_text) == ("G1", "zhang", "东门")
    assert any("张伟" in t for t in chat.to(out, "小李"))
    assert any("垃圾桶满了" in t for t in chat.to(out, "zhang"))
    assert ("location_given", "1", "new") in await events(chat, 1)


async def test_location_still_unknown_goes_to_triage(chat: Chat) -> None:
    await chat.send("小李", "有个地方积水很多全是蚊子")
    out = await chat.send("小李", "就是那边")
    assert any("没能识别" in t for t in chat.to(out, "小李"))
    out = await chat.send("小李", "反正就在路边")
    stored = await case(chat, 1)
    assert stored.in_triage and stored.status == CaseStatus.NEW and stored.assignee_id is None
    assert any("待分拣" in t and "#1" in t for t in chat.to(out, "chen"))
    assert any("#1" in t for t in chat.to(out, "小李"))


async def test_dont_know_sends_to_triage_at_once(chat: Chat) -> None:
    await chat.send("小李", "楼道里有老鼠窜来窜去")
    out = await chat.send("小李", "不知道")
    assert (await case(chat, 1)).in_triage
    assert chat.to(out, "chen")


async def test_located_report_of_no_category_goes_to_the_grid_leader(chat: Chat) -> None:
    out = await chat.send("小王", "8号楼的路灯坏了好几天了晚上很黑")
    stored = await case(chat, 1)
    assert stored.category_code == "other" and not stored.in_triage
    assert (stored.grid_code, stored.assignee_id) == ("G2", "li")
    assert any("#1" in t for t in chat.to(out, "li")) and chat.to(out, "chen") == []


async def test_unlocated_report_of_no_category_goes_to_admins(chat: Chat) -> None:
    await chat.send("小王", "路灯坏了好几天了晚上很黑")
    out = await chat.send("小王", "不知道")
    stored = await case(chat, 1)
    assert stored.category_code == "other" and stored.in_triage and stored.grid_code is None
    assert any("待分拣" in t for t in chat.to(out, "chen"))


async def test_building_outside_every_grid_goes_to_triage(chat: Chat) -> None:
    await chat.send("小王", "88号楼后面有一大片积水")
    stored = await case(chat, 1)
    assert stored.in_triage and stored.grid_code is None and stored.location_text


async def test_grid_without_worker_for_category_goes_to_leader(chat: Chat) -> None:
    out = await chat.send("小王", "22号楼楼下垃圾乱堆没人管")
    stored = await case(chat, 1)
    assert (stored.grid_code, stored.assignee_id) == ("G4", "zhou")
    assert chat.to(out, "zhou") and any("网格长周杰" in t for t in chat.to(out, "小王"))


async def test_several_workers_share_by_fewest_open_cases(chat: Chat) -> None:
    await chat.send("a", "8号楼垃圾桶满了")
    await chat.send("b", "9号楼垃圾没人清")
    await chat.send("c", "10号楼门口垃圾堆")
    assignees = [(await case(chat, n)).assignee_id for n in (1, 2, 3)]
    assert assignees == ["zhao", "sun", "zhao"]


async def test_worker_of_another_grid_is_refused(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")
    out = await chat.send("wu", "接单 1")
    assert any("无权" in t for t in chat.to(out, "wu"))
    assert (await case(chat, 1)).status == CaseStatus.ASSIGNED
    assert chat.to(out, "小王") == []


async def test_resident_cannot_use_staff_commands(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")
    out = await chat.send("小赵", "接单 1")
    assert any("仅供社区工作人员" in t for t in chat.to(out, "小赵"))
    assert (await case(chat, 1)).status == CaseStatus.ASSIGNED


async def test_illegal_transition_is_refused_with_a_message(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")
    await chat.send("zhang", "完成 1 已清理")
    out = await chat.send("zhang", "接单 1")
    assert any("不能" in t for t in chat.to(out, "zhang"))
    assert (await case(chat, 1)).status == CaseStatus.RESOLVED


async def test_admin_triage_and_manual_assignment(chat: Chat) -> None:
    await chat.send("小王", "社区里的路灯坏了")
    await chat.send("小王", "不知道")
    out = await chat.send("chen", "待分拣")
    assert any("#1" in t for t in chat.to(out, "chen"))
    out = await chat.send("zhang", "分派 1 zhang")
    assert any("仅限" in t for t in chat.to(out, "zhang"))
    out = await chat.send("chen", "分派 1 zhao")
    stored = await case(chat, 1)
    assert stored.assignee_id == "zhao" and not stored.in_triage
    assert chat.to(out, "zhao") and any("赵磊" in t for t in chat.to(out, "小王"))


async def test_resident_lists_and_queries_only_their_own_cases(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")
    await chat.send("小李", "13号楼有蟑螂")
    out = await chat.send("小王", "我的")
    listing = chat.to(out, "小王")[0]
    assert "#1" in listing and "#2" not in listing
    out = await chat.send("小王", "查询 1")
    assert "3号楼" in chat.to(out, "小王")[0]
    out = await chat.send("小王", "查询 2")
    assert "没有找到" in chat.to(out, "小王")[0]


async def test_staff_case_list(chat: Chat) -> None:
    await chat.send("小王", "3号楼有小广告")
    await chat.send("小王", "4号楼垃圾满了")
    await chat.send("小王", "5号楼积水")
    out = await chat.send("zhang", "任务")
    text = chat.to(out, "zhang")[0]
    assert "#1" in text and "#2" in text and "#3" not in text  # #3 is wang's


async def test_not_a_report_gets_the_fitting_reply_and_no_case(chat: Chat) -> None:
    replies = {}
    for message in ("你好", "垃圾已经清理了，谢谢", "乙肝疫苗第二针什么时候打", "总收到垃圾短信怎么办"):
        out = chat.to(await chat.send("小王", message), "小王")
        assert len(out) == 1
        replies[message] = out[0]
    assert "社区通" in replies["你好"]
    assert "不客气" in replies["垃圾已经清理了，谢谢"]
    assert "卫生服务站" in replies["乙肝疫苗第二针什么时候打"]
    assert "主要受理" in replies["总收到垃圾短信怎么办"]
    assert await count(chat, Case) == 0


async def test_bad_input_gets_a_chinese_reply_and_creates_nothing(chat: Chat) -> None:
    bad = [
        "",
        "   \n\t ",
        "垃圾" * 5000,
        "\x00\x01\ud800\x7f\x9f" + "\ufffd" * 20,
        "😀😀👍🎉",
        "Ã¤Ã¶Ã¼\x8f\x90\x81Â§Â©",
    ]
    for message in bad:
        out = await chat.send("小王", message)
        replies = chat.to(out, "小王")
        assert len(replies) == 1 and any("\u4e00" <= ch <= "\u9fff" for ch in replies[0]), message[:20]
    assert await count(chat, Case) == 0
    assert await count(chat, InboundMessage) == len(bad)


async def test_redelivered_message_is_processed_once(chat: Chat) -> None:
    message = Inbound(channel="console", sender="小王", text="3号楼有小广告", message_id="m-1")
    first = await chat.conversation.handle(message)
    second = await chat.conversation.handle(message)
    assert not first.duplicate and second.duplicate and second.outbox_ids == []
    assert await count(chat, Case) == 1 and await count(chat, InboundMessage) == 1
    assert len(chat.to(await chat.flush(), "小王")) == 1


async def test_crash_before_sending_loses_no_notification(chat: Chat) -> None:
    await chat.conversation.handle(Inbound(channel="console", sender="小王", text="3号楼有小广告"))
    # The process dies here: nothing was sent, but the case and its messages are committed together.
    async with chat.services.sessions() as session:
        pending = (await session.scalars(select(OutboxMessage))).all()
    assert {m.recipient for m in pending} == {"小王", "zhang"}
    assert all(m.status == OutboxStatus.PENDING for m in pending)
    restarted = Chat(chat.services, conversation(chat.services), type(chat.sender)("console"), chat.clock)
    delivered = await restarted.flush()
    assert {m.recipient for m in delivered} == {"小王", "zhang"}


async def test_a_failing_handler_rolls_back_and_apologises(chat: Chat, monkeypatch: object) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    from handlers.cases import resident_chat

    monkeypatch.setattr(resident_chat, "report", broken)  # type: ignore[attr-defined]
    out = await chat.send("小王", "3号楼有小广告")
    assert "出了点问题" in chat.to(out, "小王")[0]
    async with chat.services.sessions() as session:
        rows = (await session.scalars(select(InboundMessage))).all()
    assert [(r.status, r.text) for r in rows] == [("failed", "3号楼有小广告")]
    assert await count(chat, Case) == 0


async def test_writing_again_clears_the_unreachable_mark(chat: Chat) -> None:
    from storage.models import ResidentIdentity, StaffIdentity, utcnow

    await chat.send("小王", "你好")
    async with chat.services.sessions.begin() as session:
        (await session.get_one(ResidentIdentity, ("console", "小王"))).unreachable_since = utcnow()
        (await session.get_one(StaffIdentity, ("console", "zhang"))).unreachable_since = utcnow()
    await chat.send("小王", "我的")
    await chat.send("zhang", "任务")
    async with chat.services.sessions() as session:
        assert (await session.get_one(ResidentIdentity, ("console", "小王"))).unreachable_since is None
        assert (await session.get_one(StaffIdentity, ("console", "zhang"))).unreachable_since is None


async def test_a_logged_database_error_hides_the_residents_text(chat: Chat) -> None:
    from sqlalchemy.exc import IntegrityError

    from storage.models import InboundMessage as Row

    async with chat.services.sessions() as session:
        session.add(Row(channel="console", external_id="dup", sender="a", text="电话13800138000"))
        await session.commit()
        session.add(Row(channel="console", external_id="dup", sender="a", text="电话13800138000"))
        try:
            await session.commit()
        except IntegrityError as exc:
            assert "13800138000" not in str(exc)
        else:
            raise AssertionError("the duplicate must be refused")

"""The one command registry: a clash of words between two commands is refused where they are declared,
unless one of them says it goes first; the Telegram menu and the staff help come from it."""

from __future__ import annotations

import re

import pytest

import handlers.feature_set  # noqa: F401  (registers the features' commands)
from handlers.kernel.commands import (
    COMMANDS,
    RESIDENT,
    CommandClash,
    CommandRegistry,
    CommandSpec,
    parse_command,
)
from messages import render


def _spec(name: str, words: str, *examples: str, before: tuple[str, ...] = ()) -> CommandSpec:
    return CommandSpec(
        name,
        re.compile(rf"^(?:{words})(?:\s*\d+)?$"),
        examples,
        frozenset({RESIDENT}),
        before=frozenset(before),
    )


def test_two_commands_taking_the_same_words_are_refused_at_registration() -> None:
    registry = CommandRegistry()
    registry.add(_spec("a.follow", "关注", "关注 12"))
    with pytest.raises(CommandClash, match="关注 12"):
        registry.add(_spec("b.join", "关注|加入", "加入 12345678", "关注 12345678"))


def test_a_declared_precedence_resolves_the_clash_and_orders_the_commands() -> None:
    registry = CommandRegistry()
    registry.add(_spec("a.follow", "关注", "关注 12"))
    registry.add(_spec("a.join", "关注|加入", "关注 12345678", before=("a.follow",)))
    assert [s.name for s in registry.specs] == ["a.join", "a.follow"]
    spec, _ = registry.first_match("关注 12345678", registry.specs)
    assert spec is not None and spec.name == "a.join"


def test_a_name_twice_or_an_example_its_own_pattern_refuses_is_an_error() -> None:
    registry = CommandRegistry()
    registry.add(_spec("a.x", "甲", "甲"))
    with pytest.raises(CommandClash, match="twice"):
        registry.add(_spec("a.x", "乙", "乙"))
    with pytest.raises(CommandClash, match="does not match"):
        registry.add(_spec("a.y", "丙", "丁"))


def test_the_project_registry_has_every_feature_and_the_join_code_goes_before_follow() -> None:
    names = {s.name for s in COMMANDS.specs}
    assert {"core.accept", "bc.draft", "rem.join", "rem.followup"} <= names
    assert "core.follow" in COMMANDS.get("rem.join").before
    # The words both take: the reminders feature (which sees messages first) takes the code.
    assert COMMANDS.get("core.follow").match("关注 12345678") is not None
    assert COMMANDS.get("rem.join").match("关注 12345678") is not None
    command = parse_command("关注 12")
    assert command is not None and command.kind.value == "follow"
    assert COMMANDS.get("rem.join").match("关注 12") is None


def test_every_core_command_with_words_has_a_handler_for_someone() -> None:
    import handlers.cases.resident_chat
    import handlers.cases.staff_chat  # noqa: F401

    without = [s.name for s in COMMANDS.core() if s.handler is None and s.resident_handler is None]
    # 不知道 is an answer to "where is it?", read by the resident's dialog, not a command handler's.
    assert without == ["core.dontknow"]


def test_the_telegram_menu_and_the_admin_help_come_from_the_registry() -> None:
    assert COMMANDS.menu() == ["start", "help", "my", "cases", "triage", "stats", "cancel"]
    admin = COMMANDS.help_text("admin", "staff.help_header", name="王", role="社区工作人员")
    lines = admin.splitlines()
    assert lines[0] == render("staff.help_header", name="王", role="社区工作人员")
    assert render("help.bc.draft") in lines and render("help.staff.manage") in lines
    worker = COMMANDS.help_text("worker", "staff.help_header", name="李", role="网格员")
    assert render("help.bc.draft") not in worker and render("help.staff.assign") not in worker

"""Scenes: signed building and place codes, verified back to (community, kind, name)."""

from __future__ import annotations

import re

import pytest

from handlers.community.model import Community, parse_community
from handlers.community.scenes import (
    MAX_SCENE,
    Kind,
    Refusal,
    Scanned,
    find_target,
    sign,
    targets,
    verify,
)

SECRET = b"k" * 32
CHARSET = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _community(buildings: list[str], places: list[str]) -> Community:
    return parse_community(
        {
            "community": {"name": "和平里社区"},
            "grids": [{"code": "G1", "name": "一网格", "buildings": buildings, "places": places}],
            "staff": [],
        }
    )


def test_every_target_of_the_sample_signs_and_verifies_back(sample: Community) -> None:
    found = targets(sample)
    assert {t.label for t in found} >= {"3号楼", "A座", "26号楼", "东门", "农贸市场"}
    scenes = set()
    for target in found:
        scene = sign(SECRET, "HPL", target)
        assert CHARSET.fullmatch(scene) and len(scene) <= MAX_SCENE
        assert verify(SECRET, scene, sample, "HPL") == Scanned("HPL", target)
        scenes.add(scene)
    assert len(scenes) == len(found)  # one code per building or place


def test_labels_read_back_to_their_building_for_phases_zones_and_units() -> None:
    community = _community(["1-2", "A座", "二期3号楼", "紫荆苑8号楼", "15栋1单元"], ["东门"])
    for target in targets(community):
        located = community.locator.locate(target.label)
        assert located is not None
        assert (located.building if target.kind == Kind.BUILDING else located.place) == target.key


def test_the_longest_community_code_still_fits_in_64_characters(sample: Community) -> None:
    target = targets(sample)[0]
    scene = sign(SECRET, "A" * 16, target)
    assert len(scene) <= 64 and CHARSET.fullmatch(scene)
    with pytest.raises(ValueError):
        sign(SECRET, "A" * 17, target)
    with pytest.raises(ValueError):
        sign(SECRET, "和平", target)


def test_another_secret_or_any_changed_character_is_refused(sample: Community) -> None:
    scene = sign(SECRET, "HPL", find_target(sample, "3"))  # type: ignore[arg-type]
    assert verify(b"x" * 32, scene, sample, "HPL") == Refusal.FORGED
    for i, ch in enumerate(scene):
        if ch == "_":
            continue
        other = "B" if ch != "B" else "C"
        tampered = scene[:i] + other + scene[i + 1 :]
        assert isinstance(verify(SECRET, tampered, sample, "HPL"), Refusal), i


def test_a_forged_scene_for_another_building_is_refused(sample: Community) -> None:
    three = sign(SECRET, "HPL", find_target(sample, "3"))  # type: ignore[arg-type]
    five = sign(SECRET, "HPL", find_target(sample, "5"))  # type: ignore[arg-type]
    spliced = five[:-16] + three[-16:]  # 5号楼's name with 3号楼's signature
    assert verify(SECRET, spliced, sample, "HPL") == Refusal.FORGED


@pytest.mark.parametrize(
    "scene",
    [
        "",
        "abc",
        "x" * 65,
        "HPL_b12345678_" + "A" * 15,
        "HPL b12345678_" + "A" * 16,
        "和平_b12345678_" + "A" * 16,
        "HPL_x12345678_" + "A" * 16,
        "_b12345678_" + "A" * 16,
        "HPL-b12345678-" + "A" * 16,
        "a\x00b_c",
    ],
)
def test_malformed_scenes_are_refused_before_any_hashing(sample: Community, scene: str) -> None:
    assert verify(SECRET, scene, sample, "HPL") == Refusal.MALFORMED


def test_another_communitys_code_is_refused(sample: Community) -> None:
    scene = sign(SECRET, "JXY", find_target(sample, "3"))  # type: ignore[arg-type]
    assert verify(SECRET, scene, sample, "HPL") == Refusal.OTHER_COMMUNITY


def test_a_code_survives_the_file_being_edited_and_goes_stale_when_its_building_leaves() -> None:
    before = _community(["1-6", "A座"], ["东门", "农贸市场"])
    scene_5 = sign(SECRET, "HPL", find_target(before, "5"))  # type: ignore[arg-type]
    scene_gate = sign(SECRET, "HPL", find_target(before, place="东门"))  # type: ignore[arg-type]
    # Reordered, a building and a place added in front, another grid: positions all changed.
    after = parse_community(
        {
            "community": {"name": "和平里社区"},
            "grids": [
                {"code": "G0", "name": "零网格", "buildings": ["20-30"], "places": ["西门"]},
                {"code": "G1", "name": "一网格", "buildings": ["B座", "1-5"], "places": ["北门", "东门"]},
            ],
            "staff": [],
        }
    )
    found = verify(SECRET, scene_5, after, "HPL")
    assert isinstance(found, Scanned) and found.target.label == "5号楼" and found.target.grid == "G1"
    gate = verify(SECRET, scene_gate, after, "HPL")
    assert isinstance(gate, Scanned) and gate.target.kind == Kind.PLACE and gate.target.key == "东门"
    shrunk = _community(["1-4"], ["农贸市场"])
    assert verify(SECRET, scene_5, shrunk, "HPL") == Refusal.STALE
    assert verify(SECRET, scene_gate, shrunk, "HPL") == Refusal.STALE


def test_operators_name_buildings_as_they_say_them(sample: Community) -> None:
    assert find_target(sample, "3").label == "3号楼"  # type: ignore[union-attr]
    assert find_target(sample, "3号楼").key == "3"  # type: ignore[union-attr]
    assert find_target(sample, "A座").key == "A"  # type: ignore[union-attr]
    assert find_target(sample, place="东门").grid == "G1"  # type: ignore[union-attr]
    assert find_target(sample, "99") is None
    assert find_target(sample, place="不存在") is None

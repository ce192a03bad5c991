"""handlers.community.classify: which report category a resident's message names, or that it is no report.

The sentences here are written for these tests (not taken from bench/data/labelled_messages.tsv).
Each group covers one trap from the classifier's issue: colloquial words, traditional characters,
the misspelling 拉圾, run-on voice input, two problems in one message, greetings, thanks, information
questions, spam (垃圾短信), problems of no category ("other"), exclusions, community overrides and
bad input.
"""

from __future__ import annotations

from typing import Any

import pytest

from handlers.community.classify import (
    OTHER,
    CategoryConfigError,
    Classification,
    Classifier,
    default_classifier,
    load_default_categories,
    merge_categories,
)

DEFAULT_CODES = ["poster", "garbage", "mosquito", "pests", "sewage"]
VALID_CATEGORIES = {None, OTHER, *DEFAULT_CODES}


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return default_classifier()


def classify(clf: Classifier, text: str) -> Classification:
    result = clf.classify(text)
    assert result.text == text  # the original text is kept, not the folded one
    return result


def custom(overrides: list[dict[str, Any]]) -> Classifier:
    return Classifier(merge_categories(load_default_categories(), overrides))


# --- reports of each category, with the traps residents really type ----------------------------------


@pytest.mark.parametrize(
    ("text", "category", "word"),
    [
        ("楼梯口牛皮癣贴得到处都是", "poster", "牛皮癣"),
        ("小区里到处都是牛皮癣", "poster", "牛皮癣"),
        ("花盆底下的托盘里全是孑孓", "mosquito", "孑孓"),
        ("楼下那滩水里全是孑孓", "mosquito", "孑孓"),
        ("十一栋楼下绿化带里好多蚊子 水坑里全是跟头虫", "mosquito", "跟头虫"),
        ("物业能不能在楼道放点药 最近小强太多了", "pests", "小强"),
        ("车库里有耗子", "pests", "耗子"),
    ],
)
def test_colloquial_words_name_their_category(clf: Classifier, text: str, category: str, word: str) -> None:
    result = classify(clf, text)
    assert result.category == category
    assert word in result.keywords


@pytest.mark.parametrize(
    ("text", "category", "word"),
    [
        ("樓道裡的廣告貼得亂七八糟", "poster", "广告"),
        ("廣告貼滿了電梯", "poster", "广告"),
        ("9号樓後面積水好多蚊子", "mosquito", "积水"),
        ("十二棟樓下的積水一直沒人處理", "mosquito", "积水"),
        ("樓道裡的垃圾好幾天沒人收", "garbage", "垃圾"),
    ],
)
def test_traditional_characters_are_folded(clf: Classifier, text: str, category: str, word: str) -> None:
    result = classify(clf, text)
    assert result.category == category
    assert word in result.keywords  # keywords are reported in simplified form


@pytest.mark.parametrize(
    "text",
    ["拉圾没人收", "楼下拉圾桶满了好几天没人倒", "東門的拉圾站臭死了", "拉圾桶旁边的拉圾都堆到路上了"],
)
def test_misspelled_laji_is_garbage(clf: Classifier, text: str) -> None:
    result = classify(clf, text)
    assert result.category == "garbage"
    assert any("垃圾" in k for k in result.keywords)  # the misspelling is folded to the canonical word


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("二单元那个下水道口老是往外冒黑水臭死了能不能派人来看看", "sewage"),
        ("7号楼电梯里贴满了小广告能不能找人撕一下", "poster"),
        ("三号楼后面老鼠乱窜晚上都不敢下楼", "pests"),
        ("农贸市场后门的下水道井盖冒污水", "sewage"),
        ("B座楼顶水箱旁边积水好多孑孓", "mosquito"),
    ],
)
def test_run_on_messages_without_punctuation(clf: Classifier, text: str, category: str) -> None:
    assert classify(clf, text).category == category


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("为什么5号楼的垃圾一直没人清", "garbage"),
        ("为什么楼下的小广告撕了又贴", "poster"),
        ("A座门口的小广告又贴上了🙄", "poster"),
    ],
)
def test_complaints_phrased_as_questions_are_reports(clf: Classifier, text: str, category: str) -> None:
    assert classify(clf, text).category == category


# --- two problems in one message ---------------------------------------------------------------------


def test_two_problems_keep_both_with_primary_first(clf: Classifier) -> None:
    result = classify(clf, "下水道堵了好几天 污水往外冒 墙上还被贴了张小广告")
    assert result.category == "sewage"
    assert result.categories == ("sewage", "poster")
    # keywords are listed primary category first
    assert result.keywords.index("下水道") < result.keywords.index("小广告")


def test_two_problems_garbage_then_sewage(clf: Classifier) -> None:
    result = classify(clf, "门口垃圾没人收 下水道也堵了")
    assert result.categories == ("garbage", "sewage")
    assert {"垃圾", "下水道"} <= set(result.keywords)


def test_issue_example_keeps_both_problems(clf: Classifier) -> None:
    result = classify(clf, "下水道堵了 门口垃圾也没人收")
    assert result.category == result.categories[0]
    assert sorted(result.categories) == ["garbage", "sewage"]


def test_punctuation_does_not_change_the_result(clf: Classifier) -> None:
    spaced = classify(clf, "下水道堵了 门口垃圾也没人收")
    comma = classify(clf, "下水道堵了，门口垃圾也没人收")
    bare = classify(clf, "下水道堵了门口垃圾也没人收")
    assert spaced.categories == comma.categories == bare.categories


def test_issue_example_primary_is_the_first_named_problem(clf: Classifier) -> None:
    assert classify(clf, "下水道堵了 门口垃圾也没人收").categories == ("sewage", "garbage")


# --- not a report ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["早上好啊", "哈喽 大家好", "您好，在吗", "感谢感谢"])
def test_greetings_and_chit_chat_are_not_reports(clf: Classifier, text: str) -> None:
    result = classify(clf, text)
    assert result.category is None
    assert not result.is_report
    assert result.categories == ()
    assert result.keywords == ()


@pytest.mark.parametrize(
    "text",
    [
        "门口的垃圾已经清理了，谢谢",
        "小广告已经撕掉了 谢谢你们",
        "谢谢你们 积水已经排掉了",
        "井盖已经修好了 谢谢",
        "下水道已经通了 辛苦师傅",
    ],
)
def test_thanks_for_a_fixed_problem_is_not_a_report(clf: Classifier, text: str) -> None:
    result = classify(clf, text)
    assert result.category is None
    assert result.categories == ()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("谢谢 但是3号楼又有小广告了", "poster"),
        ("谢谢，不过垃圾还是没人收", "garbage"),
        ("谢谢 可是下水道还是堵的", "sewage"),
    ],
)
def test_thanks_with_a_persisting_problem_is_a_report(clf: Classifier, text: str, category: str) -> None:
    assert classify(clf, text).category == category


@pytest.mark.parametrize(
    "text",
    [
        "请问新冠疫苗去哪里打",
        "打流感疫苗要预约吗",
        "请问打疫苗需要带什么",
        "卫生站周日开门吗",
        "社区医院几点下班",
        "社区卫生服务中心周末上班吗",
        "垃圾几点收",
        "请问大件垃圾怎么处理",
    ],
)
def test_information_questions_are_not_reports(clf: Classifier, text: str) -> None:
    assert classify(clf, text).category is None


@pytest.mark.parametrize("text", ["最近垃圾短信特别多", "总是接到垃圾电话", "又收到垃圾短信了"])
def test_spam_messages_and_calls_are_not_garbage(clf: Classifier, text: str) -> None:
    result = classify(clf, text)
    assert result.category is None
    assert "garbage" not in result.categories


@pytest.mark.parametrize("text", ["厨余垃圾和其他垃圾怎么分啊", "牛奶盒属于什么垃圾"])
def test_garbage_sorting_questions_are_not_reports(clf: Classifier, text: str) -> None:
    assert classify(clf, text).category is None


# --- problems that fit no category -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "3号楼的路灯坏了",
        "十二栋门口有人乱停车 堵在单元门口",
        "东门那边摆摊的把路都占了",
        "遛狗的不牵绳 草坪上全是狗屎",
        "楼上卫生间漏水 我家天花板都湿了",
        "楼上天天半夜吵",
    ],
)
def test_other_problems_are_reports_of_no_category(clf: Classifier, text: str) -> None:
    result = classify(clf, text)
    assert result.category == OTHER
    assert result.is_report
    assert result.categories == ()


def test_hardship_word_is_not_thanks(clf: Classifier) -> None:
    assert classify(clf, "电梯坏了 老人爬楼太辛苦").category == OTHER


def test_cars_blocking_fire_lane_is_other(clf: Classifier) -> None:
    assert classify(clf, "消防通道停满了车").category == OTHER


# --- exclusions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["疏通下水道的小广告", "电线杆上全是疏通下水道的广告"])
def test_sewer_cleaning_adverts_are_posters_only(clf: Classifier, text: str) -> None:
    result = classify(clf, text)
    assert result.categories == ("poster",)
    assert "下水道" not in result.keywords


def test_exclusion_is_local_to_its_match(clf: Classifier) -> None:
    result = classify(clf, "单元门上贴满了疏通下水道的小广告 楼下下水道也堵了")
    assert result.category == "poster"
    assert "sewage" in result.categories


# --- result fields ---------------------------------------------------------------------------------------


REPORTS_AND_NOT = [
    "东门井盖往外冒臭水",
    "老鼠",
    "下水道堵了 门口垃圾也没人收",
    "路灯坏了",
    "早上好啊",
    "垃圾几点收",
    "谢谢 但是3号楼又有小广告了",
    "门口的垃圾已经清理了，谢谢",
    "",
    "x",
]


@pytest.mark.parametrize("text", REPORTS_AND_NOT)
def test_confidence_is_between_zero_and_one(clf: Classifier, text: str) -> None:
    assert 0.0 <= classify(clf, text).confidence <= 1.0


@pytest.mark.parametrize("text", REPORTS_AND_NOT)
def test_result_fields_are_consistent(clf: Classifier, text: str) -> None:
    result = classify(clf, text)
    assert result.category in VALID_CATEGORIES
    assert result.is_report == (result.category is not None)
    if result.categories:
        assert result.category == result.categories[0]
        assert len(set(result.categories)) == len(result.categories)
    if result.keywords:  # a word found names a problem
        assert result.categories
    assert 0.0 <= result.confidence <= 1.0
    if result.ask:  # the resident is offered the likely categories, the answer first
        assert result.candidates[0] == result.category


def test_clear_report_is_more_confident_than_a_vague_one(clf: Classifier) -> None:
    strong = classify(clf, "东门井盖往外冒臭水")
    vague = classify(clf, "楼下那个地方一直不太对劲")
    assert strong.category == "sewage"
    assert not strong.ask
    assert strong.confidence > vague.confidence


def test_keywords_hold_the_words_found(clf: Classifier) -> None:
    result = classify(clf, "三号楼后面老鼠乱窜晚上都不敢下楼")
    assert {"老鼠", "乱窜"} <= set(result.keywords)
    assert all(word in "三号楼后面老鼠乱窜晚上都不敢下楼" for word in result.keywords)


def test_classification_is_deterministic(clf: Classifier) -> None:
    text = "十一栋楼下绿化带里好多蚊子 水坑里全是跟头虫"
    assert clf.classify(text) == clf.classify(text)


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\n\t", "\u3000", "\x00\xff\ufffd", "\ud800", "😡😡", "🐀🐀🐀", "a" * 10_000, "好" * 10_000],
    ids=[
        "empty",
        "spaces",
        "newline-tab",
        "ideographic-space",
        "binary",
        "surrogate",
        "emoji",
        "rat-emoji",
        "10k-ascii",
        "10k-hanzi",
    ],
)
def test_junk_input_is_no_report(clf: Classifier, text: str) -> None:
    result = classify(clf, text)
    assert result.category is None
    assert 0.0 <= result.confidence <= 1.0


def test_very_long_report_gives_a_valid_result(clf: Classifier) -> None:
    text = ("楼下垃圾没人收 " * 2000)[:10_000]
    result = classify(clf, text)
    assert result.category == "garbage"
    assert 0.0 <= result.confidence <= 1.0


# --- default categories ----------------------------------------------------------------------------------


def test_default_categories() -> None:
    categories = load_default_categories()
    assert [c.code for c in categories] == DEFAULT_CODES
    assert all(c.enabled and c.keywords and c.name for c in categories)
    assert all(c.time_limit_hours > 0 for c in categories)
    garbage = next(c for c in categories if c.code == "garbage")
    assert {"垃圾", "拉圾"} <= set(garbage.keywords)


def test_default_classifier_is_shared() -> None:
    assert default_classifier() is default_classifier()
    assert [c.code for c in default_classifier().categories] == DEFAULT_CODES


# --- community overrides ---------------------------------------------------------------------------------


def test_override_replaces_keywords_without_touching_defaults() -> None:
    merged = merge_categories(load_default_categories(), [{"code": "pests", "keywords": ["耗子"]}])
    pests = next(c for c in merged if c.code == "pests")
    assert pests.keywords == ("耗子",)
    assert pests.name == next(c for c in load_default_categories() if c.code == "pests").name
    assert "蟑螂" in next(c for c in load_default_categories() if c.code == "pests").keywords

    classifier = Classifier(merged)
    assert classifier.classify("车库里有耗子").category == "pests"
    assert classifier.classify("厨房好多蟑螂").category != "pests"
    assert default_classifier().classify("厨房好多蟑螂").category == "pests"


def test_override_of_one_field_keeps_the_others() -> None:
    merged = merge_categories(load_default_categories(), [{"code": "garbage", "time_limit_hours": 2}])
    garbage = next(c for c in merged if c.code == "garbage")
    default = next(c for c in load_default_categories() if c.code == "garbage")
    assert garbage.time_limit_hours == 2.0
    assert garbage.keywords == default.keywords
    assert [c.code for c in merged] == DEFAULT_CODES


def test_extra_keywords_extend_the_defaults() -> None:
    merged = merge_categories(load_default_categories(), [{"code": "pests", "extra_keywords": ["黄鼠狼"]}])
    pests = next(c for c in merged if c.code == "pests")
    assert "黄鼠狼" in pests.keywords
    assert "蟑螂" in pests.keywords
    classifier = Classifier(merged)
    assert classifier.classify("车棚里有黄鼠狼").category == "pests"
    assert classifier.classify("厨房好多蟑螂").category == "pests"


def test_extra_exclusions_extend_the_defaults() -> None:
    classifier = custom([{"code": "poster", "extra_exclusions": ["租房广告"]}])
    assert classifier.classify("门口电线杆上有租房广告").category != "poster"
    assert classifier.classify("疏通下水道的小广告").categories == ("poster",)  # default exclusion kept


def test_enabled_false_switches_a_category_off() -> None:
    merged = merge_categories(load_default_categories(), [{"code": "pests", "enabled": False}])
    assert next(c for c in merged if c.code == "pests").enabled is False
    classifier = Classifier(merged)
    assert "pests" not in [c.code for c in classifier.categories]
    result = classifier.classify("厨房好多蟑螂")
    assert result.category != "pests"
    assert "pests" not in result.categories
    assert classifier.classify("东门井盖往外冒臭水").category == "sewage"


def test_new_category_works_end_to_end() -> None:
    merged = merge_categories(
        load_default_categories(),
        [{"code": "dog_mess", "name": "狗粪", "keywords": ["狗屎", "狗粪"], "time_limit_hours": 24}],
    )
    assert [c.code for c in merged] == [*DEFAULT_CODES, "dog_mess"]
    dog = merged[-1]
    assert (dog.name, dog.keywords, dog.time_limit_hours) == ("狗粪", ("狗屎", "狗粪"), 24.0)

    result = Classifier(merged).classify("遛狗的不牵绳 草坪上全是狗屎")
    assert result.category == "dog_mess"
    assert "狗屎" in result.keywords
    assert default_classifier().classify("遛狗的不牵绳 草坪上全是狗屎").category == OTHER


def test_custom_keywords_do_not_leak_into_other_classifiers() -> None:
    # Each word set gets its own jieba dictionary: one community's words never re-cut another's text.
    text = "仓库垃圾堆得过不去"
    assert default_classifier().classify(text).category == "garbage"
    custom([{"code": "storeroom", "name": "仓库", "keywords": ["仓库垃圾"]}])
    assert default_classifier().classify(text).category == "garbage"


@pytest.mark.parametrize(
    ("overrides", "key", "reason"),
    [
        ([{"code": "garbage", "keywords": "垃圾"}], "categories[0].keywords", "not_a_list_of_words"),
        ([{"code": "garbage", "keywords": ["垃圾", ""]}], "categories[0].keywords", "not_a_list_of_words"),
        ([{"code": "garbage", "keywords": []}], "categories[0].keywords", "missing_keywords"),
        ([{"code": "dog_mess", "keywords": ["狗屎"]}], "categories[0].name", "missing_name"),
        ([{"code": "dog_mess", "name": "狗粪"}], "categories[0].keywords", "missing_keywords"),
        (
            [{"code": "garbage", "time_limit_hours": 1}, {"code": "dog_mess", "keywords": ["狗屎"]}],
            "categories[1].name",
            "missing_name",
        ),
        ([{"code": "poster", "exclusions": ["(未闭合"]}], "categories[0].exclusions[0]", "bad_pattern"),
        (
            [{"code": "dog_mess", "name": "狗粪", "keywords": ["狗屎"], "exclusions": ["狗屎运", "[坏"]}],
            "categories[0].exclusions[1]",
            "bad_pattern",
        ),
        ([{"code": "other", "name": "其他", "keywords": ["别的"]}], "categories[0].code", "reserved_code"),
        ([{"name": "狗粪", "keywords": ["狗屎"]}], "categories[0].code", "missing_code"),
        (["garbage"], "categories[0]", "not_a_mapping"),
        ([{"code": "garbage", "colour": "red"}], "categories[0].colour", "unknown_key"),
        (
            [{"code": "garbage", "time_limit_hours": 0}],
            "categories[0].time_limit_hours",
            "not_a_positive_number",
        ),
        (
            [{"code": "garbage", "extra_keywords": "垃圾堆"}],
            "categories[0].extra_keywords",
            "not_a_list_of_words",
        ),
    ],
)
def test_bad_overrides_name_the_bad_key(overrides: list[Any], key: str, reason: str) -> None:
    with pytest.raises(CategoryConfigError) as caught:
        merge_categories(load_default_categories(), overrides)
    assert caught.value.key == key
    assert caught.value.reason == reason
    assert key in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("好多蟑螂在厨房水槽下面爬", "pests"),  # starts with 好 but is no "OK"
        ("麻烦派人把5号楼后面的垃圾清理一下 谢谢", "garbage"),  # a request that ends with thanks
        ("7号楼门口的臭水沟到底谁管", "sewage"),  # a rhetorical question is a complaint
        ("求求你们把东门那堆垃圾清走吧🙏", "garbage"),
        ("楼下草丛里的积水 你们不来处理的吗 蚊子根本没法待", "mosquito"),
    ],
)
def test_requests_and_rhetorical_questions_are_reports(clf: Classifier, text: str, expected: str) -> None:
    assert classify(clf, text).category == expected


@pytest.mark.parametrize(
    "text",
    [
        "好的",
        "好的谢谢",
        "保洁师傅每天都把垃圾桶刷得很干净 表扬一下",
        "今天上午下水道修好了 太好了",
        "哪里可以领垃圾袋",
    ],
)
def test_replies_praise_and_questions_are_not_reports(clf: Classifier, text: str) -> None:
    assert classify(clf, text).category is None

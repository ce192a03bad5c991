"""What residents really write (issue #13): dialect, typing and voice-input errors, toneless pinyin,
English, problems described without their keyword, problems outside the five categories, keywords used
in another sense, contrast, immediate danger, and when the bot should ask. The sentences are written for
these tests; none is taken from bench/data (the corpus the model is trained on)."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import pytest

from handlers.community.classify import (
    OTHER,
    Classifier,
    default_classifier,
    load_default_categories,
    merge_categories,
)
from handlers.community.classify_corpus import corpus_files, corpus_hash, split_of, training_rows
from handlers.community.classify_model import MODEL_FILE, load_model
from handlers.community.model import load_community
from handlers.community.urgent import kind_info
from handlers.kernel.textnorm import fold

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return default_classifier()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("后楼梯嗰度啲垃圾堆到成座山咁高", "garbage"),  # Cantonese
        ("灶台边上曱甴一只接一只爬出来", "pests"),  # Cantonese 曱甴 = cockroach
        ("阿拉灶披间老虫天天半夜里跑来跑去", "pests"),  # Shanghainese 老虫 = rat
        ("车棚后头耗儿打了好多洞", "pests"),  # Sichuanese 耗儿 = rat
        ("门口的坑渠又塞咗，水都漫上来了", "sewage"),  # Cantonese 坑渠 = drain
        ("楼道整得贼埋汰，垃圾都没人收", "garbage"),  # Northeastern
    ],
)
def test_dialect_words_are_understood(clf: Classifier, text: str, category: str) -> None:
    assert clf.classify(text).category == category


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("西门口的拉圾堆了一个礼拜", "garbage"),  # 拉圾 for 垃圾
        ("二单元门口的下水到冒臭水", "sewage"),  # 下水到 for 下水道
        ("楼顶水箱边上文子多得不得了", "mosquito"),  # 文子 for 蚊子
        ("仓库里老书把纸箱都咬烂了", "pests"),  # 老书 for 老鼠
        ("楼梯扶手上全是小光告撕都撕不掉", "poster"),  # 小光告 for 小广告
    ],
)
def test_homophone_typos_of_keywords_match(clf: Classifier, text: str, category: str) -> None:
    assert clf.classify(text).category == category


def test_a_real_word_is_not_taken_for_a_typo(clf: Classifier) -> None:
    # 文字 sounds like 蚊子 but is a word of its own: the message is about writing, not mosquitoes.
    assert clf.classify("墙上的文字是什么意思").category != "mosquito"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("dong men la ji tong man le mei ren qing", "garbage"),
        ("wo jia xia shui dao du le", "sewage"),
        ("di xia shi wen zi hao duo", "mosquito"),
        ("lou ti jian tie man le xiao guang gao", "poster"),
        ("cang ku li lao shu hen duo", "pests"),
    ],
)
def test_toneless_pinyin_messages_are_read(clf: Classifier, text: str, category: str) -> None:
    assert clf.classify(text).category == category


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("The rubbish bins by the north gate are overflowing again", "garbage"),
        ("Blocked drain outside block 6, dirty water everywhere", "sewage"),
        ("Huge cockroaches in the stairwell every night", "pests"),
        ("Someone plastered flyers all over the lift lobby", "poster"),
        ("Mosquitoes breeding in the puddles next to the bike shed", "mosquito"),
        ("The street light at the south gate has been out for days", OTHER),
    ],
)
def test_english_messages_are_read(clf: Classifier, text: str, category: str) -> None:
    assert clf.classify(text).category == category


@pytest.mark.parametrize(
    "text",
    [
        "8号楼的路灯一到晚上就不亮",
        "电梯停在三楼两天了没人修",
        "楼下广场舞音响开到十点多太吵了",
        "有辆车一直停在消防通道上",
        "小区主路结了冰，走路直打滑",
        "楼上卫生间往下渗水",
        "楼下那棵树的树枝伸到我家窗户了",
        "单元门的门禁坏了",
        "The path behind building 4 is covered in ice",
    ],
)
def test_problems_outside_the_five_categories_are_never_turned_away(clf: Classifier, text: str) -> None:
    result = clf.classify(text)
    assert result.category == OTHER, result
    assert result.is_report


@pytest.mark.parametrize(
    "text",
    [
        "你这个机器人真垃圾",
        "这破客服也太垃圾了",
        "我电脑C盘里垃圾文件太多了",
        "被蚊子咬了起包擦什么药",
        "谢谢，下水道现在已经不堵了",
        "Thank you, the flyers are all gone now",
    ],
)
def test_keywords_in_another_sense_are_not_reports(clf: Classifier, text: str) -> None:
    assert clf.classify(text).category is None


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("不是垃圾的问题，是垃圾房那边老鼠成群", "pests"),
        ("我说的不是小广告，是楼下下水道堵了", "sewage"),
        ("不是蚊子，是路灯坏了", OTHER),
    ],
)
def test_contrast_names_the_real_problem(clf: Classifier, text: str, category: str) -> None:
    assert clf.classify(text).category == category


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("3单元二楼楼道里一股煤气味，好冲", "gas"),
        ("樓道裡有很重的煤氣味", "gas"),
        ("lou dao li you mei qi wei", "gas"),
        ("I smell gas in the hallway of block 2", "gas"),
        ("楼道里好浓的每气味", "gas"),  # voice input: 每气 for 煤气
        ("对面那家厨房着火了，窗户往外冒黑烟", "fire"),
        ("车棚的电线断了掉在地上冒火花", "electric"),
        ("电梯卡在七楼和八楼中间，里面关着两个人", "lift"),
        ("Two kids are trapped in the elevator of building 9", "lift"),
        ("一个老爷爷在花园里摔倒了爬不起来", "fall"),
        ("隔壁阿婆跌倒咗起唔到身", "fall"),
        ("围墙裂了大口子往外倒，下面是人行道", "collapse"),
        ("井盖被偷了，路中间一个大洞", "water"),
    ],
)
def test_immediate_danger_is_flagged_with_its_kind(clf: Classifier, text: str, kind: str) -> None:
    result = clf.classify(text)
    assert result.urgent == kind
    assert result.is_report  # danger is never turned away
    info = kind_info(kind)
    assert info is not None and info.number in {"110", "119", "120"} and info.label


@pytest.mark.parametrize(
    "text",
    [
        "消防安全知识讲座几点开始",
        "万一着火了怎么逃生",
        "今晚吃火锅",
        "楼下垃圾桶满了",
        "昨天在楼梯上摔了一跤，现在好了",
    ],
)
def test_no_danger_no_alarm(clf: Classifier, text: str) -> None:
    assert clf.classify(text).urgent is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("电梯停在半路，门打不开，里面有两个人", "lift"),
        ("暴雨灌进了地下室，配电房全泡在水里", "electric"),
        ("有个快递小哥被车撞倒在门口，躺着不动", "fall"),
        ("门卫室旁边一个大爷突然倒下了", "fall"),
        ("一个小孩爬到阳台栏杆外面去了", "fall"),
        ("小区门口的招牌被风吹得快掉了", "collapse"),
        ("有人从高楼往下扔砖头", "collapse"),
        ("上次煤气味修好了，今天又闻到很浓的煤气味", "gas"),
        ("water is pouring into the electrical room", "electric"),
        ("灶上的油锅着了，火蹿到了吊柜上", "fire"),
        ("楼下铁门摸着有电，手都麻了", "electric"),
        ("电梯突然不动了，我妈和孩子在里面", "lift"),
        ("阳台的空调支架断了，外机悬在半空", "collapse"),
    ],
)
def test_dangers_told_without_the_usual_words_are_flagged(clf: Classifier, text: str, kind: str) -> None:
    assert clf.classify(text).urgent == kind


@pytest.mark.parametrize(
    "text",
    [
        "上个月楼道的煤气味，后来燃气公司来修好了",  # fixed
        "去年我们楼下着过一次火",  # past
        "前天电梯困人那次后来物业处理好了",
        "老人摔倒了要不要马上扶起来？",  # asked about in general
        "燃气报警器在哪里买",
        "燃气灶打不着火是什么原因",
        "高空抛物怎么处罚？",
        "宿舍楼道好多蟑螂 救命",  # an exclamation, not a rescue
        "电梯里有人扔了一袋剩饭，汤流了一地",  # someone in the lift is not someone trapped
        "路口那个坑，骑车的已经摔了好几个",  # a hazard to report, not an emergency
        "The gas smell from yesterday is gone now, thanks",
        "天然气管道改造下个月开始吗",
        "楼下的树枝枯了，怕刮风掉下来",  # a fear, worth a report, not an alarm
    ],
)
def test_dangers_fixed_past_or_asked_about_raise_no_alarm(clf: Classifier, text: str) -> None:
    assert clf.classify(text).urgent is None


@pytest.mark.parametrize(
    "text",
    [
        "这个系统跟垃圾桶似的，啥也查不到",  # a comparison
        "你们公众号推的广告比文章还多",  # the channel itself
        "我儿子叫小强，他今天过生日",  # a name
        "社区下周三搞灭鼠宣传活动，大家来参加",  # a campaign notice
        "家里自己灭鼠用什么药好",  # a how-to question
        "去年楼下着过一次火，现在想起来还害怕",  # a danger told as past
        "社区组织清理小广告的志愿活动，我报个名",  # a campaign, joined
        "苍蝇拍哪里有卖的",  # a product, asked about
        "下水道的事物业说明天统一处理，我知道了",  # an answer acknowledged
    ],
)
def test_more_keywords_in_another_sense_are_not_reports(clf: Classifier, text: str) -> None:
    assert clf.classify(text).category is None


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Not rats this time - flies all over the bins", "pests"),  # English contrast with a dash
        ("bu shi la ji, shi xia shui dao du le", "sewage"),  # contrast typed in pinyin
    ],
)
def test_contrast_in_english_and_pinyin(clf: Classifier, text: str, category: str) -> None:
    assert clf.classify(text).category == category


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("empty beer cans and food wrappers all over the stairs", "garbage"),
        ("the grate by the gate is bubbling up brown water", "sewage"),
        ("little cards for cleaning services wedged in every door", "poster"),
        ("old tyres behind the bike shed full of green water", "mosquito"),
    ],
)
def test_english_problems_told_without_their_keyword(clf: Classifier, text: str, category: str) -> None:
    assert clf.classify(text).category == category


def test_new_keywords_do_not_rewrite_everyday_words(clf: Classifier) -> None:
    # 住了/不敢 sound like 蛀了/不干: such homophone-prone words must not be keywords
    assert clf.classify("电梯门夹住了一个老人的腿").urgent == "lift"
    assert clf.classify("楼道灯坏了，晚上都不敢下楼").category == OTHER


def test_unsure_answers_ask_with_candidates_best_first(clf: Classifier) -> None:
    vague = clf.classify("楼下那个地方一直不太对劲")
    assert vague.is_report and vague.ask
    assert vague.candidates and vague.candidates[0] == vague.category
    sure = clf.classify("3号楼楼道里贴满了开锁小广告")
    assert sure.category == "poster" and not sure.ask and sure.confidence >= 0.9
    assert sure.candidates[0] == "poster"


def test_confidence_is_a_probability(clf: Classifier) -> None:
    for text in ("下水道堵了", "你好", "路灯坏了", "楼下那个地方一直不太对劲", "dian ti huai le"):
        assert 0.0 <= clf.classify(text).confidence <= 1.0


def test_community_words_extend_the_lexicons() -> None:
    # A community adds a category with an English keyword and extends pests with a local word.
    classifier = Classifier(
        merge_categories(
            load_default_categories(),
            [
                {"code": "noise", "name": "噪音扰民", "keywords": ["噪音", "扰民", "noise"]},
                {"code": "pests", "extra_keywords": ["草爬子"]},
            ],
        )
    )
    assert classifier.classify("So much noise from the karaoke bar at night").category == "noise"
    assert classifier.classify("草丛里好多草爬子").category == "pests"


def test_folding_keeps_one_character_for_one() -> None:
    text = "東門樓道裡貼滿了廣告，還有辦證電話；什麼時候處理？３號樓Ａ座"
    folded = fold(text)
    assert len(folded) == len(text)
    assert folded == "东门楼道里贴满了广告,还有办证电话;什么时候处理?3号楼A座"


def test_location_is_found_in_traditional_text() -> None:
    # The location parser folds with the same table and quotes the resident's own characters back.
    community = load_community(REPO / "bot" / "data" / "sample_community.yaml")
    found = community.locator.locate("東門旁邊的垃圾")
    assert found is not None and found.grid == "G1" and found.matched == "東門" and found.place == "东门"
    building = community.locator.locate("請問3號樓樓道裡的垃圾誰管")
    assert building is not None and building.matched.startswith("3號樓")


def test_shipped_model_is_small_and_matches_the_corpus() -> None:
    path = resources.files("handlers").joinpath("data", MODEL_FILE)
    assert path.is_file()
    size = len(path.read_bytes())
    assert size <= 20 * 1024 * 1024
    raw = json.loads(gzip.decompress(path.read_bytes()))
    rows = training_rows(corpus_files(REPO / "bench" / "data"))
    # Retrain (outreach-bot classify train) whenever the labelled corpus changes.
    assert raw["corpus_sha256"] == corpus_hash(rows)
    assert all(split_of(r.text) == "train" for r in rows)
    model = load_model()
    assert model is not None and set(model.labels) == {*load_default_categories_codes(), OTHER, "none"}


def load_default_categories_codes() -> set[str]:
    return {c.code for c in load_default_categories()}


def test_split_is_by_text_not_by_position() -> None:
    texts = [f"第{i}条测试消息" for i in range(500)]
    first = [split_of(t) for t in texts]
    assert first == [split_of(t) for t in reversed(texts)][::-1]
    assert 0.1 < first.count("test") / len(first) < 0.3

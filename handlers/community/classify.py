"""Classify a resident's Chinese message: which report categories it names, or that it is no report.

How it decides (the words live in ``data/categories.yaml`` and ``data/intents.yaml``, not here):

1. Fold the text (traditional → simplified, full-width → ASCII) and segment it once with jieba
   (precise mode, HMM off, so the same text always gives the same tokens; every keyword is in the
   dictionary so it comes out as one token and "电梯" never matches inside a longer word).
2. Score each category: a keyword counts 2, a support word 1 (only once the category has a keyword);
   a keyword right before a locative ("垃圾堆里有老鼠", "下水道里") names a place, not the problem, and
   counts less than half. Keywords inside a category's exclusion ("垃圾短信", "疏通下水道的广告")
   do not count.
3. Primary = the category mentioned first among those scoring at least half the best score (people
   name their main problem first, but "垃圾站旁边苍蝇嗡嗡的" is about flies). Every category with a
   keyword is kept, primary first, the rest by score.
4. Intents decide what is not a report: thanks and "已经清理了" (unless it persists: "又", "还没"), questions
   ("垃圾几点收") unless they also complain, health topics; a problem of no category ("路灯坏了") is "other".

Before step 1 the message is read into known words (``lexicon.py``: dialect, English, pinyin,
keyword typos) without politeness around it (``courtesy.py``); ``urgent``: danger words (``urgent.py``).
After step 4 a learned layer (``classify_model.py``: a linear model over character n-grams, words
and the rules' findings above) gives calibrated probabilities that decide the answer: a problem is never
turned away unless "no report" is clearly likelier (else ``other`` and ``ask``), and an unsure answer sets
``ask`` with the likely ``candidates``, best first.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

from handlers.community import urgent as danger
from handlers.community.category_defs import (
    OTHER,
    CategoryConfigError,
    CategoryDef,
    _data,
    load_default_categories,
    merge_categories,
)
from handlers.community.classify_model import LinearModel, load_model, text_feature_set, text_features
from handlers.community.courtesy import without_courtesy
from handlers.community.jieba_cache import WordTable, base_groups, jieba_tokenizer
from handlers.community.lexicon import Lexicon, cached_lexicon
from handlers.community.pattern_search import PatternSearch
from handlers.community.segment import Segmenter
from handlers.community.services import default_service_rules
from handlers.kernel import regex_cache
from handlers.kernel.textnorm import fold

KEYWORD_WEIGHT = 2.0
SUPPORT_WEIGHT = 1.0
LOCATIVE_FACTOR = 0.4  # "垃圾桶旁边有老鼠": the bin is where, the rats are what
PRIMARY_SHARE = 0.5  # a category mentioned first stays primary unless another scores twice as much
_WORD_FREQ = 10**6  # high enough that a dictionary word is kept whole
NONE = "none"
# "Not a report" only when the model is this sure; below it a message is a problem to ask about
# (a problem turned away costs more than a question). Chosen on the train split's cross-validation.
NONE_MIN = 0.6
NONE_MIN_FOR_REQUESTS = 0.9
ASK_BELOW = 0.6  # a category this unsure is offered to the resident to confirm
ASK_BELOW_UNNAMED = 0.75  # the same when no keyword names it: only the model's guess ("又脏又臭")
CANDIDATE_MIN = 0.08
_LATIN = re.compile("[a-z]")
_INSECTS = re.compile("蚊|孑|跟头虫|虫|mosquito|larva")
_OWN_WORD_FREQ = 5  # a typed word this frequent in jieba's dictionary is not a typo of a keyword


@dataclass(frozen=True)
class Classification:
    text: str
    category: str | None
    categories: tuple[str, ...] = ()
    confidence: float = 0.0
    keywords: tuple[str, ...] = ()
    intent: str | None = None  # why not a report: closure, question, greeting, topic, status, advert
    urgent: str | None = None  # kind of immediate danger (a key of data/urgent.yaml): gas, fire, …
    ask: bool = False  # unsure: the bot should let the resident choose among ``candidates``
    candidates: tuple[str, ...] = ()  # likely categories, best first (``other`` may be among them)

    @property
    def is_report(self) -> bool:
        return self.category is not None


@dataclass(frozen=True)
class Intents:
    # Each field's ``search`` is the compiled pattern's, only faster (handlers/community/pattern_search.py).
    persists: PatternSearch
    severity: PatternSearch
    request: PatternSearch
    praise: PatternSearch
    closure: PatternSearch
    question: PatternSearch
    topics: PatternSearch
    greeting: PatternSearch
    complaint: PatternSearch
    status: PatternSearch
    turn: PatternSearch
    advert: PatternSearch


# (the model's flag, the Intents field) of each intent checked for every message; i:topic is the topics'
_FLAGGED_INTENTS = tuple(("topic" if n == "topics" else n, n) for n in Intents.__annotations__ if n != "turn")


@cache
def _intents_data() -> dict[str, Any]:
    return _data("intents.yaml")  # type: ignore[no-any-return]


@cache
def locatives() -> frozenset[str]:
    return frozenset(_intents_data().get("locatives", ()))


@cache
def owners() -> frozenset[str]:
    return frozenset(_intents_data().get("owners", ()))


@cache
def urgent_words() -> tuple[str, ...]:
    return tuple(_intents_data().get("urgent", ()))


@cache
def load_intents() -> Intents:
    raw = _intents_data()
    return Intents(
        **{
            name: PatternSearch(regex_cache.compile("|".join(f"(?:{p})" for p in raw[name])))
            for name in Intents.__annotations__
        }
    )


@cache
def _replacements() -> tuple[tuple[str, str], ...]:
    raw = _data("categories.yaml").get("replacements") or {}
    return tuple((fold(wrong).lower(), fold(right).lower()) for wrong, right in raw.items())


def word_table(words: frozenset[str]) -> WordTable:
    """jieba's dictionary with these words in it. One per classifier, because added words change how
    everything around them is cut: one community's keywords must not change another's."""
    groups, total = base_groups()
    return WordTable(groups, total, words, _WORD_FREQ)


@dataclass
class _Score:
    score: float = 0.0
    strong: int = 0
    first: int = 10**9
    supported: bool = False
    words: list[str] = field(default_factory=list)


@dataclass
class Analysis:
    """What the rules find in one message: the learned layer's input and the fallback answer."""

    normalized: str
    tokens: list[str]
    scores: dict[int, _Score]
    found: list[int]
    result: Classification  # the rules' own answer
    flags: tuple[str, ...]
    urgent: str | None


class Classifier:
    def __init__(self, categories: Sequence[CategoryDef], model: LinearModel | bool | None = True) -> None:
        """``model``: True for the shipped model, False for the rules alone, or a model."""
        self.categories = [c for c in categories if c.enabled]
        self.intents = load_intents()
        self.replacements = _replacements()
        self.locatives = locatives()
        self.owners = owners()
        # word → [(category index, weight, is keyword)]
        self.index: dict[str, list[tuple[int, float, bool]]] = {}
        for ci, category in enumerate(self.categories):
            for word in category.keywords:
                self.index.setdefault(word, []).append((ci, KEYWORD_WEIGHT, True))
            for word in category.support:
                self.index.setdefault(word, []).append((ci, SUPPORT_WEIGHT, False))
        words = [*self.index, *_intents_data().get("words", ())]
        self.words = frozenset(w for w in words if len(w) > 1)
        self.table = word_table(self.words)
        self.segment = Segmenter(self.table).lcut  # jieba's own tokens, faster
        self.exclusions = [
            regex_cache.compile("|".join(f"(?:{p})" for p in c.exclusions)) if c.exclusions else None
            for c in self.categories
        ]
        # Exclusions rarely match: a quick search first, the spans only when there is one.
        self.exclusion_search = [PatternSearch(p) if p is not None else None for p in self.exclusions]
        keywords = [w for c in self.categories for w in c.keywords]
        self.lexicon = _lexicon(frozenset(keywords) | danger.plain_words())
        self.model: LinearModel | None = (
            load_model() if model is True else None if model is False else model  # type: ignore[assignment]
        )
        self.codes = frozenset(c.code for c in self.categories)
        # The model learned the default categories; one whose words a community replaced (rather than
        # extended) is left to the keywords, so the community's own word list is what counts.
        defaults = {c.code: frozenset(c.keywords) for c in load_default_categories()}
        self.model_codes = frozenset(
            c.code for c in self.categories if c.code in defaults and defaults[c.code] <= set(c.keywords)
        )
        self.contrast = [regex_cache.compile(p) for p in _intents_data().get("contrast", ())]
        self.services = default_service_rules()
        self.code_index = {c.code: i for i, c in enumerate(self.categories)}

    def classify(self, text: str) -> Classification:
        folded = fold(text).strip().lower()
        if not folded:
            return Classification(text, None, confidence=1.0)
        analysis = self.analyse(text, folded)
        if self.model is None:
            return analysis.result
        return self._decide(analysis, self.model.probabilities(self._feature_set(analysis)))

    def features(self, analysis: Analysis) -> list[str]:
        """The learned layer's input: the text's n-grams and words, and what the rules found."""
        return [*text_features(analysis.normalized, analysis.tokens), *self._rule_features(analysis)]

    def _feature_set(self, analysis: Analysis) -> set[str] | list[str]:
        # The same features as a set, for the model's set intersection. No two are ever equal (n-grams
        # have at most 3 characters, words start with "w:", the rules' findings are longer and
        # distinct); were they, the list keeps each occurrence as before.
        out = text_feature_set(analysis.normalized, analysis.tokens)
        rules = self._rule_features(analysis)
        size = len(out) + len(rules)
        out.update(rules)
        return out if len(out) == size else self.features(analysis)

    def _rule_features(self, analysis: Analysis) -> list[str]:
        named = [self.categories[i].code for i in analysis.found[:3]]
        rule = analysis.result
        found = [f"kw:{code}" for code in named]
        if named:
            found.append(f"kw1:{named[0]}")
        extra = [f"rule:{rule.category or NONE}", f"intent:{rule.intent}", *analysis.flags]
        if analysis.urgent:
            extra.append("urgent")
        return [*found, *extra]

    def analyse(self, text: str, folded: str | None = None) -> Analysis:
        folded = without_courtesy(fold(text).strip().lower() if folded is None else folded)
        for wrong, right in self.replacements:
            if wrong in folded:
                folded = folded.replace(wrong, right)
        normalized = self.lexicon.normalize(folded, self._is_own_word)
        negated = self._negated(normalized)  # once: the scores and the flags both need it
        scores, tokens = self._score(normalized, negated)
        flags_svc = self._services(normalized, scores, negated)
        found = self._ranked(scores)
        # Spelled-out syllables only matter for pinyin typed as letters; characters' homophones of the
        # danger words were already repaired by the lexicon.
        syllables = self.lexicon.syllable_text(folded) if _LATIN.search(folded) else ""
        urgent = danger.detect(normalized, folded, syllables)
        result, flags = self._rules(text, normalized, scores, found)
        if negated:
            flags = (*flags, "i:contrast")
        flags = (*flags, *flags_svc)
        if urgent is not None:
            category = result.category or OTHER
            categories = result.categories
            result = Classification(
                text,
                category,
                categories,
                result.confidence,
                result.keywords,
                urgent=urgent,
                candidates=categories or (OTHER,),
            )
        return Analysis(normalized, tokens, scores, found, result, flags, urgent)

    def _rules(
        self, text: str, folded: str, scores: dict[int, _Score], found: list[int]
    ) -> tuple[Classification, tuple[str, ...]]:
        intents = self.intents
        # Each intent's finding, and the model's flag for it (i:topic is the topics patterns').
        hit = {flag: getattr(intents, name).search(folded) is not None for flag, name in _FLAGGED_INTENTS}
        flags = tuple(f"i:{flag}" for flag, on in hit.items() if on)
        persists, request, praise, closure = hit["persists"], hit["request"], hit["praise"], hit["closure"]
        question, severity, complaint = hit["question"], hit["severity"], hit["complaint"]
        greeting, topic, status, advert = hit["greeting"], hit["topic"], hit["status"], hit["advert"]
        # "卫生还行，就是单元门坏了": praise or "fine" before a turn does not close a problem after it.
        turned = False
        if praise or closure:
            turn = intents.turn.search(folded)
            if turn is not None:
                tail = folded[turn.end() :]
                turned = intents.complaint.search(tail) is not None or any(
                    s.first >= turn.end() for s in scores.values()
                )
        if turned:
            flags = (*flags, "i:turn")
        elif praise or (not persists and not request and closure):
            return Classification(text, None, confidence=0.9, intent="closure"), flags
        # "我上次报的下水道处理到哪一步了": the resident's earlier case, not a new one (unless it is back)
        if status and not persists:
            return Classification(text, None, confidence=0.9, intent="status"), flags
        # "专业灭鼠灭蟑，上门服务": the message is an ad; a report of ads stuck up names a poster.
        if advert and not persists and not any(self.categories[i].code == "poster" for i in found):
            return Classification(text, None, confidence=0.8, intent="advert"), flags
        if found:
            primary = scores[found[0]]
            complains = persists or request or primary.supported or severity
            if question and not complains:
                return Classification(text, None, confidence=0.7, intent="question"), flags
            codes = tuple(self.categories[i].code for i in found)
            total = sum(scores[i].score for i in found)
            confidence = min(0.99, (0.5 + 0.1 * primary.score) * (0.6 + 0.4 * primary.score / total))
            words = tuple(w for i in found for w in scores[i].words)
            return Classification(text, codes[0], codes, round(confidence, 3), words, candidates=codes), flags
        if complaint and (persists or request or not question):
            return Classification(text, OTHER, (), 0.5, ask=True, candidates=(OTHER,)), flags
        if question:
            return Classification(text, None, confidence=0.9, intent="question"), flags
        if greeting:
            return Classification(text, None, confidence=0.9, intent="greeting"), flags
        if topic:
            return Classification(text, None, confidence=0.9, intent="topic"), flags
        return Classification(text, None, confidence=0.6), flags

    def _decide(self, analysis: Analysis, probabilities: dict[str, float]) -> Classification:
        rule = analysis.result
        # A question about an earlier report is answered from the resident's cases, whatever it names.
        if rule.intent == "status" and analysis.urgent is None:
            return rule
        named = [self.categories[i].code for i in analysis.found]
        # A community's own or reworded category named by its keywords: the keywords decide.
        if named and named[0] not in self.model_codes:
            return rule
        usable = {k: v for k, v in probabilities.items() if k in (OTHER, NONE) or k in self.model_codes}
        total = sum(usable.values()) or 1.0
        p = {k: v / total for k, v in usable.items()}
        ranked = sorted(p, key=lambda k: -p[k])
        problems = [k for k in ranked if k != NONE]
        best = ranked[0]
        unsure_none = False
        # A message that asks for action on a problem the rules named ("麻烦派人把垃圾清理一下 谢谢")
        # is a report unless the model is very sure it is not.
        asks_action = rule.category is not None and (
            "i:request" in analysis.flags or "i:persists" in analysis.flags
        )
        none_min = NONE_MIN_FOR_REQUESTS if asks_action else NONE_MIN
        if best == NONE and (p[NONE] < none_min or analysis.urgent is not None):
            best, unsure_none = problems[0], True
        if best == NONE:
            return Classification(rule.text, None, confidence=round(p[NONE], 3), intent=rule.intent or "chat")
        if analysis.urgent is not None and best == "mosquito" and not _INSECTS.search(analysis.normalized):
            # "电线掉在积水里": a live wire lying in water is an electrical danger, not a breeding site
            p[OTHER], p[best] = p[best], p[OTHER]
            problems = sorted((k for k in p if k != NONE), key=lambda k: -p[k])
            best = OTHER
            named = [c for c in named if c != "mosquito"]
        confidence = p[best]
        candidates = [k for k in problems if p[k] >= CANDIDATE_MIN][:3]
        if best in candidates:
            candidates.remove(best)
        candidates.insert(0, best)
        # Every problem named, primary first; ``other`` only leads a list that names others too.
        categories = [best, *(c for c in named if c != best)]
        categories += [k for k in problems if k not in categories and k != OTHER and p[k] >= 0.35]
        if categories == [OTHER]:
            categories = []
        return Classification(
            rule.text,
            best,
            tuple(categories),
            round(confidence, 3),
            rule.keywords,
            None,
            analysis.urgent,
            unsure_none or confidence < (ASK_BELOW_UNNAMED if best != OTHER and not named else ASK_BELOW),
            tuple(candidates),
        )

    @cached_property
    def tokenizer(self) -> Any:
        """jieba itself with this classifier's words (tests compare its tokens with ``segment``'s)."""
        return jieba_tokenizer(self.words, _WORD_FREQ)

    def _is_own_word(self, typed: str) -> bool:
        return self.table.base_freq(typed) > _OWN_WORD_FREQ

    @staticmethod
    def _ranked(scores: dict[int, _Score]) -> list[int]:
        named = [i for i, s in scores.items() if s.strong]
        if not named:
            return []
        best = max(scores[i].score for i in named)
        contenders = [i for i in named if scores[i].score >= PRIMARY_SHARE * best]
        primary = min(contenders, key=lambda i: scores[i].first)
        rest = sorted((i for i in named if i != primary), key=lambda i: (-scores[i].score, scores[i].first))
        return [primary, *rest]

    def _services(self, folded: str, scores: dict[int, _Score], negated: list[tuple[int, int]]) -> list[str]:
        """A complaint about a service ("保洁好几天没来了") names its category's problem."""
        found = self.services.find(folded, self.code_index, negated)
        for match in found:
            if not (score := scores.setdefault(self.code_index[match.code], _Score())).strong:
                self._add_keyword(score, [match.text], 0, match.start, KEYWORD_WEIGHT)
        return [f"svc:{match.code}" for match in found]

    def _owned(self, tokens: list[str], n: int) -> bool:
        """ "垃圾站的保安", "灭鼠公司": the word only says whose person, firm or vehicle it is."""
        after = n + 2 if n + 2 < len(tokens) and tokens[n + 1] == "的" else n + 1
        return after < len(tokens) and tokens[after] in self.owners

    def _negated(self, folded: str) -> list[tuple[int, int]]:
        """Spans that say what the problem is not ("不是垃圾的问题，是…")."""
        return [m.span("neg") for pattern in self.contrast for m in pattern.finditer(folded)]

    def _add_keyword(self, score: _Score, tokens: list[str], n: int, start: int, weight: float) -> None:
        if n + 1 < len(tokens) and tokens[n + 1] in self.locatives:
            weight *= LOCATIVE_FACTOR  # "垃圾桶旁边有老鼠": the bin is where, not what
        score.score += weight
        score.strong += 1
        score.first = min(score.first, start)
        score.words.append(tokens[n])

    def _score(
        self, folded: str, negated: list[tuple[int, int]] | None = None
    ) -> tuple[dict[int, _Score], list[str]]:
        tokens = self.segment(folded)
        scores: dict[int, _Score] = {}
        index = self.index
        hit = [n for n, token in enumerate(tokens) if token in index]
        if not hit:  # most words are no category's: nothing below needs their offsets
            return scores, tokens
        starts = list(itertools.accumulate(map(len, tokens), initial=0))
        if negated is None:
            negated = self._negated(folded)
        spans: dict[int, list[tuple[int, int]]] = {}  # a category's exclusions, found when it is hit

        def excluded(ci: int, start: int) -> bool:
            if ci not in spans:
                search = self.exclusion_search[ci]
                if search is not None and search.search(folded) is not None:
                    spans[ci] = [m.span() for m in search.pattern.finditer(folded)]
                else:
                    spans[ci] = []
            return any(a <= start < b for a, b in spans[ci])

        supports: list[tuple[int, float, str, int]] = []
        for n in hit:
            token, start = tokens[n], starts[n]
            hits = index[token]
            if not hits or any(a <= start < b for a, b in negated):
                continue
            if self._owned(tokens, n):
                continue
            # A word that names some category's problem ("苍蝇") is not mere support for another.
            is_keyword = any(strong for _, _, strong in hits)
            for ci, weight, strong in hits:
                if is_keyword and not strong:
                    continue
                if excluded(ci, start):
                    continue
                if not strong:
                    supports.append((ci, weight, token, start))
                    continue
                self._add_keyword(scores.setdefault(ci, _Score()), tokens, n, start, weight)
        for ci, weight, token, _start in supports:
            if ci in scores:
                scores[ci].score += weight
                scores[ci].supported = True
                scores[ci].words.append(token)
        return scores, tokens


@cache
def _lexicon(keywords: frozenset[str]) -> Lexicon:
    return cached_lexicon(sorted(keywords | frozenset(_intents_data().get("words", ()))))


@cache
def default_classifier() -> Classifier:
    return Classifier(load_default_categories())


__all__ = [
    "OTHER",
    "CategoryConfigError",
    "CategoryDef",
    "Classification",
    "Classifier",
    "default_classifier",
    "load_default_categories",
    "merge_categories",
]

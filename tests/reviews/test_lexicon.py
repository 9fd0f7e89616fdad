"""Lexicon scores on hand-made sentences, aspects, and the whole per-review analysis (no Spark)."""
from __future__ import annotations

import math

import pytest

from memberlake.reviews import lexicon
from memberlake.reviews.language import EN, ZH
from memberlake.reviews.lexicon import _to_unit, analyser, naive_bayes
from memberlake.reviews.score import analyse, compile_aspects

ASPECTS = compile_aspects({
    "en": {"delivery": ["delivery", "arrived"], "quality": ["quality", "well made"], "size_fit": ["fit"]},
    "zh": {"delivery": ["物流", "快递"], "quality": ["质量"]},
})


def test_english_polarity_negation_and_intensifiers():
    en = analyser(EN)
    good, bad = en.sentence("The quality is good."), en.sentence("The quality is bad.")
    assert good > 0 > bad
    assert en.sentence("The quality is not good.") < 0 < good                 # negation flips
    assert en.sentence("The quality is very good.") > good                   # intensifier raises
    assert en.sentence("It arrived on Tuesday.") == 0.0                       # a fact has no sentiment
    assert -1.0 <= en.sentence("AWFUL!!! Worst purchase ever, terrible terrible.") < -0.5


def test_english_review_is_the_mean_of_its_opinionated_sentences():
    en = analyser(EN)
    got = analyse(None, "It arrived on Tuesday. The quality is good. The delivery was terrible.", "en", ASPECTS)
    good, terrible = en.sentence("The quality is good."), en.sentence("The delivery was terrible.")
    assert got["language"] == EN and not got["language_detected"]
    assert (got["sentences"], got["opinion_sentences"]) == (3, 2)
    assert got["lexicon_score"] == pytest.approx((good + terrible) / 2)
    aspects = {a["aspect"]: (a["mentions"], a["score"]) for a in got["aspects"]}
    # "arrived" and "delivery" are two delivery sentences: the neutral one counts as a mention
    assert aspects == {"delivery": (2, pytest.approx(terrible / 2)), "quality": (1, pytest.approx(good))}


def test_english_aspect_keywords_match_whole_words_and_simple_inflections():
    got = analyse("Fits well", "Unfit for purpose? No. Great quality.", None, ASPECTS)
    assert {a["aspect"] for a in got["aspects"]} == {"size_fit", "quality"}     # "Fits" yes, "Unfit" no
    assert got["language_detected"]


def test_chinese_scores_follow_the_model_weights_and_negation():
    zh = analyser(ZH)
    assert zh.sentence("质量很好") > 0 > zh.sentence("质量很差")
    assert zh.sentence("不好") < zh.sentence("好")                           # the negator's learnt weight
    assert zh.sentence("非常满意，推荐购买") > 0.5
    # review score = 2 P(positive) - 1 with the prior over all tokens
    text = "物流太慢了，但是质量很好。"
    assert analyse(None, text, None, ASPECTS)["lexicon_score"] == pytest.approx(
        math.tanh((zh.prior + zh.log_odds(text)) / 2))


def test_naive_bayes_by_hand_counts_a_word_once_per_document():
    words = lambda doc: set(doc.split())                                      # noqa: E731
    weights, prior = naive_bayes(["good good fast", "good"], ["bad", "bad slow", "good bad"], words)
    # binarised counts: pos good 2, fast 1 (total 3); neg bad 3, slow 1, good 1 (total 5); vocabulary 4
    assert weights["good"] == pytest.approx(math.log(3 / 7) - math.log(2 / 9))
    assert weights["fast"] == pytest.approx(math.log(2 / 7) - math.log(1 / 9))
    assert weights["bad"] == pytest.approx(math.log(1 / 7) - math.log(4 / 9))
    assert set(weights) == {"good", "fast", "bad", "slow"}
    assert prior == pytest.approx(math.log(2 / 3))


def test_chinese_weights_are_trained_once_and_read_back_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(lexicon.tempfile, "tempdir", str(tmp_path))
    trained = []

    def train(words):
        trained.append(1)
        return {"好": 1.5}, -0.25

    monkeypatch.setattr(lexicon, "train_chinese", train)
    assert lexicon._chinese_model(str.split) == ({"好": 1.5}, -0.25)
    assert lexicon._chinese_model(str.split) == ({"好": 1.5}, -0.25)
    assert len(trained) == 1 and len(list(tmp_path.glob("memberlake-zh-sentiment-*.json"))) == 1
    next(tmp_path.glob("*.json")).write_text("{not json")                     # a torn cache: train again
    assert lexicon._chinese_model(str.split) == ({"好": 1.5}, -0.25) and len(trained) == 2


def test_chinese_aspects_by_sentence():
    got = analyse(None, "物流太慢了！质量很好。", "zh-CN", ASPECTS)
    aspects = {a["aspect"]: a["score"] for a in got["aspects"]}
    assert got["language"] == ZH and aspects["delivery"] < 0 < aspects["quality"]


def test_unsupported_reviews_get_no_score():
    got = analyse("Sehr gut", "Das Produkt ist sehr gut und die Lieferung war schnell.", None, ASPECTS)
    assert got["language"] == "unsupported" and got["lexicon_score"] is None and got["tokens"] == []


def test_unit_mapping_is_bounded_and_symmetric():
    assert _to_unit(0.0) == 0.0 and _to_unit(1e9) == 1.0 and _to_unit(-1e9) == -1.0
    assert _to_unit(2.0) == pytest.approx(2 / (1 + math.exp(-2.0)) - 1)

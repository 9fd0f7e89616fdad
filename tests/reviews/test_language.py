"""Language routing and sentence splitting: pure Python, no Spark."""
from __future__ import annotations

import pytest

from memberlake.reviews.language import EN, UNSUPPORTED, ZH, detect, normalise_code, resolve, sentences


@pytest.mark.parametrize("text, expected", [
    ("The shoes fit well and the delivery was quick.", EN),
    ("Great value!", EN),                                   # short, plain ASCII, no function word
    ("房间很干净，服务也很好。", ZH),
    ("这款iPhone手机壳质量不错", ZH),                          # brand in Latin inside Chinese
    ("Das Produkt ist sehr gut und die Lieferung war schnell.", UNSUPPORTED),   # German
    ("Le produit est arrivé rapidement, très bonne qualité.", UNSUPPORTED),     # French, accents
    ("Très bien", UNSUPPORTED),                              # short with an accent
    ("この商品はとても良いです", UNSUPPORTED),                   # Japanese: kana beside kanji
    ("배송이 빨라요", UNSUPPORTED),                              # Korean
    ("Отличный товар", UNSUPPORTED),                          # Cyrillic
    ("12345 !!!", UNSUPPORTED),
    ("", UNSUPPORTED),
    (None, UNSUPPORTED),
])
def test_detect(text, expected):
    assert detect(text) == expected


def test_delivered_language_wins_when_supported_and_other_tags_are_unsupported():
    assert normalise_code(" zh_CN ") == ZH and normalise_code("en-GB") == EN and normalise_code("Chinese") == ZH
    assert normalise_code("") is None and normalise_code(None) is None
    assert resolve("zh-TW", "mostly english words here") == ZH        # the delivered tag is trusted
    assert resolve("fr", "The product is good") == UNSUPPORTED          # never scored as English
    assert resolve(None, "The product is good") == EN


def test_sentences_split_on_both_scripts_stops_and_drop_empty_parts():
    assert sentences("Good fit. Bad zip!  Would buy again?\nYes", EN) == [
        "Good fit.", "Bad zip!", "Would buy again?", "Yes"]
    assert sentences("质量很好。物流太慢！客服还行", ZH) == ["质量很好", "物流太慢", "客服还行"]
    assert sentences(" ... ", EN) == [] and sentences(None, ZH) == []

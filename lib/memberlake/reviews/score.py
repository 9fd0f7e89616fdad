"""Score reviews inside Spark: one vectorised pass per partition (``mapInPandas``).

Per review: the analyser's language (delivered or detected), its sentences, the lexicon score in
[-1, 1], the tokens a trained model reads (so Chinese is segmented once, here), and per aspect
mentioned, the mean score of the sentences that mention it. Review text never leaves this pass:
the outputs hold scores and tokens, not sentences.
"""
from __future__ import annotations

import re
from typing import Iterator, Mapping, Sequence

import pandas as pd
from pyspark.sql import DataFrame

from memberlake.reviews.language import EN, SUPPORTED, resolve, sentences
from memberlake.reviews.lexicon import Sentence, analyser

Aspects = Mapping[str, Mapping[str, Sequence[str]]]   # language -> aspect -> keywords

SCORED_SCHEMA = (
    "review_id string, language string, language_detected boolean, sentences int, opinion_sentences int, "
    "lexicon_score double, tokens array<string>, "
    "aspects array<struct<aspect:string,mentions:int,score:double>>"
)


def _matcher(language: str, keywords: Sequence[str]) -> re.Pattern[str]:
    words = sorted({k.strip().lower() for k in keywords if k.strip()}, key=len, reverse=True)
    body = "|".join(re.escape(w) for w in words) or r"(?!x)x"
    # English keywords match whole words (and their plural / -ed / -ing forms); Chinese has no spaces.
    return re.compile(rf"\b(?:{body})(?:s|es|ed|ing)?\b" if language == EN else body)


def analyse(title: str | None, body: str | None, delivered: str | None,
            matchers: Mapping[str, Mapping[str, re.Pattern[str]]]) -> dict:
    """One review's scores; pure, so tests call it without Spark."""
    text = " ".join(t for t in (title, body) if t)
    language = resolve(delivered, text)
    out = {"language": language, "language_detected": not delivered or not str(delivered).strip(),
           "sentences": 0, "opinion_sentences": 0, "lexicon_score": None, "tokens": [], "aspects": []}
    if language not in SUPPORTED:
        return out
    tool = analyser(language)
    parts = [*sentences(title, language), *sentences(body, language)]
    scored = [Sentence(s, tool.sentence(s)) for s in parts]
    review = tool.review(text, scored)
    aspects = []
    for aspect, pattern in matchers.get(language, {}).items():
        hits = [s.score for s in scored if pattern.search(s.text.lower())]
        if hits:
            aspects.append({"aspect": aspect, "mentions": len(hits), "score": sum(hits) / len(hits)})
    out.update(sentences=len(scored), opinion_sentences=sum(s.score != 0.0 for s in scored),
               lexicon_score=float(review), tokens=tool.tokens(text), aspects=aspects)
    return out


def compile_aspects(aspects: Aspects) -> dict[str, dict[str, re.Pattern[str]]]:
    return {lang: {a: _matcher(lang, kws) for a, kws in per.items()} for lang, per in aspects.items()}


def score_reviews(reviews: DataFrame, aspects: Aspects) -> DataFrame:
    """(review_id, language, title, body) -> :data:`SCORED_SCHEMA` rows, one per review."""
    plain = {lang: {a: list(k) for a, k in per.items()} for lang, per in aspects.items()}

    def batches(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        matchers = compile_aspects(plain)
        for frame in frames:
            rows = [analyse(_text(t), _text(b), _text(lang), matchers)
                    for t, b, lang in zip(frame["title"], frame["body"], frame["language"], strict=True)]
            out = pd.DataFrame(rows, columns=["language", "language_detected", "sentences", "opinion_sentences",
                                              "lexicon_score", "tokens", "aspects"])
            out.insert(0, "review_id", frame["review_id"].to_numpy())
            yield out

    return reviews.select("review_id", "language", "title", "body").mapInPandas(batches, SCORED_SCHEMA)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


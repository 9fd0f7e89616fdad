"""Review scoring in Spark, the cross-fitted weak-label model, and the summaries, on tiny frames."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from memberlake.inputs import person_sentiment
from memberlake.reviews.analysis import by_champions
from memberlake.reviews.model import compare, cross_fitted, fold_of, refit, weak_label
from memberlake.reviews.score import analyse, compile_aspects, score_reviews
from memberlake.reviews.summaries import final_scores, label, product_sentiment
from memberlake.settings import ReviewSettings, SentimentModelSettings

ASPECTS = {"en": {"delivery": ["delivery"]}, "zh": {"quality": ["质量"]}}


def test_score_reviews_matches_the_python_analysis_row_by_row(spark):
    rows = [("r1", None, "Love it", "The delivery was quick and the quality is great."),
            ("r2", "zh", None, "质量很差。"),
            ("r3", None, None, "Das Produkt ist sehr gut und die Lieferung war schnell."),
            ("r4", "en", "Meh", None)]
    df = spark.createDataFrame(rows, "review_id string, language string, title string, body string")
    got = {r.review_id: r.asDict(recursive=True) for r in score_reviews(df, ASPECTS).collect()}
    matchers = compile_aspects(ASPECTS)
    for rid, lang, title, body in rows:
        want = analyse(title, body, lang, matchers)
        assert got[rid]["language"] == want["language"] and got[rid]["sentences"] == want["sentences"]
        assert got[rid]["lexicon_score"] == (pytest.approx(want["lexicon_score"]) if want["lexicon_score"]
                                             is not None else None)
        assert [a["aspect"] for a in got[rid]["aspects"]] == [a["aspect"] for a in want["aspects"]]
    assert got["r1"]["lexicon_score"] > 0 > got["r2"]["lexicon_score"]
    assert got["r3"]["language"] == "unsupported" and got["r3"]["tokens"] == []
    assert [a["aspect"] for a in got["r1"]["aspects"]] == ["delivery"]


def test_weak_label_values(spark):
    df = spark.createDataFrame([(1,), (2,), (3,), (4,), (5,), (None,)], "rating int")
    got = [r[0] for r in df.select(weak_label(F.col("rating"), SentimentModelSettings())).collect()]
    assert got == [0.0, 0.0, None, 1.0, 1.0, None]
    folds = spark.range(300).select(fold_of(F.col("id").cast("string"), 3).alias("f")).groupBy("f").count().collect()
    assert sorted(r.f for r in folds) == [0, 1, 2] and min(r["count"] for r in folds) > 60


def test_cross_fitted_model_learns_a_word_the_lexicon_does_not_know(spark):
    # "zorp" is the planted positive word, "blick" the negative one; the lexicon scores all 0.
    rows = []
    for i in range(240):
        positive = i % 2 == 0
        tokens = ["zorp" if positive else "blick", "item", f"w{i % 7}"]
        rating = None if i % 10 == 9 else (5 if positive else 1)
        rows.append((f"r{i}", tokens, 0.0, rating))
    df = spark.createDataFrame(rows, "review_id string, tokens array<string>, lexicon_score double, rating int")
    # A small hashing space: the default's 262,144 coefficients make each of the four fits' iterations
    # aggregate megabytes of gradient for a vocabulary of ten words.
    cfg = SentimentModelSettings(min_doc_freq=0, max_iter=30, folds=3, num_features=1024)
    scored = df.select("*", weak_label(F.col("rating"), cfg).alias("label"))
    cross = cross_fitted(scored, cfg)
    got = {r.review_id: r for r in cross.collect()}
    assert len(got) == 240                                     # every review once, unlabelled ones too
    assert got["r9"].model_score < 0 < got["r8"].model_score   # r9 (unlabelled) has "blick"
    labelled = scored.where(F.col("label").isNotNull()).select("review_id", "label", "lexicon_score").join(cross, "review_id")
    result = compare(labelled, "en", None)
    assert result.metrics["model"]["roc_auc"] == pytest.approx(1.0)
    assert result.metrics["lexicon"]["roc_auc"] == pytest.approx(0.5)
    assert result.metrics["model"]["accuracy"] == pytest.approx(1.0) and result.chosen in ("model", "blend")
    # i % 10 == 9 (unrated) are odd i, all negative: 120 positives and 96 negatives are labelled
    assert result.labelled == 216 and result.positives == 120
    assert compare(labelled, "en", "lexicon").chosen == "lexicon"     # a pinned method wins
    # the refit on every labelled review scores a later feed without ratings (as a champion would)
    model = refit(scored.where(F.col("label").isNotNull()), cfg)
    feed = spark.createDataFrame([("n1", "en", ["zorp", "item"]), ("n2", "en", ["blick"]), ("n3", "zh", ["好"])],
                                 "review_id string, language string, tokens array<string>")
    borrowed, chosen, notes = by_champions(feed, ["en", "zh"], lambda lang: (model, "7") if lang == "en" else None)
    got = {r.review_id: r for r in borrowed.collect()}
    assert set(got) == {"n1", "n2"} and got["n1"].model_score > 0 > got["n2"].model_score
    assert got["n1"].blend_score is None and chosen == {"en": "model"} and "v7" in notes[0]


def test_final_scores_use_the_chosen_method_per_language(spark):
    scored = spark.createDataFrame([("a", "en", 0.2), ("b", "zh", -0.3), ("c", "unsupported", None)],
                                   "review_id string, language string, lexicon_score double")
    cross = spark.createDataFrame([("a", 0.9, 0.5)], "review_id string, model_score double, blend_score double")
    got = {r.review_id: (r.method, r.score) for r in final_scores(scored, cross, {"en": "blend"}).collect()}
    assert got == {"a": ("blend", 0.5), "b": ("lexicon", -0.3), "c": (None, None)}


def test_labels_by_threshold(spark):
    cfg = ReviewSettings()
    df = spark.createDataFrame([(-0.5,), (-0.05,), (0.0,), (0.05,), (0.06,), (None,)], "s double")
    assert [r[0] for r in df.select(label(F.col("s"), cfg)).collect()] == [
        "negative", "neutral", "neutral", "neutral", "positive", None]


def test_person_sentiment_level_and_trend_by_hand(spark):
    # as of 2024-06-30, trend_days 30: recent = Jun 1..Jun 30, previous = May 2..May 31
    rows = [("p1", datetime(2024, 6, 20), 0.8, "positive"), ("p1", datetime(2024, 5, 10), -0.4, "negative"),
            ("p1", datetime(2024, 5, 20), 0.0, "neutral"), ("p1", datetime(2024, 7, 2), -1.0, "negative"),  # after
            ("p2", datetime(2024, 6, 30, 23, 0), -0.6, "negative"),
            ("p3", datetime(2024, 1, 1), 0.5, "positive"),
            (None, datetime(2024, 6, 1), 0.9, "positive")]
    df = spark.createDataFrame(rows, "person_id string, created_at timestamp, score double, label string")
    got = {r.person_id: r for r in person_sentiment(df, date(2024, 6, 30), 30).collect()}
    assert set(got) == {"p1", "p2", "p3"}
    p1 = got["p1"]
    assert (p1.reviews, p1.last_score, p1.recent_mean) == (3, 0.8, 0.8)
    assert p1.mean_score == pytest.approx(0.4 / 3) and p1.negative_share == pytest.approx(1 / 3)
    assert p1.previous_mean == pytest.approx(-0.2) and p1.trend == pytest.approx(1.0)
    assert got["p2"].trend is None and got["p2"].recent_mean == -0.6          # nothing before: no trend
    assert got["p3"].recent_mean is None and got["p3"].as_of_date == date(2024, 6, 30)


def test_product_sentiment_by_month(spark):
    rows = [("s1", datetime(2024, 3, 5), 0.5, "positive", 5), ("s1", datetime(2024, 3, 25), -0.5, "negative", 1),
            ("s1", datetime(2024, 4, 1), 0.0, "neutral", None), (None, datetime(2024, 3, 1), 0.9, "positive", 5)]
    df = spark.createDataFrame(rows, "product_id string, created_at timestamp, score double, label string, rating int")
    got = {(r.product_id, r.month): r for r in product_sentiment(df).collect()}
    march = got[("s1", date(2024, 3, 1))]
    assert (march.reviews, march.mean_score, march.positive_share, march.negative_share, march.mean_rating) == (
        2, 0.0, 0.5, 0.5, 3.0)
    assert got[("s1", date(2024, 4, 1))].mean_rating is None and len(got) == 2

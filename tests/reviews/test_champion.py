"""Registered sentiment models: the refit registered per language, compared with the champion on
the reviews it never saw, and the champion scoring a later run's reviews that carry no ratings.

Extended tier: two cross-fits, two refits logged to MLflow and three model loads are slow for the
default one (tests/reviews/test_sentiment_spark.py scores with a refit there, without MLflow).
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from memberlake.ops.tracking import configure, tracked_run
from memberlake.reviews import champion
from memberlake.reviews.analysis import by_champions, comparisons
from memberlake.reviews.model import weak_label
from memberlake.settings import SentimentModelSettings, with_overrides


def _reviews(spark, prefix: str, day: datetime, positive_word: str, negative_word: str, rated: bool = True):
    """(scored, dates): 240 English reviews, half with each planted word; the lexicon scores 0."""
    rows = []
    for i in range(240):
        positive = i % 2 == 0
        tokens = [positive_word if positive else negative_word, "item", f"w{i % 7}"]
        rows.append((f"{prefix}{i}", "en", tokens, 0.0, (5 if positive else 1) if rated else None, day))
    df = spark.createDataFrame(rows, "review_id string, language string, tokens array<string>, lexicon_score double, "
                                     "rating int, created_at timestamp")
    scored = df.select("review_id", "language", "tokens", "lexicon_score",
                       weak_label(F.col("rating"), SentimentModelSettings()).alias("label"))
    return scored, df.select("review_id", "created_at")


@pytest.fixture()
def tuned(settings):
    model = {**settings.reviews.model.model_dump(), "min_doc_freq": 0, "max_iter": 30, "min_labelled": 100,
             "registered_model": f"test-sentiment-{uuid.uuid4().hex[:8]}"}
    out = with_overrides(settings, reviews={"model": model})
    configure(out)
    return out


def _register(settings, learnt, as_of):
    with tracked_run(settings, "reviews-test", "test"):
        return champion.register(settings, learnt, as_of, on_commit=lambda action: action())


@pytest.mark.extended
def test_refit_registered_then_compared_on_newer_reviews_and_used_without_ratings(spark, tuned):
    january, dates = _reviews(spark, "a", datetime(2024, 1, 10), "zorp", "blick")
    _, _, results, learnt, _ = comparisons(january, dates, tuned)
    assert [x.language for x in learnt] == ["en"] and learnt[0].beats_lexicon
    assert learnt[0].heldout_auc == pytest.approx(results[0].metrics["model"]["roc_auc"]) == pytest.approx(1.0)
    first = _register(tuned, learnt, date(2024, 1, 31))["en"]
    assert first.promoted and first.champion_metric is None

    # a later feed without ratings: the champion scores it (the lexicon knows neither word)
    unrated, _ = _reviews(spark, "u", datetime(2024, 3, 1), "zorp", "blick", rated=False)
    cross, chosen, notes = by_champions(unrated, ["en", "zh"], lambda lang: champion.champion(tuned, lang))
    got = {r.review_id: r.model_score for r in cross.collect()}
    assert chosen == {"en": "model"} and len(got) == 240 and f"v{first.version}" in notes[0]
    assert got["u0"] > 0 > got["u1"] and all(r.blend_score is None for r in cross.collect()[:3])

    # February brings new words: compared on February's reviews (unseen by the champion, which
    # ranks them at chance), the refit wins; against the champion's recorded 1.0 it could not
    february, later = _reviews(spark, "b", datetime(2024, 2, 10), "quux", "frob")
    _, _, _, learnt, _ = comparisons(january.unionByName(february), dates.unionByName(later), tuned)
    second = _register(tuned, learnt, date(2024, 2, 29))["en"]
    assert second.promoted and second.champion_metric == pytest.approx(0.5, abs=0.01)

    # a champion that did not beat the lexicon is not used
    from mlflow import MlflowClient

    MlflowClient().set_model_version_tag(champion.model_name(tuned, "en"), second.version, champion.BEATS_LEXICON,
                                         "false")
    assert champion.champion(tuned, "en") is None
    assert by_champions(unrated, ["en"], lambda lang: champion.champion(tuned, lang))[0] is None

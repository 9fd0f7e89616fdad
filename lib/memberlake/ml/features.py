"""Point-in-time features per person and as-of date, and the churn label.

Every feature of an as-of date is computed only from rows dated on or before that date: orders
and lines by order date, sessions by start, the registration date only once it has happened.
Several as-of dates are computed in one pass (a broadcast join of the rows with the dates), so
a training set that stacks dates costs one scan of the purchases, not one per date.

With ``btyd_model`` set, a transaction model fitted on the history up to each as-of date adds
``btyd_p_alive`` and ``btyd_expected_purchases`` over the churn horizon (ml/btyd_features.py).

The population of a date is the persons with a completed order in the ``active_days`` up to it.
``marketing_opt_in`` is the golden record's current value: the person table keeps no history,
so this one feature is as of the run, not the as-of date (documented in docs/models.md).
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from memberlake.ml import btyd_features
from memberlake.settings import ModelSettings

if TYPE_CHECKING:
    from memberlake.inputs import PersonActivity

KEYS = ["person_id", "as_of_date"]


def feature_names(cfg: ModelSettings) -> list[str]:
    """The numeric feature columns of ``features``, in a fixed order (the models' input)."""
    return ["recency_days", "tenure_days", "orders", "order_rate", "orders_365d", "spend_365d", "avg_order_value",
            "orders_30d", "order_trend", "spend_trend", "mean_gap_days", "std_gap_days", "overdue_ratio",
            "silence_likelihood",
            "category_breadth", "discount_share", *[f"share_{c}" for c in cfg.channels],
            "sessions_90d", "engaged_sessions_90d", "days_since_last_session", "marketing_opt_in",
            "reviews_365d", "sentiment_mean", "sentiment_trend",
            *([] if cfg.btyd_model == "none" else btyd_features.COLUMNS)]


def as_of_frame(spark: SparkSession, dates: list[date]) -> DataFrame:
    return spark.createDataFrame([(d,) for d in sorted(set(dates))], "as_of_date date")


def _upto(df: DataFrame, day: str, dates: DataFrame) -> DataFrame:
    """Each row once per as-of date on or after its ``day`` (the point-in-time cut)."""
    return df.join(F.broadcast(dates), F.col(day) <= F.col("as_of_date"), "inner")


def _days_before(n: int):
    return F.date_sub(F.col("as_of_date"), n)


def order_features(purchases: DataFrame, dates: DataFrame, cfg: ModelSettings) -> DataFrame:
    """RFM, trend, inter-purchase and channel figures per (person, as-of date) in the population."""
    order = Window.partitionBy("person_id").orderBy("order_ts", "order_id")
    # A purchase's gap to the one before it is known once it happened: computed once, cut later.
    with_gap = purchases.select("person_id", "order_id", "order_date", "channel", "net", "gross", "discount",
                                F.datediff("order_date", F.lag("order_date").over(order)).alias("gap"))
    rows = _upto(with_gap, "order_date", dates)
    active = F.col("order_date") > _days_before(cfg.active_days)
    recent = F.col("order_date") > _days_before(cfg.trend_days)
    base = (F.col("order_date") <= _days_before(cfg.trend_days)) & (
        F.col("order_date") > _days_before(cfg.trend_days + cfg.trend_base_days))
    per = rows.groupBy(*KEYS).agg(
        F.min("order_date").alias("first_order"), F.max("order_date").alias("last_order"),
        F.count(F.lit(1)).alias("orders"), F.sum("net").alias("monetary"),
        F.count(F.when(active, 1)).alias("orders_365d"),
        F.coalesce(F.sum(F.when(active, F.col("net"))), F.lit(0.0)).alias("spend_365d"),
        F.count(F.when(recent, 1)).alias("orders_30d"), F.count(F.when(base, 1)).alias("orders_base"),
        F.coalesce(F.sum(F.when(recent, F.col("net"))), F.lit(0.0)).alias("spend_30d"),
        F.coalesce(F.sum(F.when(base, F.col("net"))), F.lit(0.0)).alias("spend_base"),
        F.avg("gap").alias("mean_gap_days"), F.stddev_pop("gap").alias("std_gap_days"),
        F.sum("gross").alias("gross"), F.sum("discount").alias("discount"),
        *[F.count(F.when(F.col("channel") == c, 1)).alias(f"_n_{c}") for c in cfg.channels],
    ).where(F.col("orders_365d") > 0)
    per_month_recent = 30.0 / cfg.trend_days
    per_month_base = 30.0 / cfg.trend_base_days
    recency = F.datediff("as_of_date", "last_order")
    return per.select(
        *KEYS, "first_order",
        recency.alias("recency_days"),
        F.col("orders").cast("double").alias("orders"),
        F.col("orders_365d").cast("double").alias("orders_365d"),
        F.col("spend_365d").cast("double").alias("spend_365d"),
        (F.col("monetary") / F.col("orders")).alias("avg_order_value"),
        F.col("orders_30d").cast("double").alias("orders_30d"),
        (F.col("orders_30d") * per_month_recent - F.col("orders_base") * per_month_base).alias("order_trend"),
        (F.col("spend_30d") * per_month_recent - F.col("spend_base") * per_month_base).alias("spend_trend"),
        F.coalesce("mean_gap_days", F.lit(0.0)).alias("mean_gap_days"),
        F.coalesce("std_gap_days", F.lit(0.0)).alias("std_gap_days"),
        # How late the next order is against the person's own rhythm (1 for one-order persons).
        (recency / F.greatest(F.coalesce("mean_gap_days", F.datediff("as_of_date", "first_order")), F.lit(1.0))
         ).alias("overdue_ratio"),
        F.coalesce(F.try_divide("discount", "gross"), F.lit(0.0)).alias("discount_share"),
        *[(F.col(f"_n_{c}") / F.col("orders")).alias(f"share_{c}") for c in cfg.channels],
    )


def line_features(lines: DataFrame, dates: DataFrame) -> DataFrame:
    """(person_id, as_of_date, category_breadth): distinct categories bought up to the date."""
    rows = _upto(lines.select("person_id", F.to_date("order_ts").alias("order_date"), "category"), "order_date", dates)
    return rows.groupBy(*KEYS).agg(F.countDistinct("category").cast("double").alias("category_breadth"))


def session_features(sessions: DataFrame, dates: DataFrame, cfg: ModelSettings) -> DataFrame:
    """Sessions and engaged sessions in the last ``engagement_days``, days since the last session."""
    rows = _upto(sessions.where(F.col("person_id").isNotNull()).select(
        "person_id", F.to_date("session_start").alias("day"), "engaged"), "day", dates)
    recent = F.col("day") > _days_before(cfg.engagement_days)
    return rows.groupBy(*KEYS).agg(
        F.count(F.when(recent, 1)).cast("double").alias("sessions_90d"),
        F.count(F.when(recent & F.col("engaged"), 1)).cast("double").alias("engaged_sessions_90d"),
        F.datediff(F.col("as_of_date"), F.max("day")).alias("days_since_last_session"),
    )


def review_features(reviews: DataFrame, dates: DataFrame, cfg: ModelSettings) -> DataFrame:
    """Reviews in the last ``active_days``, mean review score, and its trend: the mean of the last
    ``sentiment_trend_days`` minus the mean of the ones before (null when either is empty)."""
    rows = _upto(reviews.where(F.col("person_id").isNotNull() & F.col("score").isNotNull()).select(
        "person_id", F.to_date("created_at").alias("day"), "score"), "day", dates)
    n = cfg.sentiment_trend_days
    recent = F.col("day") > _days_before(n)
    previous = (F.col("day") > _days_before(2 * n)) & ~recent
    return rows.groupBy(*KEYS).agg(
        F.count(F.when(F.col("day") > _days_before(cfg.active_days), 1)).cast("double").alias("reviews_365d"),
        F.avg("score").alias("sentiment_mean"),
        (F.avg(F.when(recent, F.col("score"))) - F.avg(F.when(previous, F.col("score")))).alias("sentiment_trend"),
    )


def features(purchases: DataFrame, lines: DataFrame | None, sessions: DataFrame | None,
             person: DataFrame | None, dates: DataFrame, cfg: ModelSettings,
             reviews: DataFrame | None = None) -> DataFrame:
    """One row per (person, as-of date) in the population, every feature non-null and double.

    ``purchases``: see ``value.purchases``; ``lines``: (person_id, order_ts, category);
    ``sessions``: (person_id, session_start, engaged); ``person``: (person_id, marketing_opt_in,
    first_registered_at); ``reviews``: (person_id, created_at, score) from ``review_sentiment``.
    Missing inputs give the neutral value (0, or ``active_days`` for days since the last session)
    so a dataset without clickstream or reviews still gets every feature.
    """
    out = order_features(purchases, dates, cfg)
    if lines is not None:
        out = out.join(line_features(lines, dates), KEYS, "left")
    else:
        out = out.withColumn("category_breadth", F.lit(None).cast("double"))
    if sessions is not None:
        out = out.join(session_features(sessions, dates, cfg), KEYS, "left")
    else:
        out = out.select("*", *[F.lit(None).cast(t).alias(c) for c, t in (
            ("sessions_90d", "double"), ("engaged_sessions_90d", "double"), ("days_since_last_session", "int"))])
    if reviews is not None:
        out = out.join(review_features(reviews, dates, cfg), KEYS, "left")
    else:
        out = out.select("*", *[F.lit(None).cast("double").alias(c)
                                for c in ("reviews_365d", "sentiment_mean", "sentiment_trend")])
    if cfg.btyd_model != "none":
        out = out.join(btyd_features.btyd_features(purchases, dates, cfg.btyd_model, cfg.churn.horizon_days,
                                                   cfg.btyd_max_iter), KEYS, "left")
    if person is not None:
        out = out.join(person.select("person_id", "marketing_opt_in", F.to_date("first_registered_at").alias("reg")),
                       "person_id", "left")
    else:
        out = out.select("*", F.lit(None).cast("boolean").alias("marketing_opt_in"), F.lit(None).cast("date").alias("reg"))
    registered = F.when(F.col("reg") <= F.col("as_of_date"), F.col("reg"))
    first_seen = F.least("first_order", registered)
    tenure = F.datediff("as_of_date", first_seen).cast("double")
    filled = {
        "tenure_days": tenure,
        # orders per 30 days since the person was first seen (a month's floor for new persons)
        "order_rate": F.col("orders") * 30.0 / F.greatest(tenure, F.lit(30.0)),
        # P(this long a silence | still buying at the person's own rate): a Poisson survival term,
        # the product of rate and recency that a shallow tree cannot form from either alone
        "silence_likelihood": F.exp(-F.col("orders") / F.greatest(tenure, F.lit(30.0)) * F.col("recency_days")),
        "recency_days": F.col("recency_days").cast("double"),
        "category_breadth": F.coalesce("category_breadth", F.lit(0.0)),
        "sessions_90d": F.coalesce("sessions_90d", F.lit(0.0)),
        "engaged_sessions_90d": F.coalesce("engaged_sessions_90d", F.lit(0.0)),
        "days_since_last_session": F.least(F.coalesce("days_since_last_session", F.lit(cfg.active_days)),
                                           F.lit(cfg.active_days)).cast("double"),
        "marketing_opt_in": F.coalesce(F.col("marketing_opt_in").cast("double"), F.lit(0.0)),
        "reviews_365d": F.coalesce("reviews_365d", F.lit(0.0)),
        "sentiment_mean": F.coalesce("sentiment_mean", F.lit(0.0)),
        "sentiment_trend": F.coalesce("sentiment_trend", F.lit(0.0)),
        # neutral when the date's fit failed (NaN from the fit counts as missing)
        "btyd_p_alive": F.coalesce(F.nanvl("btyd_p_alive", F.lit(None).cast("double")), F.lit(1.0)),
        "btyd_expected_purchases": F.coalesce(F.nanvl("btyd_expected_purchases", F.lit(None).cast("double")), F.lit(0.0)),
    }
    return out.select(*KEYS, *[filled.get(c, F.col(c).cast("double")).alias(c) for c in feature_names(cfg)])


def features_at(activity: "PersonActivity", dates: list[date], cfg: ModelSettings) -> DataFrame:
    """:func:`features` of ``activity`` (:class:`memberlake.inputs.PersonActivity`) at ``dates``."""
    frame = as_of_frame(activity.purchases.sparkSession, dates)
    return features(activity.purchases, activity.lines, activity.sessions, activity.person, frame, cfg,
                    activity.reviews)


def churn_labels(purchases: DataFrame, population: DataFrame, horizon_days: int) -> DataFrame:
    """``population`` (person_id, as_of_date, ...) plus ``churned`` (1.0 = no completed order in
    the ``horizon_days`` after the as-of date, the as-of day itself excluded)."""
    bought = purchases.select("person_id", "order_date").join(
        F.broadcast(population.select("as_of_date").distinct()),
        (F.col("order_date") > F.col("as_of_date")) & (F.col("order_date") <= F.date_add("as_of_date", horizon_days)),
        "inner").select(*KEYS).distinct().withColumn("_bought", F.lit(True))
    return population.join(bought, KEYS, "left").withColumn(
        "churned", F.when(F.col("_bought"), 0.0).otherwise(1.0)).drop("_bought")


def split_dates(last_day: date, horizon_days: int, train_dates: int, step_days: int) -> dict[str, list[date]]:
    """As-of dates of the train, validation and test splits, by time.

    The test date is the last one whose label window is fully observed (``last_day`` minus the
    horizon); validation is one horizon earlier, and the newest training date one horizon before
    validation, so no training label looks past the validation date and no validation label past
    the test date. Older training dates follow every ``step_days``.
    """
    test = last_day - timedelta(days=horizon_days)
    validation = test - timedelta(days=horizon_days)
    newest_train = validation - timedelta(days=horizon_days)
    train = [newest_train - timedelta(days=step_days * i) for i in range(train_dates)]
    return {"train": sorted(train), "validation": [validation], "test": [test]}

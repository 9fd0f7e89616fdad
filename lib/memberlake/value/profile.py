"""The member profile ("member portrait"): one row per person, features and tags.

Lifecycle stage comes from the person's own purchase rhythm: the expected gap is their mean
inter-purchase days (or ``default_gap_days`` after a single order), and
- new: first purchase within ``new_days``;
- active: recency <= active_factor x gap;
- at_risk: recency <= at_risk_factor x gap;
- churned: recency > churn_days; lapsed: everything in between.
Tags are SQL rules from config evaluated over the profile's columns.
"""
from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from memberlake.settings import ValueSettings


def top_values(df: DataFrame, key: str, value: str, weight: str, n: int, out: str) -> DataFrame:
    """(key, out): the ``n`` values of ``value`` with the largest total ``weight``.

    Ties go to the value seen most recently (``order_ts``), then to the smallest value.
    """
    totals = df.where(F.col(value).isNotNull()).groupBy(key, value).agg(
        F.sum(weight).alias("_w"), F.max("order_ts").alias("_latest"))
    order = Window.partitionBy(key).orderBy(F.col("_w").desc(), F.col("_latest").desc_nulls_last(), F.col(value))
    ranked = totals.withColumn("_n", F.row_number().over(order)).where(F.col("_n") <= n)
    return ranked.groupBy(key).agg(F.array_sort(F.collect_list(F.struct("_n", value))).alias("_s")).select(
        key, F.col("_s")[value].alias(out))


def mode(df: DataFrame, key: str, value: str, out: str) -> DataFrame:
    """(key, out): most frequent value per key; ties go to the most recent, then the largest value.

    Two aggregations and no window: counts per (key, value), then ``max_by`` per key.
    """
    counts = df.where(F.col(value).isNotNull()).groupBy(key, value).agg(
        F.count(F.lit(1)).alias("_c"), F.max("order_ts").alias("_latest"))
    return counts.groupBy(key).agg(F.max_by(value, F.struct("_c", "_latest", value)).alias(out))


def lifecycle(cfg: ValueSettings) -> Column:
    gap = F.coalesce(F.col("mean_interpurchase_days"), F.lit(float(cfg.default_gap_days)))
    r = F.col("recency_days")
    return (F.when(F.col("tenure_days") <= cfg.new_days, "new")
            .when(r <= gap * cfg.active_factor, "active")
            .when(r <= gap * cfg.at_risk_factor, "at_risk")
            .when(r > cfg.churn_days, "churned")
            .otherwise("lapsed"))


def age_band(birth_date: Column, as_of: date, bands: list[int]) -> Column:
    age = F.floor(F.months_between(F.lit(as_of), birth_date) / 12)
    edges = sorted(bands)
    expr = F.lit(f"{edges[-1]}+")
    for lo, hi in reversed(list(zip(edges[:-1], edges[1:], strict=True))):
        expr = F.when(age < hi, F.lit(f"{lo}-{hi - 1}")).otherwise(expr)
    return F.when(birth_date.isNull(), None).when(age < edges[0], F.lit(f"<{edges[0]}")).otherwise(expr)


def profiles(rfm: DataFrame, purchases: DataFrame, lines: DataFrame, person: DataFrame | None, as_of: date,
             cfg: ValueSettings) -> DataFrame:
    """One row per person with RFM: demographics, lifecycle, tier, preferences, price sensitivity.

    ``lines`` are (person_id, order_ts, category, brand, gross, discount) purchase lines.
    """
    n = cfg.top_preferences
    tier = F.lit("bronze")
    for score, name in sorted(cfg.value_tiers.items()):
        tier = F.when(F.col("m_score") >= score, F.lit(name)).otherwise(tier)
    prefs = (top_values(lines, "person_id", "category", "gross", n, "preferred_categories")
             .join(top_values(lines, "person_id", "brand", "gross", n, "preferred_brands"), "person_id", "full"))
    price = lines.groupBy("person_id").agg(
        F.try_divide(F.sum(F.when(F.col("discount") > 0, F.col("gross")).otherwise(0)), F.sum("gross")).alias(
            "discounted_spend_share"))
    timing = purchases.select("person_id", "order_ts", "channel", F.date_format("order_ts", "EEEE").alias("weekday"),
                              F.hour("order_ts").alias("hour"))
    out = (rfm.join(prefs, "person_id", "left").join(price, "person_id", "left")
           .join(mode(timing, "person_id", "channel", "preferred_channel"), "person_id", "left")
           .join(mode(timing, "person_id", "weekday", "preferred_weekday"), "person_id", "left")
           .join(mode(timing, "person_id", "hour", "preferred_hour"), "person_id", "left")
           .withColumn("lifecycle_stage", lifecycle(cfg)).withColumn("value_tier", tier))
    if person is not None:
        demo = person.select("person_id", age_band(F.col("birth_date"), as_of, cfg.age_bands).alias("age_band"),
                             "gender", F.col("state").alias("region"), "country", "marketing_opt_in")
        out = out.join(demo, "person_id", "left")
    else:
        out = out.select("*", *[F.lit(None).cast(t).alias(c) for c, t in (
            ("age_band", "string"), ("gender", "string"), ("region", "string"), ("country", "string"),
            ("marketing_opt_in", "boolean"))])
    return out


def engagement(sessions: DataFrame, as_of: date, days: int = 90) -> DataFrame:
    """(person_id, sessions_90d, engaged_session_share, days_since_last_session) up to ``as_of``.

    From the clickstream sessions table: sessions that started in the ``days`` days up to the
    as-of date, the share of them that were engaged, and days since the last session at all.
    """
    end = F.lit(as_of + timedelta(days=1)).cast("timestamp")
    start = F.lit(as_of - timedelta(days=days - 1)).cast("timestamp")
    upto = sessions.where(F.col("session_start") < end)
    recent = (F.col("session_start") >= start)
    return upto.groupBy("person_id").agg(
        F.count(F.when(recent, 1)).alias(f"sessions_{days}d"),
        F.try_divide(F.count(F.when(recent & F.col("engaged"), 1)), F.count(F.when(recent, 1))).alias(
            "engaged_session_share"),
        F.datediff(F.lit(as_of), F.max(F.col("session_start").cast("date"))).alias("days_since_last_session"),
    )


def with_engagement(profile: DataFrame, sessions: DataFrame | None, as_of: date) -> DataFrame:
    """Profile plus engagement columns (zero / null for persons without sessions, or no sessions table)."""
    if sessions is None:
        return profile.select("*", F.lit(0).cast("long").alias("sessions_90d"),
                              F.lit(None).cast("double").alias("engaged_session_share"),
                              F.lit(None).cast("int").alias("days_since_last_session"))
    joined = profile.join(engagement(sessions, as_of), "person_id", "left")
    return joined.withColumn("sessions_90d", F.coalesce("sessions_90d", F.lit(0)))


def with_tags(profile: DataFrame, tags: dict[str, str]) -> DataFrame:
    """``tags``: sorted names of the rules a person satisfies (a null rule result is no tag)."""
    if not tags:
        return profile.withColumn("tags", F.array().cast("array<string>"))
    from memberlake.exprs import labels

    return profile.withColumn("tags", labels([F.when(F.expr(rule), F.lit(name)) for name, rule in sorted(tags.items())]))


def tag_coverage(profile: DataFrame, tags: dict[str, str], as_of: date) -> DataFrame:
    total = F.count(F.lit(1))
    exploded = profile.select(F.explode("tags").alias("tag"))
    counts = exploded.groupBy("tag").agg(F.count(F.lit(1)).alias("persons"))
    n = profile.agg(total.alias("n"))
    names = profile.sparkSession.createDataFrame([(t,) for t in sorted(tags)] or [("",)], "tag string").where("tag != ''")
    return (names.join(counts, "tag", "left").crossJoin(n)
            .select(F.lit(as_of).alias("as_of_date"), "tag", F.coalesce("persons", F.lit(0)).alias("persons"),
                    (F.coalesce("persons", F.lit(0)) / F.col("n")).alias("share")))

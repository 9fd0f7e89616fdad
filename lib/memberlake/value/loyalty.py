"""The loyalty index: what a person does, is worth, engages with and says, in one 0-100 figure.

Five components, each in [0, 1], combined as a weighted mean (``value.loyalty.weights``) over the
components a person has; a missing component (no reviews, no sessions table, no order lines)
is left out and the other weights rescaled, rather than guessed.

- **repeat**: the frequency score ((f_score - 1) / 4), tenure against the median tenure
  (t / (t + median): 0.5 at the median, saturating), and regularity of inter-purchase gaps
  (1 / (1 + coefficient of variation); needs three purchase days).
- **value**: the recency and monetary scores ((score - 1) / 4), and with CLV, P(alive) and CLV
  against its median.
- **engagement**: sessions in the last 90 days against their median, and the engaged share.
- **breadth**: distinct categories bought against their median.
- **sentiment**: 0.7 x the review level ((mean + 1) / 2) + 0.3 x the trend ((trend + 1) / 2),
  the level alone without a trend. Reviews up to the as-of date only.

Medians are one approximate-percentile aggregation each (no global sort); every step is a
column expression or a per-person aggregation. Tiers: ``value.loyalty.tiers``, the highest
whose floor the index reaches.
"""
from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from memberlake.settings import LoyaltySettings

COMPONENTS = ("repeat", "value", "engagement", "breadth", "sentiment")


def _mean(*cols: Column) -> Column:
    """Mean of the non-null columns; null when all are null."""
    total = sum((F.coalesce(c, F.lit(0.0)) for c in cols), F.lit(0.0))
    count = sum((c.isNotNull().cast("int") for c in cols), F.lit(0))
    return F.when(count > 0, total / count)


def _saturating(col: str, median: float | None) -> Column:
    """x / (x + median): 0.5 at the median, 0 at 0, towards 1 far above; null when x is."""
    if not median or median <= 0:
        return F.when(F.col(col).isNotNull(), F.when(F.col(col) > 0, F.lit(1.0)).otherwise(F.lit(0.0)))
    x = F.greatest(F.col(col).cast("double"), F.lit(0.0))   # greatest() skips nulls: guard them
    return F.when(F.col(col).isNotNull(), x / (x + F.lit(float(median))))


def regularity(purchases: DataFrame) -> DataFrame:
    """(person_id, regularity): 1 / (1 + CV of the gaps between purchase days), 3+ days only."""
    days = purchases.select("person_id", "order_date").distinct()
    gap = F.datediff("order_date", F.lag("order_date").over(Window.partitionBy("person_id").orderBy("order_date")))
    gaps = days.select("person_id", gap.alias("gap")).where(F.col("gap").isNotNull())
    per = gaps.groupBy("person_id").agg(F.count(F.lit(1)).alias("n"), F.avg("gap").alias("m"),
                                        F.stddev_pop("gap").alias("s"))
    return per.where("n >= 2").select("person_id", (1.0 / (1.0 + F.col("s") / F.col("m"))).alias("regularity"))


def sentiment_component(level: Column, trend: Column) -> Column:
    lvl = (level + 1.0) / 2.0
    tr = (F.least(F.greatest(trend, F.lit(-1.0)), F.lit(1.0)) + 1.0) / 2.0
    return F.when(level.isNull(), F.lit(None).cast("double")).when(trend.isNull(), lvl).otherwise(0.7 * lvl + 0.3 * tr)


def _medians(df: DataFrame, cols: list[str]) -> dict[str, float | None]:
    present = [c for c in cols if c in df.columns]
    if not present:
        return {}
    row = df.agg(*[F.percentile_approx(F.col(c).cast("double"), 0.5, 1000).alias(c) for c in present]).first()
    return {c: row[c] for c in present}


def loyalty(rfm: DataFrame, purchases: DataFrame, categories: DataFrame | None, engagement: DataFrame | None,
            clv: DataFrame | None, sentiment: DataFrame | None, as_of: date, cfg: LoyaltySettings) -> DataFrame:
    """One row per person of ``rfm``: the five components, the index and the tier.

    ``categories``: (person_id, categories) distinct categories bought; ``engagement``: (person_id,
    sessions_90d, engaged_session_share); ``clv``: (person_id, p_alive, clv); ``sentiment``:
    (person_id, mean_score, trend). Each may be None.
    """
    df = rfm.select("person_id", "r_score", "f_score", "m_score", "tenure_days").join(
        regularity(purchases), "person_id", "left")
    for part in (categories, engagement, clv, sentiment):
        if part is not None:
            df = df.join(part, "person_id", "left")
    df = df.localCheckpoint()
    med = _medians(df, ["tenure_days", "categories", "sessions_90d", "clv"])

    def score(col: str) -> Column:
        return (F.col(col) - 1) / 4.0

    parts: dict[str, Column] = {
        "repeat": _mean(score("f_score"), _saturating("tenure_days", med.get("tenure_days")), F.col("regularity")),
        "value": _mean(score("r_score"), score("m_score"),
                       *([F.col("p_alive"), _saturating("clv", med.get("clv"))] if clv is not None else [])),
        "engagement": (_mean(_saturating("sessions_90d", med.get("sessions_90d")), F.col("engaged_session_share"))
                       if engagement is not None else F.lit(None).cast("double")),
        "breadth": (_saturating("categories", med.get("categories")) if categories is not None
                    else F.lit(None).cast("double")),
        "sentiment": (sentiment_component(F.col("mean_score"), F.col("trend")) if sentiment is not None
                      else F.lit(None).cast("double")),
    }
    weights = cfg.weights
    weighted = sum((F.coalesce(parts[c], F.lit(0.0)) * weights[c] for c in COMPONENTS), F.lit(0.0))
    available = sum((F.when(parts[c].isNotNull(), F.lit(weights[c])).otherwise(F.lit(0.0)) for c in COMPONENTS),
                    F.lit(0.0))
    index = F.round(F.lit(100.0) * weighted / available, 2)
    tier = None
    for name, floor in sorted(cfg.tiers.items(), key=lambda kv: -kv[1]):
        tier = F.when(F.col("loyalty_index") >= floor, F.lit(name)) if tier is None else tier.when(
            F.col("loyalty_index") >= floor, F.lit(name))
    out = df.select("person_id", *[parts[c].cast("double").alias(f"{c}_component") for c in COMPONENTS],
                    index.alias("loyalty_index"))
    return out.select(F.lit(as_of).alias("as_of_date"), "*", tier.alias("loyalty_tier"))


def category_breadth(lines: DataFrame, as_of: date) -> DataFrame:
    """(person_id, categories): distinct categories bought up to the as-of date."""
    end = F.lit(as_of + timedelta(days=1)).cast("timestamp")
    return (lines.where(F.col("category").isNotNull() & (F.col("order_ts") < end))
            .groupBy("person_id").agg(F.countDistinct("category").cast("double").alias("categories")))

"""Multi-touch attribution of conversions to channels and campaigns.

A conversion is a converting session; its touchpoints are the same person's sessions that
started within ``lookback_days`` before it (itself included), in (session_start, session_id)
order. Rule-based models give each touchpoint a weight; every conversion's weights sum to 1,
so per model the attributed conversions and revenue add up exactly to the totals:

- first_touch / last_touch: all to the first / last touchpoint;
- last_non_direct: all to the last touchpoint whose channel is not ``direct`` (the last one if all are);
- linear: 1/n each;
- time_decay: proportional to 2^(-age / half-life), age = conversion start - touch start;
- position_based: 40% first, 40% last, 20% shared by the middle (50/50 for two, 100% for one).

The Markov model (order k) learns transition probabilities between channel states from the
paths of converting persons (touchpoints of each conversion, ending in ``(conversion)``) and of
persons who never converted (their sessions within the lookback before their last one, ending in
``(null)``). Transition counts are a Spark aggregation; the absorbing chain, a few dozen states,
is solved on the driver. A channel's removal effect is the relative drop in conversion probability
when every state containing it leads to ``(null)``; conversions and revenue are shared in
proportion to the removal effects.
"""
from __future__ import annotations

from functools import reduce

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
RULE_MODELS = ["first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based"]


def touchpoints(sessions: DataFrame, lookback_days: float) -> DataFrame:
    """(conversion_id, revenue, person_id, touch_id, channel, campaign, pos, n, age_s) per touch."""
    conv = sessions.where("converted").select(
        "person_id", F.col("session_id").alias("conversion_id"), F.col("session_start").alias("conv_ts"), "revenue")
    touches = sessions.select("person_id", F.col("session_id").alias("touch_id"),
                              F.col("session_start").alias("touch_ts"), "channel", "campaign")
    age = F.col("conv_ts").cast("double") - F.col("touch_ts").cast("double")
    joined = conv.join(touches, "person_id").withColumn("age_s", age).where(
        (F.col("age_s") >= 0) & (F.col("age_s") <= lookback_days * 86400))
    ordered = Window.partitionBy("conversion_id").orderBy("touch_ts", "touch_id")
    whole = Window.partitionBy("conversion_id")
    return joined.select("*", F.row_number().over(ordered).alias("pos"), F.count(F.lit(1)).over(whole).alias("n"))


def rule_weights(touches: DataFrame, half_life_days: float) -> DataFrame:
    """touches plus one weight column per rule-based model."""
    whole = Window.partitionBy("conversion_id")
    pos, n = F.col("pos"), F.col("n")
    last_non_direct = F.coalesce(F.max(F.when(F.col("channel") != "direct", pos)).over(whole), n)
    decay = F.pow(F.lit(2.0), -F.col("age_s") / (half_life_days * 86400))
    position = (F.when(n == 1, 1.0).when(n == 2, 0.5).when((pos == 1) | (pos == n), 0.4)
                .otherwise(0.2 / (n - 2)))
    return touches.select(
        "*",
        F.when(pos == 1, 1.0).otherwise(0.0).alias("first_touch"),
        F.when(pos == n, 1.0).otherwise(0.0).alias("last_touch"),
        F.when(pos == last_non_direct, 1.0).otherwise(0.0).alias("last_non_direct"),
        (1.0 / n).alias("linear"),
        (decay / F.sum(decay).over(whole)).alias("time_decay"),
        position.alias("position_based"),
    )


def rule_based(sessions: DataFrame, lookback_days: float, half_life_days: float) -> DataFrame:
    """(model, channel, campaign, conversions, revenue) for every rule-based model."""
    weighted = rule_weights(touchpoints(sessions, lookback_days), half_life_days)
    stacked = reduce(DataFrame.unionByName, [
        weighted.select(F.lit(m).alias("model"), "channel", "campaign", F.col(m).alias("w"), "revenue")
        for m in RULE_MODELS])
    return stacked.groupBy("model", "channel", "campaign").agg(
        F.sum("w").alias("conversions"), F.sum(F.col("w") * F.col("revenue")).alias("revenue"))


def journeys(sessions: DataFrame, lookback_days: float) -> DataFrame:
    """(journey_id, pos, channel, outcome): converting and non-converting channel paths."""
    converting = touchpoints(sessions, lookback_days).select(
        F.col("conversion_id").alias("journey_id"), "pos", "channel", F.lit(CONVERSION).alias("outcome"))
    converters = sessions.where("converted").select("person_id").distinct()
    others = sessions.join(converters, "person_id", "left_anti")
    last = Window.partitionBy("person_id")
    window = others.withColumn("_last", F.max("session_start").over(last)).where(
        F.col("session_start").cast("double") >= F.col("_last").cast("double") - lookback_days * 86400)
    ordered = Window.partitionBy("person_id").orderBy("session_start", "session_id")
    non = window.select(F.col("person_id").alias("journey_id"), F.row_number().over(ordered).alias("pos"), "channel",
                        F.lit(NULL).alias("outcome"))
    return converting.unionByName(non)


def transition_counts(paths: DataFrame, order: int = 1) -> DataFrame:
    """(from_state, to_state, transitions): states are the last ``order`` channels joined by ' > '."""
    w = Window.partitionBy("journey_id").orderBy("pos")
    state = F.concat_ws(" > ", F.collect_list("channel").over(w.rowsBetween(-(order - 1), 0)))
    steps = paths.select("journey_id", "pos", "outcome", state.alias("state"))
    prev = F.coalesce(F.lag("state").over(w), F.lit(START))
    moves = steps.select("journey_id", "pos", "outcome", "state", prev.alias("from_state"))
    last = Window.partitionBy("journey_id")
    ends = moves.withColumn("_n", F.max("pos").over(last)).where(F.col("pos") == F.col("_n")).select(
        F.col("state").alias("from_state"), F.col("outcome").alias("to_state"))
    inner = moves.select("from_state", F.col("state").alias("to_state"))
    return inner.unionByName(ends).groupBy("from_state", "to_state").agg(F.count(F.lit(1)).alias("transitions"))


def conversion_probability(counts: list[tuple[str, str, int]], removed: str | None = None) -> float:
    """P(reaching conversion from start) in the absorbing chain, optionally without one channel."""
    states = sorted({s for f, t, _ in counts for s in (f, t)} - {CONVERSION, NULL})
    index = {s: i for i, s in enumerate(states)}
    n = len(states)
    q, r = np.zeros((n, n)), np.zeros(n)
    totals: dict[str, int] = {}
    for f, _, c in counts:
        totals[f] = totals.get(f, 0) + c
    for f, t, c in counts:
        if removed is not None and removed in f.split(" > "):
            continue                                  # a removed state leads nowhere: (null)
        p = c / totals[f]
        if t == CONVERSION:
            r[index[f]] += p
        elif t != NULL:
            if removed is not None and removed in t.split(" > "):
                continue
            q[index[f], index[t]] += p
    solution = np.linalg.solve(np.eye(n) - q, r)
    return float(solution[index[START]]) if START in index else 0.0


def markov(paths: DataFrame, order: int = 1) -> tuple[DataFrame, list[tuple[str, float, float]]]:
    """Transition table and (channel, removal effect, share) from the journeys."""
    counts_df = transition_counts(paths, order).localCheckpoint()
    counts = [(r.from_state, r.to_state, int(r.transitions)) for r in counts_df.collect()]   # states x states
    base = conversion_probability(counts)
    channels = sorted({c for f, t, _ in counts for s in (f, t) for c in s.split(" > ")} - {START, CONVERSION, NULL})
    effects = {c: (1 - conversion_probability(counts, c) / base) if base > 0 else 0.0 for c in channels}
    total = sum(effects.values())
    rows = [(c, e, e / total if total > 0 else 0.0) for c, e in effects.items()]
    totals = Window.partitionBy("from_state")
    table = counts_df.select("*", (F.col("transitions") / F.sum("transitions").over(totals)).alias("probability"))
    return table, rows


def markov_attribution(sessions: DataFrame, shares: list[tuple[str, float, float]]) -> DataFrame:
    """(model='markov', channel, campaign=null, conversions, revenue) from the removal-effect shares."""
    spark = sessions.sparkSession
    totals = sessions.where("converted").agg(F.count(F.lit(1)).alias("c"), F.sum("revenue").alias("r"))
    share = spark.createDataFrame([(c, float(s)) for c, _, s in shares] or [("", 0.0)], "channel string, share double")
    return share.where("channel != ''").crossJoin(totals).select(
        F.lit("markov").alias("model"), "channel", F.lit(None).cast("string").alias("campaign"),
        (F.col("share") * F.col("c")).alias("conversions"), (F.col("share") * F.col("r")).alias("revenue"))

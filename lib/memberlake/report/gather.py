"""The report's sections, each computed from gold tables in Spark down to a few rows.

A section whose tables are absent (an entity missing from the landing zone, a job not run yet)
says so instead of failing: the report describes whatever the lakehouse holds.
"""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.exprs import mask_text
from memberlake.io.delta import Lakehouse
from memberlake.ops.runs import Run
from memberlake.report import render as R
from memberlake.report.render import Section
from memberlake.thresholds import labelled_thresholds, reviewable

log = logging.getLogger(__name__)
TOP = 15
# Row counts in the overview (`memberlake tables` lists every table).
OVERVIEW_TABLES = [*(Tables.silver(e) for e in ("members", "orders", "order_items", "products", "events", "reviews")),
                   Tables.QUARANTINE, Tables.PERSON, Tables.IDENTITY_GRAPH, Tables.SESSIONS, Tables.RFM,
                   Tables.MEMBER_PROFILE, Tables.SEGMENTS, Tables.CHURN_SCORES, Tables.BASKET_RULES,
                   Tables.BASKET_RECOMMENDATIONS]


class Tables_:
    """Reads optional tables (None when absent), recording the Delta version of each in the run."""

    def __init__(self, spark: SparkSession, lake: Lakehouse, run: Run | None = None) -> None:
        self.spark, self.lake, self.run = spark, lake, run
        self.names = set(lake.table_names())

    def get(self, name: str) -> DataFrame | None:
        if name not in self.names:
            return None
        if self.run is not None:
            self.run.record_read(name, version=self.lake.version(name))
        return self.lake.read(name)

    def need(self, section: Section, name: str, missing: str) -> DataFrame | None:
        """The table, or None with ``missing`` noted in the section."""
        df = self.get(name)
        if df is None:
            section.notes.append(missing)
        return df


def _latest(df: DataFrame, column: str = "as_of_date") -> DataFrame:
    last = df.agg(F.max(column)).first()[0]
    return df.where(F.col(column) == F.lit(last))


def overview(t: Tables_) -> Section:
    s = Section("overview", "Overview")
    counts = [(name, t.get(name).count()) for name in OVERVIEW_TABLES if name in t.names]
    for label, name in (("members (golden records)", Tables.PERSON), ("orders", Tables.silver("orders")),
                        ("sessions", Tables.SESSIONS)):
        found = dict(counts).get(name)
        if found is not None:
            s.figure(label, found)
    s.table("Main tables (rows; `memberlake tables` lists all)", ["table", "rows"], counts)
    runs = t.get(Tables.JOB_RUNS)
    if runs is not None:
        w = Window.partitionBy("job").orderBy(F.col("started_at").desc())
        last = (runs.withColumn("_n", F.row_number().over(w)).where("_n = 1")
                .orderBy("started_at").select("job", "status", "duration_s", "started_at").collect())
        s.table("Last run of each job", ["job", "status", "seconds", "started (UTC)"],
                [(r.job, r.status, float(r.duration_s), r.started_at.strftime("%Y-%m-%d %H:%M")) for r in last])
    return s


def data_quality(t: Tables_) -> Section:
    s = Section("quality", "Data quality")
    quarantine = t.get(Tables.QUARANTINE)
    if quarantine is None:
        s.notes.append("No quarantine table: no rows have been rejected.")
    else:
        by = (quarantine.select("entity", F.explode("reasons").alias("reason")).groupBy("entity", "reason")
              .count().orderBy(F.desc("count")).limit(TOP).collect())
        s.figure("quarantined rows", quarantine.count())
        if by:
            s.chart("quarantine_reasons", "Quarantined rows by entity and reason (a row can have several)",
                    R.bar([f"{r.entity}: {r.reason}" for r in by], [r["count"] for r in by], "Quarantine reasons",
                          "rows"))
    dq = t.get(Tables.DQ_METRICS)
    if dq is not None:
        comp = (dq.where("metric = 'completeness'").withColumn(
            "_n", F.row_number().over(Window.partitionBy("table", "column").orderBy(F.desc("measured_at"))))
            .where("_n = 1").orderBy("value").limit(TOP).select("table", "column", "value").collect())
        s.table("Least complete columns (latest run, share non-null)", ["table", "column", "completeness"],
                [(r.table, r.column, float(r.value)) for r in comp])
    return s


def identity(t: Tables_) -> Section:
    s = Section("identity", "Identity")
    graph = t.need(s, Tables.IDENTITY_GRAPH, "identity_graph not found: run `memberlake identity`.")
    if graph is None:
        return s
    graph = graph.cache()
    s.figure("persons (members, guests, visitors)", graph.select("person_id").distinct().count())
    s.figure("identifiers", graph.count())
    by_type = graph.groupBy("id_type").count().orderBy(F.desc("count")).collect()
    s.chart("identifiers_by_type", "Identifiers in the graph by type",
            R.bar([r.id_type for r in by_type], [r["count"] for r in by_type], "Identifiers by type", "identifiers"))
    records = (graph.groupBy("person_id").agg(F.count(F.when(F.col("id_type") == "member", 1)).alias("n"))
               .withColumn("bucket", F.when(F.col("n") >= 5, "5+").otherwise(F.col("n").cast("string")))
               .groupBy("bucket").count().orderBy("bucket").collect())
    s.chart("member_records_per_person", "Persons by number of member records merged into them",
            R.bar([r.bucket for r in records], [r["count"] for r in records], "Member records per person",
                  "persons", horizontal=False))
    largest = (graph.groupBy("person_id").agg(F.max("component_size").alias("size"),
                                               F.count(F.when(F.col("id_type") == "member", 1)).alias("members"))
               .orderBy(F.desc("size")).limit(10).collect())
    s.table("Largest clusters", ["person_id", "identifiers", "member records"],
            [(r.person_id, r["size"], r.members) for r in largest])
    history = t.get(Tables.PERSON_ID_HISTORY)
    if history is not None:
        changes = history.groupBy("change").count().orderBy("change").collect()
        s.table("Person id changes over all runs", ["change", "ids"], [(r.change, r["count"]) for r in changes])
    graph.unpersist()
    _match_weights(t, s)
    return s


def _match_weights(t: Tables_, s: Section) -> None:
    """The candidate pairs' match weights with the threshold, and precision/recall on reviewed pairs."""
    pairs = t.get(Tables.MATCH_PAIRS)
    if pairs is None:
        return
    params = t.get(Tables.MATCH_PARAMETERS)
    # the accepted pair with the lowest weight marks where the threshold cut
    cut = pairs.where("accepted").agg(F.min("match_weight")).first()[0]
    bins = (pairs.groupBy(F.floor("match_weight").cast("int").alias("w")).count().orderBy("w").collect())
    if bins:
        label = f"lowest accepted weight {cut:.1f}" if cut is not None else ""
        s.chart("match_weights", "Candidate pairs by match weight (log2 odds incl. prior; log scale) and where "
                "acceptance starts; a valley between the two humps is where a threshold belongs",
                R.histogram([r.w for r in bins], [r["count"] for r in bins], "Match weights of candidate pairs",
                            "match weight (bits)", marker=cut, marker_label=label))
    if params is not None:
        prior = params.agg(F.max("prior")).first()[0]
        if prior is not None:
            s.figure("share of candidate pairs that are matches (EM)", round(float(prior), 4))
    labels = t.get(Tables.IDENTITY_LABELS)
    if labels is None:
        return
    out = labelled_thresholds(reviewable(pairs), labels, 0.5)   # a vetoed pair: accepted at no threshold
    rows = [(round(r["weight"], 2), round(r["probability"], 4), r["tp"], r["fp"], r["fn"], round(r["precision"], 4),
             round(r["recall"], 4), round(r["f1"], 4)) for r in out["curve"][:: max(1, len(out["curve"]) // 12)]]
    s.table(f"Precision and recall on {out['labelled_pairs']} reviewed pairs (identity_labels) by threshold",
            ["weight ≥", "probability ≥", "true +", "false +", "false −", "precision", "recall", "F1"], rows)


def sessions(t: Tables_) -> Section:
    s = Section("sessions", "Sessions and channels")
    df = t.need(s, Tables.SESSIONS, "No sessions: the landing zone has no clickstream, or `memberlake sessions` has not run.")
    if df is None:
        return s
    agg = df.agg(F.count(F.lit(1)).alias("n"), F.avg(F.col("converted").cast("double")).alias("conv"),
                 F.avg(F.col("bounce").cast("double")).alias("bounce")).first()
    s.figure("sessions", agg.n)
    s.figure("conversion rate", agg.conv)
    s.figure("bounce rate", agg.bounce)
    by = (df.groupBy("channel").agg(F.count(F.lit(1)).alias("n"), F.avg(F.col("converted").cast("double")).alias("conv"),
                                    F.sum("revenue").alias("revenue"))
          .orderBy(F.desc("n")).limit(TOP).collect())
    labels = [r.channel or "(none)" for r in by]
    s.chart("sessions_by_channel", "Sessions by channel", R.bar(labels, [r.n for r in by], "Sessions by channel", "sessions"))
    s.chart("conversion_by_channel", "Conversion rate by channel",
            R.bar(labels, [float(r.conv or 0) for r in by], "Conversion rate by channel", "share of sessions"))
    pages = t.get(Tables.TOP_LANDING_PAGES)
    if pages is not None:
        rows = pages.orderBy(F.desc("sessions")).limit(10).collect()
        s.table("Top landing pages", ["landing page", "sessions", "bounce rate", "conversion rate"],
                [(r.landing_page, r.sessions, float(r.bounce_rate or 0), float(r.conversion_rate or 0)) for r in rows])
    return s


def attribution(t: Tables_) -> Section:
    s = Section("attribution", "Marketing attribution")
    df = t.need(s, Tables.ATTRIBUTION, "No attribution table (needs sessions with conversions).")
    if df is None:
        return s
    rows = df.groupBy("model", "channel").agg(F.sum("revenue").alias("revenue")).collect()
    models = sorted({r.model for r in rows})
    totals = {m: sum(float(r.revenue or 0) for r in rows if r.model == m) or 1.0 for m in models}
    channels = sorted({r.channel for r in rows if r.channel is not None})
    share = {m: [sum(float(r.revenue or 0) for r in rows if r.model == m and r.channel == c) / totals[m]
                 for c in channels] for m in models}
    s.chart("attribution_by_model", "Share of attributed revenue per channel, by attribution model",
            R.grouped_bar(channels, share, "Revenue share by channel and model", "share of revenue"))
    return s


def rfm(t: Tables_) -> Section:
    s = Section("rfm", "RFM segments")
    df = t.need(s, Tables.RFM, "rfm not found: run `memberlake value`.")
    if df is None:
        return s
    latest = _latest(df)
    sizes = latest.groupBy("segment").count().orderBy(F.desc("count")).collect()
    day = latest.select("as_of_date").first()
    s.figure("as of", str(day[0]) if day else None)
    s.figure("persons scored", sum(r["count"] for r in sizes))
    s.chart("rfm_segments", "Persons per RFM segment (latest as-of date)",
            R.bar([r.segment for r in sizes], [r["count"] for r in sizes], "RFM segment sizes", "persons"))
    migration = t.get(Tables.RFM_SEGMENT_MIGRATION)
    if migration is not None and migration.limit(1).count():
        last = _latest(migration, "as_of_date").collect()
        segs = sorted({r.from_segment for r in last if r.from_segment} | {r.to_segment for r in last if r.to_segment})
        matrix = [[float(sum(r.persons for r in last if r.from_segment == a and r.to_segment == b)) for b in segs]
                  for a in segs]
        s.chart("rfm_migration", f"Segment migration {last[0].from_date} → {last[0].as_of_date} (rows: from, columns: to)",
                R.heatmap(segs, segs, matrix, "RFM segment migration", center=False))
    return s


def lifetime_value(t: Tables_) -> Section:
    s = Section("clv", "Customer lifetime value")
    params = t.get(Tables.CLV_PARAMETERS)
    values = t.get(Tables.CLV)
    if params is None or values is None:
        s.notes.append("No CLV yet: `memberlake value` fits it once there are enough repeat buyers.")
        return s
    full = _latest(params).where("fit = 'full'").orderBy("model", "parameter").collect()   # < 10 rows
    if full:
        s.figure("transaction model", next((r.model for r in full if r.model != "gamma_gamma"), None))
    from memberlake.btyd import MODELS, SHAPE_LIMIT, at_bound  # here: scipy only for a report with CLV

    # the shapes that ended at the optimiser's bound, by the fit's own test (Gamma-Gamma has none)
    fitted = {(r.model, r.parameter): r.value for r in full}
    bounded = [(model, p) for model, spec in MODELS.items() if all((model, q) in fitted for q in spec.parameters)
               for p in at_bound({q: fitted[model, q] for q in spec.parameters}, spec.upper())]
    has_se = "std_error" in params.columns
    s.table("Fitted parameters (time in days) and standard errors", ["model", "parameter", "value", "standard error"],
            [(r.model, r.parameter, r.value,
              r.std_error if has_se and (r.model, r.parameter) not in bounded else None) for r in full])
    for model, p in bounded:
        s.notes.append(f"{model}: {p} is at its upper bound ({SHAPE_LIMIT:,.0f}): the rates it mixes "
                       "hardly vary between persons, and the fit stands for the limit where they do not vary. "
                       f"{p} is held there, so it has no standard error and the intervals do not vary it "
                       "(docs/value.md, \"Shapes at their bound\").")
    latest = _latest(values)
    measures = [c for c in ("p_alive", "expected_purchases", "clv") if f"{c}_lower" in latest.columns]
    if not measures:
        return s
    medians = latest.select(*[F.percentile_approx(F.col(c), 0.5).alias(c) for m in measures
                              for c in (m, f"{m}_lower", f"{m}_upper")],
                            F.count(F.col("clv_lower")).alias("with")).first()
    s.figure("persons with intervals", medians["with"])
    s.table("Per-person intervals from parameter uncertainty (medians over persons)",
            ["measure", "median", "median lower bound", "median upper bound"],
            [(m, medians[m], medians[f"{m}_lower"], medians[f"{m}_upper"]) for m in measures])
    return s


def clusters(t: Tables_) -> Section:
    s = Section("clusters", "Behavioural clusters")
    df = t.need(s, Tables.SEGMENT_PROFILE, "segment_profile not found: run `memberlake models`.")
    if df is None:
        return s
    rows = _latest(df).collect()
    if not rows:
        return s
    ids = sorted({int(r.cluster) for r in rows})
    features = sorted({r.feature for r in rows})
    persona = {int(r.cluster): r.persona for r in rows}
    z = [[next((float(r.z) for r in rows if int(r.cluster) == c and r.feature == f), 0.0) for f in features] for c in ids]
    s.chart("cluster_profiles", "Feature means per cluster as z-scores against the population",
            R.heatmap([f"{c}: {persona[c]}" for c in ids], features, z, "Cluster profiles (z)"))
    size = {int(r.cluster): (int(r.persons), float(r.share)) for r in rows}
    s.table("Clusters", ["cluster", "persona", "persons", "share"], [(c, persona[c], *size[c]) for c in ids])
    return s


def churn(t: Tables_) -> Section:
    s = Section("churn", "Churn risk")
    metrics = t.get(Tables.CHURN_METRICS)
    roc = t.get(Tables.CHURN_ROC)
    if metrics is None:
        s.notes.append("No churn model yet: `memberlake models` needs enough order history for its time splits.")
    else:
        latest = _latest(metrics).where("split = 'test'").collect()
        values = {(r.model, r.metric): float(r.value) for r in latest}
        # the model's own row: not a baseline (``*_only``) and not the score before the refit
        auc = next((v for (m, k), v in values.items()
                    if k == "roc_auc" and not m.endswith("_only") and not m.endswith("before refit")), None)
        s.figure("test ROC AUC", auc)
        for (m, k), v in sorted(values.items()):
            if k == "roc_auc" and m.endswith("_only"):
                s.figure(f"{m.removesuffix('_only').replace('_', ' ')}-only ROC AUC", v)
        s.table("Test metrics", ["model", "metric", "value"], sorted((m, k, v) for (m, k), v in values.items()))
        if roc is not None:
            points = _latest(roc).orderBy("threshold", ascending=False).select("fpr", "tpr").collect()
            s.chart("churn_roc", "ROC curve on the test date (the model's as-of date plus the horizon)",
                    R.roc([float(p.fpr) for p in points], [float(p.tpr) for p in points], auc, "Churn ROC (test)"))
    scores = t.get(Tables.CHURN_SCORES)
    if scores is not None:
        latest = _latest(scores)
        deciles = (latest.groupBy("decile").agg(F.count(F.lit(1)).alias("n"), F.avg("probability").alias("p"))
                   .orderBy("decile").collect())
        s.chart("churn_deciles", "Mean churn probability per risk decile (1 = riskiest), latest scoring",
                R.bar([str(r.decile) for r in deciles], [float(r.p) for r in deciles], "Churn probability by decile",
                      "mean probability", horizontal=False))
        bands = latest.groupBy("risk_band").count().orderBy("risk_band").collect()
        s.table("Persons per risk band", ["risk band", "persons"], [(r.risk_band, r["count"]) for r in bands])
    return s


def basket(t: Tables_) -> Section:
    s = Section("basket", "Bought together")
    rules = t.need(s, Tables.BASKET_RULES,
                   "No association rules: the landing zone has no order lines, or `memberlake basket` has not run.")
    if rules is None:
        return s
    latest = _latest(rules, "as_of_date").where(F.col("segment_by").isNull() | (F.col("segment_by") == "all"))
    top = (latest.orderBy(F.desc("lift"), F.desc("support")).limit(TOP)
           .select(F.array_join("antecedent", " + ").alias("a"), F.col("consequent").alias("c"),
                   "support", "confidence", "lift").collect())
    s.figure("rules", latest.count())
    if top:
        s.chart("top_rules", "Top rules by lift",
                R.bar([f"{r.a} → {r.c}"[:60] for r in top[:10]], [float(r.lift) for r in top[:10]], "Lift of the top rules",
                      "lift"))
        s.table("Top association rules", ["if bought", "then", "support", "confidence", "lift"],
                [(r.a, r.c, float(r.support), float(r.confidence), float(r.lift)) for r in top])
    return s


def reviews(t: Tables_) -> Section:
    s = Section("reviews", "Voice of the member and loyalty")
    scored = t.need(s, Tables.REVIEW_SENTIMENT, "review_sentiment not found: deliver a `reviews` landing entity and run "
                                             "`memberlake reviews`.")
    if scored is not None:
        rated = scored.where(F.col("score").isNotNull())
        s.figure("reviews scored", rated.count())
        s.figure("negative share", rated.agg(F.avg((F.col("label") == "negative").cast("double"))).first()[0])
        methods = t.get(Tables.SENTIMENT_METRICS)
        if methods is not None:
            chosen = _latest(methods).where("chosen AND metric = 'roc_auc'").orderBy("language").collect()
            for r in chosen:
                s.figure(f"{r.language}: {r.method}, held-out ROC AUC", r.value)
        months = (rated.where(F.col("created_at").isNotNull()).groupBy(F.trunc("created_at", "month").alias("m"))
                  .agg(F.avg("score").alias("score")).orderBy(F.desc("m")).limit(24).collect())[::-1]
        if months:
            s.chart("sentiment_trend", "Mean review sentiment per month (last 24 months)",
                    R.bar([str(r.m)[:7] for r in months], [float(r.score) for r in months], "Review sentiment",
                          "mean score", horizontal=False))
        aspects = t.get(Tables.ASPECT_SENTIMENT)
        if aspects is not None:
            worst = (aspects.groupBy("category", "aspect").agg(
                F.sum("reviews").alias("n"), (F.sum(F.col("mean_score") * F.col("reviews")) / F.sum("reviews")).alias("score"),
                (F.sum(F.col("negative_share") * F.col("reviews")) / F.sum("reviews")).alias("neg"))
                .where("n >= 5").orderBy(F.desc("neg"), "score").limit(TOP).collect())
            s.table("Most negative aspects per category (5+ mentions, all months)",
                    ["category", "aspect", "mentions", "mean score", "negative share"],
                    [(r.category, r.aspect, r.n, float(r.score), float(r.neg)) for r in worst])
        silver = t.get("silver_reviews")
        if silver is not None:
            examples = (scored.where("label = 'negative'").join(silver.select("review_id", "title", "body"), "review_id")
                        .orderBy(F.desc("created_at"), "score").limit(5)
                        .select("language", "score", mask_text(F.concat_ws(" — ", "title", "body")).alias("text"))
                        .collect())
            s.table("Recent negative reviews (e-mails, links and long numbers masked)", ["language", "score", "text"],
                    [(r.language, float(r.score), r.text) for r in examples])
    loyal = t.get(Tables.LOYALTY)
    if loyal is not None:
        tiers = _latest(loyal).groupBy("loyalty_tier").agg(F.count(F.lit(1)).alias("n"),
                                                            F.avg("loyalty_index").alias("mean_index")).orderBy(
            F.desc("mean_index")).collect()
        s.table("Loyalty tiers (latest as-of date)", ["tier", "persons", "mean index"],
                [(r.loyalty_tier, r.n, float(r.mean_index)) for r in tiers])
    return s


def forecast(t: Tables_) -> Section:
    """Actual vs forecast for the total and the largest series, backtest accuracy, customer base."""
    s = Section("forecast", "Demand and customer-base forecasts")
    predicted = t.need(s, Tables.DEMAND_FORECAST, "demand_forecast not found: run `memberlake forecast`.")
    series = t.get(Tables.FORECAST_SERIES)
    if series is not None:
        latest = _latest(series)
        for r in latest.groupBy("status").agg(F.count(F.lit(1)).alias("n")).orderBy("status").collect():
            s.figure(f"series {r.status}", r.n)
        scored = latest.where("mase IS NOT NULL AND baseline_mase IS NOT NULL").agg(
            F.avg((F.col("mase") < F.col("baseline_mase")).cast("double")).alias("share")).first()[0]
        if scored is not None:
            s.figure("series beating their baseline (backtest MASE)", scored)
        skipped = latest.where("status != 'backtest'").orderBy("status", "series_id").limit(TOP).collect()
        if skipped:
            s.table("Series not backtested, and why", ["measure", "series", "status", "reason"],
                    [(r.measure, r.series_id, r.status, r.reason) for r in skipped])
    history = t.get(Tables.DEMAND_HISTORY)
    if predicted is not None and history is not None:
        fc, hist = _latest(predicted), _latest(history)
        measure = fc.orderBy(F.desc(F.col("measure") == "units")).first()["measure"]
        largest = (fc.where((F.col("measure") == measure) & (F.col("level") == "series"))
                   .groupBy("series_id").agg(F.sum("forecast").alias("f")).orderBy(F.desc("f"), "series_id").first())
        nodes = [("forecast_total", "total", "total")] + (
            [("forecast_top_series", "series", largest["series_id"])] if largest is not None else [])
        for name, level, node in nodes:
            mine = fc.where((F.col("measure") == measure) & (F.col("level") == level) & (F.col("series_id") == node))
            rows = mine.orderBy("period").collect()   # one row per period ahead
            past = (hist.where((F.col("measure") == measure) & (F.col("level") == level) & (F.col("series_id") == node))
                    .orderBy(F.desc("period")).limit(78).collect())[::-1]
            if not rows:
                continue
            bands = {lv: ([r[f"lo_{lv}"] for r in rows], [r[f"hi_{lv}"] for r in rows])
                     for lv in (80, 95) if rows[0][f"hi_{lv}"] is not None}
            source = {"backtest": " (the model's, calibrated on its backtest errors)",
                      "sum": " (the series' added in quadrature)"}.get(rows[0].asDict().get("interval"), "")
            s.chart(name, f"{node}: {measure}, the last 78 periods and the forecast ({rows[0].model}) with 80% and "
                          f"95% intervals{source}",
                    R.forecast_band(([r.period for r in past], [float(r.y) for r in past]),
                                    ([r.period for r in rows], [float(r.forecast) for r in rows]),
                                    bands.get(80), bands.get(95), f"{node} ({level})", measure))
    backtest = t.get(Tables.FORECAST_BACKTEST)
    if backtest is not None:
        b = _latest(backtest)
        levels = b.where("level != 'series'").orderBy("measure", "level", "series_id", "model").limit(40).collect()
        per_model = (b.where("level = 'series'").groupBy("measure", "model").agg(
            F.count(F.lit(1)).alias("n"), F.sum(F.col("chosen").cast("int")).alias("chosen"),
            F.expr("percentile_approx(mase, 0.5)").alias("mase"), F.avg("wape").alias("wape"),
            F.avg("coverage_80").alias("c80"), F.avg("coverage_95").alias("c95"))
            .orderBy("measure", F.desc("chosen")).collect())
        s.table("Backtest accuracy above the series: sum of the chosen models (bottom_up) vs sum of the baselines",
                ["measure", "level", "node", "model", "MASE", "WAPE", "bias", "80% coverage", "95% coverage"],
                [(r.measure, r.level, r.series_id, r.model, r.mase, r.wape, r.bias, r.coverage_80, r.coverage_95)
                 for r in levels])
        s.table("Backtest accuracy per model over the series",
                ["measure", "model", "series", "chosen for", "median MASE", "mean WAPE", "80% coverage", "95% coverage"],
                [(r.measure, r.model, r.n, r.chosen, r.mase, r.wape, r.c80, r.c95) for r in per_model])
    base = t.get(Tables.CUSTOMER_BASE_FORECAST)
    if base is not None:
        b = _latest(base)
        held = b.where("kind = 'backtest'").orderBy("week").collect()
        if held:
            lines = {"expected": [r.expected_purchases for r in held], "actual": [r.actual_purchases for r in held]}
            if "expected_purchases_lower" in b.columns and all(r.expected_purchases_lower is not None for r in held):
                lines.update({"lower": [r.expected_purchases_lower for r in held],
                              "upper": [r.expected_purchases_upper for r in held]})
                s.figure("customer base backtest: weeks inside their interval",
                         sum(r.expected_purchases_lower <= r.actual_purchases <= r.expected_purchases_upper
                             for r in held) / len(held))
            s.chart("customer_base_backtest", f"Weekly repeat purchases after {held[0].start_date}: the calibration "
                    f"fit ({held[0].model}) vs what happened",
                    R.lines([r.week for r in held], lines, "Customer base backtest", "repeat purchases per week"))
        ahead = b.where("kind = 'forecast'").orderBy("week").collect()
        if ahead:
            s.table(f"Customer base, next weeks ({ahead[0].model}, from the CLV slice of {ahead[0].start_date})",
                    ["week starting", "expected repeat purchases", "interval", "expected active members", "interval",
                     "expected revenue", "interval"],
                    [(str(r.week_start), r.expected_purchases, _span(r, "expected_purchases"), r.expected_active,
                      _span(r, "expected_active"), r.expected_revenue, _span(r, "expected_revenue")) for r in ahead])
    return s


def _span(row, measure: str) -> str:
    """``lower – upper`` of a measure's interval (empty for rows written before the bounds existed)."""
    lower, upper = row.asDict().get(f"{measure}_lower"), row.asDict().get(f"{measure}_upper")
    return "" if lower is None or upper is None else f"{lower:,.1f} – {upper:,.1f}"


def campaigns(t: Tables_) -> Section:
    """Each variant against its control: lift with its interval, CUPED, sample-ratio check, ROI."""
    s = Section("campaigns", "Campaign results")
    results = t.need(s, Tables.CAMPAIGN_RESULTS, "campaign_results not found: deliver `campaigns` and `campaign_contacts` "
                                            "landing entities and run `memberlake campaigns`.")
    if results is None:
        return s
    s.figure("campaigns read out", results.select("campaign_id").distinct().count())
    s.figure("variants flagged for sample-ratio mismatch",
             results.where("srm_flag").select("campaign_id", "variant").distinct().count())
    shown = results.where("metric IN ('converted', 'revenue')").orderBy(
        F.desc("first_contact"), "campaign_id", "variant", "metric").limit(2 * TOP).collect()
    converted = [r for r in shown if r.metric == "converted" and r.ci_low is not None][:TOP]
    if converted:
        s.chart("campaign_lift", "Conversion difference against the control, with its confidence interval",
                R.intervals([f"{r.campaign_id}: {r.variant}"[:40] for r in converted], [float(r.difference) for r in converted],
                            [float(r.ci_low) for r in converted], [float(r.ci_high) for r in converted],
                            "Converted: treated minus control", "difference in conversion rate"))
    s.table("Results (converted and revenue; newest campaigns first)",
            ["campaign", "variant", "metric", "contacts", "control mean", "mean", "difference", "interval", "p-value",
             "CUPED difference", "SRM", "ROI", "window complete"],
            [(r.campaign_id, r.variant, r.metric, r.contacts, r.control_mean, r.mean, r.difference,
              "" if r.ci_low is None else f"[{r.ci_low:.4g}, {r.ci_high:.4g}]", r.p_value, r.cuped_difference,
              "FLAGGED" if r.srm_flag else "ok", r.roi, "yes" if r.window_complete else "no") for r in shown])
    _uplift(t, s)
    return s


def _uplift(t: Tables_, s: Section) -> None:
    """The uplift model on held-out contacts beside its baselines, and its uplift by decile."""
    metrics = t.get(Tables.UPLIFT_METRICS)
    if metrics is None:
        s.notes.append("No uplift model yet: `memberlake uplift` trains one once campaigns with a control group "
                       "have enough contacts (models.uplift.min_rows per arm).")
        return
    m = _latest(metrics)
    tested = m.where("split = 'test'").orderBy("model", "metric").collect()
    by_model: dict[str, dict[str, float]] = {}
    for r in tested:
        by_model.setdefault(r.model, {})[r.metric] = r.value
    version = tested[0].model_version if tested else None
    s.table(f"Uplift model v{version} on held-out contacts (Qini coefficient and AUUC: 0 random, 1 perfect)",
            ["order by", "Qini coefficient", "AUUC", "uplift at k (models.uplift.k)"],
            [(name, f.get("qini"), f.get("auuc"), next((v for k, v in f.items() if k.startswith("uplift_at_")), None))
             for name, f in by_model.items()])
    deciles = t.get(Tables.UPLIFT_DECILES)
    if deciles is not None:
        rows = _latest(deciles).orderBy("model", "decile").collect()
        series: dict[str, list[float]] = {}
        for r in rows:
            series.setdefault(r.model, [0.0] * 10)[r.decile - 1] = float(r.uplift or 0.0)
        if series:
            s.chart("uplift_deciles", "Treated minus control conversion per decile of the held-out contacts, "
                    "highest predicted first: a good model falls from left to right",
                    R.grouped_bar([str(d) for d in range(1, 11)], series, "Uplift by decile",
                                  "treated - control conversion"))


def health(t: Tables_) -> Section:
    """Alerts (data-quality checks, model monitoring) and the latest result of every check."""
    s = Section("health", "Health")
    alerts = t.get(Tables.ALERTS)
    if alerts is None:
        s.notes.append("No alerts have been raised.")
    else:
        s.figure("alerts raised", alerts.count())
        recent = alerts.orderBy(F.desc("raised_at")).limit(TOP).collect()
        s.table("Latest alerts", ["raised (UTC)", "job", "severity", "what"],
                [(r.raised_at.strftime("%Y-%m-%d %H:%M"), r.job, r.severity, r.message) for r in recent])
    checks = t.get(Tables.DQ_ALERTS)
    if checks is not None:
        w = Window.partitionBy("table", "check", "column").orderBy(F.desc("checked_at"))
        latest = (checks.withColumn("_n", F.row_number().over(w)).where("_n = 1")
                  .orderBy("passed", "table", "check").collect())
        s.figure("checks failing now", sum(1 for r in latest if not r.passed))
        s.table("Data-quality checks, latest result", ["table", "check", "column or rule", "value", "limit", "passed",
                                                       "severity"],
                [(r.table, r.check, r.column or "", r.value, r.limit, "yes" if r.passed else "NO", r.severity)
                 for r in latest])
    return s


SECTIONS = [overview, health, data_quality, identity, sessions, attribution, rfm, lifetime_value, clusters, churn, basket, reviews,
            forecast, campaigns]


def sections(spark: SparkSession, lake: Lakehouse, run: Run | None = None) -> list[Section]:
    t = Tables_(spark, lake, run)
    out = []
    for build in SECTIONS:
        log.info("report: %s", build.__name__)
        out.append(build(t))
    return out

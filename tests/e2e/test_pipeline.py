"""End to end on the whole pipeline's run (``lake_dirs``), after ``test_operate``: basket, value,
sessions, models, reviews, forecast and campaigns against what the generator planted, then the
runs that change the lakehouse: a re-run changes nothing, a new file adds only its rows, a failed
run leaves no partial state and is completed by the next run, a full rebuild equals the
incremental result. (Ingest, clean and identity invariants: ``test_landing_to_identity``.)
"""
from __future__ import annotations

import csv
import logging
import re
import shutil
from datetime import timedelta

import pytest
from pyspark.sql import functions as F

from memberlake import cli
from memberlake.contract import ENTITIES, Tables
from memberlake.io.delta import Lakehouse

pytestmark = pytest.mark.extended


def _lake(lakehouse) -> Lakehouse:
    return Lakehouse(str(lakehouse))


def _versions(spark, lake: Lakehouse) -> dict[str, int]:
    names = [Tables.QUARANTINE] + [Tables.bronze(e) for e in ENTITIES] + [Tables.silver(e) for e in ENTITIES]
    names += ["identity_graph", "person", "basket_itemsets", "basket_rules", "basket_recommendations",
              "rfm", "member_profile", "clv", "clv_parameters", "sessions", "attribution", "features", "segments",
              "segment_profile", "churn_metrics", "churn_scores"]
    return {n: lake.version(n) for n in names}


def test_basket_finds_planted_patterns_and_never_recommends_owned_items(spark, lake_dirs):
    landing, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    rules = lake.read("basket_rules").where("segment_by = 'all'")
    top = {(r.consequent, *r.antecedent) for r in rules.orderBy(F.col("lift").desc()).limit(100).collect()}
    patterns = [list(r.product_ids) for r in spark.read.parquet(str(landing / "_truth" / "basket_patterns")).collect()]
    found = [p for p in patterns if any(set(rule) <= set(p) and len(rule) >= 2 for rule in top)]
    assert len(found) >= len(patterns) - 1, (patterns, sorted(top))
    # segments from basket.segment_by (order channel, buyer's RFM segment) are mined in the same run
    mined = {r.segment_by for r in lake.read("basket_itemsets").select("segment_by").distinct().collect()}
    assert mined == {"all", "channel", "segment"}
    recs = lake.read("basket_recommendations")
    assert recs.count() > 0
    graph = lake.read("identity_graph")
    from memberlake.inputs import attach_person, completed

    orders = attach_person(completed(lake.read(Tables.silver("orders"))), graph, "order_id")
    owned = orders.join(lake.read(Tables.silver("order_items")), "order_id").select(
        "person_id", F.col("product_id").alias("item"))
    assert recs.join(owned, ["person_id", "item"], "inner").count() == 0
    ranks = recs.groupBy("person_id").agg(F.max("rank").alias("r"), F.count(F.lit(1)).alias("n"))
    assert ranks.where("r != n OR n > 10").count() == 0
    import mlflow

    runs = mlflow.search_runs(experiment_names=["memberlake-basket"])
    assert len(runs) >= 1 and runs["metrics.rules"].iloc[0] > 0


def test_value_tables_rfm_profile_and_clv(spark, lake_dirs):
    _, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    rfm, profile = lake.read("rfm"), lake.read("member_profile")
    assert rfm.count() == rfm.select("person_id").distinct().count() == profile.count() > 0
    assert rfm.where("r_score NOT BETWEEN 1 AND 5 OR f_score NOT BETWEEN 1 AND 5 OR segment = 'Other'").count() == 0
    # every person in rfm has a completed purchase; the scores spread over the whole 1..5 range
    assert {r.r_score for r in rfm.select("r_score").distinct().collect()} == {1, 2, 3, 4, 5}
    coverage = lake.read("tag_coverage").collect()
    assert {r.tag for r in coverage} == {"vip", "bargain_hunter", "win_back", "app_first", "contactable"}
    parameters = lake.read("clv_parameters").collect()
    # every candidate fitted on the calibration period with its holdout error; the one with the
    # lowest error is selected and fitted on all data for the clv table, beside Gamma-Gamma
    calibration = {r.model: r for r in parameters if r.fit == "calibration"}
    assert set(calibration) == {"bgnbd", "mbgnbd", "pareto_nbd"}
    chosen = min(calibration.values(), key=lambda r: r.holdout_mae).model
    assert [m for m, r in calibration.items() if r.selected] == [chosen]
    full = {(r.model, r.parameter) for r in parameters if r.fit == "full"}
    shapes = {"pareto_nbd": ("r", "alpha", "s", "beta")}.get(chosen, ("r", "alpha", "a", "b"))
    assert full == {(chosen, k) for k in shapes} | {("gamma_gamma", k) for k in ("p", "q", "gamma")}
    clv = lake.read("clv")
    assert clv.where("p_alive < 0 OR p_alive > 1 OR clv < 0 OR expected_purchases < 0").count() == 0
    holdout = lake.read("clv_holdout")
    persons = {r.model: r.persons for r in holdout.groupBy("model").agg(F.sum("persons").alias("persons")).collect()}
    assert set(persons) == set(calibration) and len(set(persons.values())) == 1 and min(persons.values()) > 0
    import mlflow

    runs = mlflow.search_runs(experiment_names=["memberlake-value"])
    assert len(runs) >= 1 and f"params.{chosen}.r" in runs.columns and "metrics.pareto_nbd.holdout_mae" in runs.columns


def test_sessions_match_the_planted_sessions_and_attribution_adds_up(spark, lake_dirs):
    landing, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    from memberlake.sessions.sessionize import assign_sessions
    from memberlake.settings import SessionSettings

    truth = spark.read.parquet(str(landing / "_truth" / "sessions"))
    events = lake.read(Tables.silver("events")).where("anonymous_id IS NOT NULL")
    ours = assign_sessions(events, SessionSettings()).select("event_id", "session_id")
    pairs = truth.join(ours, "event_id")
    # each planted session is exactly one of ours and vice versa
    assert pairs.groupBy("session_key").agg(F.countDistinct("session_id").alias("n")).where("n != 1").count() == 0
    assert pairs.groupBy("session_id").agg(F.countDistinct("session_key").alias("n")).where("n != 1").count() == 0
    sessions = lake.read("sessions")
    assert sessions.count() == sessions.select("session_id").distinct().count() == truth.select("session_key").distinct().count()
    assert sessions.where("person_id IS NULL").count() == 0
    conversions, revenue = sessions.where("converted").agg(F.count(F.lit(1)), F.sum("revenue")).first()
    assert conversions > 0
    for row in lake.read("attribution").groupBy("model").agg(F.sum("conversions").alias("c"),
                                                                    F.sum("revenue").alias("r")).collect():
        assert row.c == pytest.approx(conversions), row.model
        assert row.r == pytest.approx(revenue), row.model
    assert {r.model for r in lake.read("attribution").select("model").distinct().collect()} == {
        "first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based", "markov"}
    funnel = lake.read("session_funnel").groupBy("step_no").agg(F.sum("reached").alias("n")).orderBy("step_no")
    reached = [r.n for r in funnel.collect()]
    assert reached == sorted(reached, reverse=True) and reached[-1] > 0


def test_models_segment_score_and_register_a_champion(spark, lake_dirs):
    _, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    features = lake.read("features")
    assert features.count() == features.select("person_id", "as_of_date").distinct().count()
    latest = features.agg(F.max("as_of_date")).first()[0]
    current = features.where(F.col("as_of_date") == latest)
    segments = lake.read("segments")
    # every person of the latest as-of date has one segment with a persona label
    assert segments.count() == current.count() == segments.select("person_id").distinct().count()
    assert segments.where("persona IS NULL OR persona = ''").count() == 0
    profile = lake.read("segment_profile")
    shares = profile.select("cluster", "share").distinct().agg(F.sum("share")).first()[0]
    assert shares == pytest.approx(1.0)
    metrics = {(r.model, r.split, r.metric): r.value for r in lake.read("churn_metrics").collect()}
    test_auc = next(v for (m, s, k), v in metrics.items() if s == "test" and k == "roc_auc" and m != "recency_only")
    assert 0.5 < test_auc <= 1.0 and ("recency_only", "test", "roc_auc") in metrics
    # the selected model was refitted on training + validation: its test AUC before that is kept
    assert sum(1 for (m, s, k) in metrics if m.endswith(" before refit") and s == "test" and k == "roc_auc") == 1
    scores = lake.read("churn_scores")
    assert scores.count() == current.count() == scores.select("person_id").distinct().count()
    assert scores.where("probability < 0 OR probability > 1 OR decile NOT BETWEEN 1 AND 10").count() == 0
    # the top decile is the riskiest: its lowest probability is at least every other decile's highest
    by_decile = {r.decile: (r.lo, r.hi) for r in scores.groupBy("decile").agg(
        F.min("probability").alias("lo"), F.max("probability").alias("hi")).collect()}
    assert all(by_decile[1][0] >= hi for d, (_, hi) in by_decile.items() if d > 1)
    import mlflow

    from memberlake.ops.registry import champion_version

    version = scores.select("model_version").first()[0]
    assert champion_version("memberlake-churn") == version
    # refitted through the test date: its labels end there, the date the champion rule compared on
    test_date = lake.read("features").agg(F.max("as_of_date")).first()[0] - timedelta(days=90)
    tags = mlflow.MlflowClient().get_model_version("memberlake-churn", version).tags
    assert tags["labels_through"] == test_date.isoformat() and "test_areaUnderROC" in tags
    for experiment, column in (("memberlake-churn", "metrics.test_roc_auc"),
                               ("memberlake-segmentation", "metrics.chosen_k")):
        runs = mlflow.search_runs(experiment_names=[experiment])
        assert len(runs) >= 1 and column in runs.columns, experiment


def test_rerun_changes_nothing(spark, lake_dirs):
    landing, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    before = _versions(spark, lake)
    counts = {n: lake.read(n).count() for n in before}
    assert cli.main(["pipeline", "--landing", str(landing), "--lakehouse", str(lakehouse)]) == 0
    assert _versions(spark, lake) == before
    assert {n: lake.read(n).count() for n in before} == counts


def test_new_file_adds_only_its_rows(spark, lake_dirs, tmp_path, caplog):
    landing, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    existing = lake.read(Tables.silver("members")).orderBy("member_id").first()
    ids_before = {r.value: r.person_id for r in
                  lake.read("identity_graph").where("id_type = 'member'").collect()}
    bronze_before = lake.read(Tables.bronze("members")).count()
    silver_before = lake.read(Tables.silver("members")).count()
    caplog.set_level(logging.INFO, logger="memberlake")
    # NEW-3: another source's copy of a member with a full record (matching should join them)
    twin = (lake.read(Tables.silver("members")).where("birth_date IS NOT NULL AND street IS NOT NULL AND "
                                                       "postcode IS NOT NULL AND first_name IS NOT NULL")
            .orderBy(F.desc("member_id")).first())
    rows = [["member_id", "source", "first_name", "last_name", "email", "updated_at", "birth_date", "street",
             "postcode", "city"],
            ["NEW-1", "crm", "New", "Person", "new1@example.com", "2025-01-01T00:00:00Z"],
            ["NEW-2", "crm", "Other", "Person", "", "2025-01-01T00:00:00Z"],
            [existing.member_id, existing.source, "Renamed", existing.last_name, "", "2099-01-01T00:00:00Z"],
            ["NEW-1", "crm", "Stale", "Person", "", "2020-01-01T00:00:00Z"],
            ["NEW-3", "pos", twin.first_name, twin.last_name, "", "2025-01-01T00:00:00Z", str(twin.birth_date),
             twin.street, twin.postcode, twin.city or ""]]
    with (landing / "members_update.csv").open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows([r + [""] * (len(rows[0]) - len(r)) for r in rows])
    try:
        assert cli.main(["pipeline", "--only", "ingest,clean,identity", "--landing", str(landing),
                         "--lakehouse", str(lakehouse)]) == 0
        assert lake.read(Tables.bronze("members")).count() == bronze_before + 5
        silver = lake.read(Tables.silver("members"))
        assert silver.count() == silver_before + 3
        assert silver.where(F.col("member_id") == existing.member_id).first().first_name == "Renamed"
        assert silver.where("member_id = 'NEW-1'").first().first_name == "New"   # the stale row lost
        ids_after = {r.value: r.person_id for r in
                     lake.read("identity_graph").where("id_type = 'member'").collect()}
        assert "crm:NEW-1" in ids_after and "crm:NEW-2" in ids_after
        kept = sum(ids_after[k] == v for k, v in ids_before.items())
        assert kept == len(ids_before)                 # nobody's person_id changed
        # That identity run recomputed only the touched components (equality with a full
        # recompute: tests/identity/test_identity_incremental.py) and compared only the pairs of
        # the four member records that changed (tests/identity/test_rematch.py)...
        assert "incremental:" in caplog.text
        assert re.search(r"matching: incremental: 4 records changed since the last run, [1-9]\d* candidate", caplog.text)
        assert ids_after["pos:NEW-3"] == ids_after[f"{twin.source}:{twin.member_id}"]     # matched: one person
        # ...and a full recompute of the same silver finds the same pairs, verdicts and persons
        cols = ["l_record", "r_record", "rule", "rules", "first_name_level", "last_name_level", "birth_date_level",
                "address_level", "first_name_tf_key", "last_name_tf_key", "vetoed", "accepted"]
        incremental = {tuple(r[c] for c in cols): r.match_weight for r in lake.read(Tables.MATCH_PAIRS).collect()}
        assert cli.main(["identity", "--full", "--force", "--lakehouse", str(lakehouse)]) == 0
        full = {tuple(r[c] for c in cols): r.match_weight for r in lake.read(Tables.MATCH_PAIRS).collect()}
        assert incremental.keys() == full.keys()
        assert all(incremental[k] == pytest.approx(full[k]) for k in full)
        assert {r.value: r.person_id for r in lake.read("identity_graph").where("id_type = 'member'").collect()} == ids_after
    finally:
        (landing / "members_update.csv").unlink()


def test_failed_run_leaves_no_partial_state_and_rerun_completes(spark, lake_dirs, monkeypatch, tmp_path):
    landing, lakehouse = lake_dirs
    # A fresh lakehouse with ingest done, then clean failing after the quarantine write.
    lake_dir = tmp_path / "lake"
    assert cli.main(["ingest", "--landing", str(landing), "--lakehouse", str(lake_dir)]) == 0
    from memberlake.clean import batches as clean

    real = clean.silver_rows

    def explode_on_orders(standardised, entity):
        if entity.name == "orders":
            raise RuntimeError("simulated crash")
        return real(standardised, entity)

    monkeypatch.setattr(clean, "silver_rows", explode_on_orders)
    with pytest.raises(RuntimeError, match="simulated crash"):
        cli.main(["clean", "--lakehouse", str(lake_dir)])
    lake = _lake(lake_dir)
    assert not lake.exists(Tables.silver("orders"))
    failed = lake.read(Tables.JOB_RUNS).where("status = 'failed'").first()
    assert failed.job == "clean" and "simulated crash" in failed.error
    monkeypatch.setattr(clean, "silver_rows", real)
    assert cli.main(["clean", "--lakehouse", str(lake_dir)]) == 0
    reference = _lake(lakehouse)
    for name in ("orders", "members"):
        got = lake.read(Tables.silver(name)).count()
        assert got == reference.read(Tables.silver(name)).where("member_id NOT LIKE 'NEW-%'" if name == "members" else "true").count()
    q = lake.read(Tables.QUARANTINE).where("stage = 'clean' AND entity = 'orders'")
    assert q.count() == q.select("_record_hash").distinct().count()   # no duplicate quarantine rows
    shutil.rmtree(lake_dir)


def test_export_tables_and_runs_commands(spark, lake_dirs, tmp_path, capsys):
    _, lakehouse = lake_dirs
    out = tmp_path / "audience"
    assert cli.main(["export", "silver_members", "--lakehouse", str(lakehouse), "--out", str(out),
                     "--where", "marketing_opt_in = true", "--columns", "member_id,email,_flags"]) == 0
    exported = spark.read.option("header", True).csv(str(out))
    expected = _lake(lakehouse).read("silver_members").where("marketing_opt_in = true").count()
    assert exported.count() == expected and exported.columns == ["member_id", "email", "_flags"]
    emails = [r.email for r in exported.where("email is not null").collect()]
    assert emails and all(re.fullmatch(r".\*\*\*@[^@]+", e) for e in emails)   # masked for analysts
    raw = tmp_path / "raw"
    assert cli.main(["export", "silver_members", "--lakehouse", str(lakehouse), "--out", str(raw), "--raw",
                     "--columns", "member_id,email"]) == 0
    silver = {(r.member_id, r.email) for r in _lake(lakehouse).read("silver_members").select(
        "member_id", "email").collect()}
    assert {(r.member_id, r.email) for r in spark.read.option("header", True).csv(str(raw)).collect()} == silver
    assert cli.main(["tables", "--lakehouse", str(lakehouse)]) == 0
    listing = capsys.readouterr().out
    assert "silver_members" in listing and "job_runs" in listing
    assert cli.main(["runs", "--lakehouse", str(lakehouse), "--limit", "3", "--versions", "--job", "clean"]) == 0
    out_runs = capsys.readouterr().out
    assert "succeeded" in out_runs and re.search(r"read bronze_\w+@v\d+", out_runs)
    assert "identity" not in out_runs
    assert cli.main(["export", "no_such_table", "--lakehouse", str(lakehouse), "--out", str(out)]) == 2


def test_full_rebuild_equals_incremental_result(spark, lake_dirs):
    _, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    business = {name: ENTITIES[name].column_names + ["_flags"] for name in ("members", "orders")}
    before = {n: lake.read(Tables.silver(n)).select(*cols).cache() for n, cols in business.items()}
    for df in before.values():
        df.count()
    batches_before = lake.read(Tables.CLEAN_BATCHES).count()
    assert cli.main(["clean", "--full", "--entities", "members,orders", "--lakehouse", str(lakehouse)]) == 0
    for name, cols in business.items():
        after = lake.read(Tables.silver(name)).select(*cols)
        assert after.exceptAll(before[name]).count() == 0 and before[name].exceptAll(after).count() == 0, name
        before[name].unpersist()
    assert lake.read(Tables.CLEAN_BATCHES).count() == batches_before


def test_value_snapshot_replaces_only_its_date_and_records_migration(spark, lake_dirs, tmp_path):
    _, lakehouse = lake_dirs
    lake_dir = tmp_path / "lake"
    shutil.copytree(lakehouse, lake_dir)
    lake = _lake(lake_dir)
    latest = lake.read("rfm").agg(F.max("as_of_date")).first()[0]
    earlier = "2024-06-30"
    assert cli.main(["value", "--lakehouse", str(lake_dir), "--as-of", earlier, "--skip-clv"]) == 0
    rfm = lake.read("rfm")
    dates = {r.as_of_date.isoformat(): r["count"] for r in rfm.groupBy("as_of_date").count().collect()}
    assert set(dates) == {earlier, latest.isoformat()}
    assert cli.main(["value", "--lakehouse", str(lake_dir), "--as-of", earlier, "--skip-clv", "--set",
                     "value.window_days=180"]) == 0              # changed parameter: recomputed, replaced
    again = {r.as_of_date.isoformat(): r["count"] for r in lake.read("rfm").groupBy("as_of_date").count().collect()}
    assert again == dates
    moves = lake.read("rfm_segment_migration").where(F.col("as_of_date") == F.lit(earlier)).collect()
    assert all(m.from_segment == "(new)" for m in moves)       # nothing before the earlier date
    assert sum(m.persons for m in moves) == dates[earlier]


def test_reviews_scored_against_the_planted_sentiment(spark, lake_dirs):
    from pyspark.ml.evaluation import BinaryClassificationEvaluator

    landing, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    silver, scored = lake.read("silver_reviews"), lake.read("review_sentiment")
    assert scored.count() == silver.count() > 0
    assert {r.language for r in scored.select("language").distinct().collect()} == {"en", "zh"}
    q = lake.read(Tables.QUARANTINE).where("entity = 'reviews'")
    assert q.where(F.array_contains("reasons", "empty_review")).count() > 0     # planted: no title, no body
    assert silver.where(F.array_contains("_flags", "rating_out_of_range") & F.col("rating").isNotNull()).count() == 0
    # planted positive vs negative reviews are told apart, and their person is found
    truth = spark.read.parquet(str(landing / "_truth" / "reviews")).where("polarity IN ('positive', 'negative')")
    joined = truth.join(scored, "review_id").select(
        (F.col("polarity") == "positive").cast("double").alias("label"), F.col("score").alias("rawPrediction"))
    assert BinaryClassificationEvaluator().evaluate(joined) > 0.9
    assert scored.where(F.col("person_id").isNull() & F.col("language").isin("en", "zh")).count() == 0
    aspects = {r.aspect for r in lake.read("review_aspects").select("aspect").distinct().collect()}
    assert aspects and aspects <= {"price", "quality", "delivery", "service", "size_fit", "packaging"}
    metrics = lake.read("sentiment_metrics").where("chosen").groupBy("language", "metric").count().collect()
    assert metrics and all(r["count"] == 1 for r in metrics)                      # one chosen method per language
    # each language that learnt from ratings registered its refit; the first one is the champion
    import mlflow

    from memberlake.ops.registry import champion_version

    learnt = {r.language for r in lake.read("sentiment_metrics").select("language").distinct().collect()}
    for language in learnt:
        version = champion_version(f"memberlake-sentiment_{language}")
        assert version is not None, language
        tags = mlflow.MlflowClient().get_model_version(f"memberlake-sentiment_{language}", version).tags
        assert {"roc_auc", "labels_through", "beats_lexicon"} <= set(tags), language
    people = lake.read("person_sentiment")
    assert people.count() == people.select("person_id").distinct().count() > 0


def test_loyalty_tiers_in_profile_and_snapshot(spark, lake_dirs):
    _, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    loyal, profile = lake.read("loyalty"), lake.read("member_profile")
    assert loyal.count() == profile.count() > 0
    assert loyal.where("loyalty_index < 0 OR loyalty_index > 100 OR loyalty_tier IS NULL").count() == 0
    assert loyal.where("sentiment_component IS NOT NULL").count() > 0           # reviews reached the index
    tiers = {r.loyalty_tier for r in profile.select("loyalty_tier").distinct().collect()}
    assert len(tiers) >= 3


def test_forecast_adds_up_and_lists_every_series(spark, lake_dirs):
    _, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    series, fc = lake.read("forecast_series"), lake.read("demand_forecast")
    assert series.count() > 0
    assert series.where("status IS NULL OR (model IS NULL AND reason IS NULL)").count() == 0   # none dropped silently
    fitted = series.where("status IN ('backtest', 'fallback')")
    horizon = 13
    per = fc.where("level = 'series'").groupBy("measure", "series_id").agg(F.count(F.lit(1)).alias("n"))
    assert per.count() == fitted.count() and per.where(f"n != {horizon}").count() == 0
    # bottom-up: the total is the sum of the series, period by period
    sums = fc.where("level = 'series'").groupBy("measure", "period").agg(F.sum("forecast").alias("s")).join(
        fc.where("level = 'total'").select("measure", "period", "forecast"), ["measure", "period"])
    assert sums.count() == horizon * fc.select("measure").distinct().count()
    assert sums.where(F.abs(F.col("s") - F.col("forecast")) > 1e-6 * (1 + F.abs("forecast"))).count() == 0
    ordered = "lo_95 <= lo_80 AND lo_80 <= forecast + 1e-9 AND forecast <= hi_80 + 1e-9 AND hi_80 <= hi_95"
    assert fc.where(f"hi_95 IS NOT NULL AND NOT ({ordered})").count() == 0
    assert fc.where("forecast < 0").count() == 0                              # demand never had a negative week
    # bounds calibrated on the backtest only where a series was backtested; sums above the series
    how = {(r.level, r.status, r.interval) for r in fc.join(
        series.select("measure", "series_id", "status"), ["measure", "series_id"], "left").select(
        "level", "status", "interval").distinct().collect()}
    assert {i for level, _, i in how if level != "series"} == {"sum"}
    assert {(st, i) for level, st, i in how if level == "series"} <= {
        ("backtest", "backtest"), ("backtest", "model"), ("fallback", "model")}
    # the factors behind them, per series: both or neither, positive, only for backtested series
    assert series.where("(interval_factor_80 IS NULL) != (interval_factor_95 IS NULL)").count() == 0
    assert series.where("interval_factor_80 <= 0 OR (interval_factor_80 IS NOT NULL AND status != 'backtest')").count() == 0
    chosen = lake.read("forecast_backtest").where("level = 'series' AND chosen")
    assert chosen.groupBy("measure", "series_id").count().where("count != 1").count() == 0
    base = lake.read("customer_base_forecast")
    kinds = {r.kind: r.n for r in base.groupBy("kind").agg(F.count(F.lit(1)).alias("n")).collect()}
    assert kinds.get("forecast") == horizon and kinds.get("backtest", 0) >= 1
    held = base.where("kind = 'backtest'").agg(F.sum("expected_purchases").alias("e"),
                                               F.sum("actual_purchases").alias("a")).first()
    assert held.a > 0 and 0.2 < held.e / held.a < 5
    for m in ("expected_purchases", "expected_active", "expected_revenue"):   # bounds on every week
        assert base.where(f"{m}_lower IS NULL OR {m}_upper IS NULL OR {m}_lower > {m} OR {m}_upper < {m}").count() == 0
    assert base.where("expected_purchases_upper <= expected_purchases_lower").count() == 0


def test_campaign_readout_recovers_the_planted_effect(spark, lake_dirs):
    landing, lakehouse = lake_dirs
    lake = _lake(lakehouse)
    results = lake.read("campaign_results")
    truth = spark.read.parquet(str(landing / "_truth" / "campaigns"))
    arms = {(r.campaign_id, r.variant): r for r in truth.where("NOT is_control").groupBy("campaign_id", "variant").agg(
        F.count(F.lit(1)).alias("n"), F.avg(F.col("orders_added") - F.col("orders_removed")).alias("effect")).collect()}
    orders = {(r.campaign_id, r.variant): r for r in results.where("metric = 'orders'").collect()}
    assert set(orders) == set(arms)
    for key, r in orders.items():
        assert abs(r.contacts - arms[key].n) <= 0.05 * arms[key].n          # contacts resolved to persons
        # the realised planted effect on orders per treated contact lies in the readout's interval
        assert r.ci_low <= arms[key].effect <= r.ci_high, (key, r.ci_low, arms[key].effect, r.ci_high)
        assert r.srm_flag is None and r.window_complete is True              # no planned split configured
    assert results.where("metric = 'revenue' AND roi IS NOT NULL").count() == len(arms)
    assert results.where("metric = 'opened'").count() == len(arms)            # e-mails carry open times
    assert lake.read("campaign_outcomes").where("window_end <= contacted_at").count() == 0

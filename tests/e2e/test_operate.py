"""Operating the lakehouse built by the shared pipeline run: report, privacy, forget, maintenance.

Tests that change tables work on a copy of the lakehouse.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import runpy
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake import cli
from memberlake.io.delta import Lakehouse
from memberlake.privacy.pseudonymise import DEVELOPMENT_KEY, holds_raw_pii

pytestmark = pytest.mark.extended

CHARTS = {"quarantine_reasons", "identifiers_by_type", "member_records_per_person", "match_weights", "sessions_by_channel",
          "conversion_by_channel", "attribution_by_model", "rfm_segments", "rfm_migration", "cluster_profiles", "churn_roc",
          "churn_deciles", "top_rules", "sentiment_trend", "forecast_total", "forecast_top_series",
          "customer_base_backtest", "campaign_lift"}
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.py"))


def _report(lakehouse) -> Path:
    return Path(lakehouse) / "_report" / "memberlake-report.html"


def _raw_contacts(spark, lake: Lakehouse) -> set[str]:
    members = lake.read("silver_members").select("email", "phone")
    orders = lake.read("silver_orders").select("email", "phone")
    both = members.unionByName(orders)
    return {v for r in both.collect() for v in r if v}  # small test data


def test_report_has_every_section_and_chart_and_no_pii(spark, lake_dirs):
    _, lakehouse = lake_dirs
    lake = Lakehouse(str(lakehouse))
    text = _report(lakehouse).read_text(encoding="utf-8")
    assert set(re.findall(r'data-chart="([^"]+)"', text)) == CHARTS
    assert "<script" not in text and not re.search(r'(src|href)="(https?:)?//', text)   # nothing loaded
    persons = lake.read("identity_graph").select("person_id").distinct().count()
    assert f"<b>{persons:,}</b><span>persons (members, guests, visitors)</span>" in text
    assert not [v for v in _raw_contacts(spark, lake) if v in text]
    assert "Voice of the member and loyalty" in text and "Recent negative reviews" in text
    assert "Loyalty tiers (latest as-of date)" in text
    assert "Demand and customer-base forecasts" in text and "Backtest accuracy per model over the series" in text
    assert "Campaign results" in text and "Results (converted and revenue; newest campaigns first)" in text
    assert "No uplift model yet" in text          # the generated campaigns are below models.uplift.min_rows


def test_report_renders_every_chart_in_headless_chromium(lake_dirs):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("MEMBERLAKE_REQUIRE_BROWSER"):
            pytest.fail("chromium and chromium-driver are required (apt-get install chromium chromium-driver)")
        pytest.skip("chromium / chromium-driver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _, lakehouse = lake_dirs
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(_report(lakehouse).resolve().as_uri())
        charts = driver.execute_script("""
            return Array.from(document.querySelectorAll('figure.chart')).map(f => {
              const svg = f.querySelector('svg'); const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
              return [f.dataset.chart, r.width, r.height, svg ? svg.querySelectorAll('path,rect,image,use').length : 0];
            });""")
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    finally:
        driver.quit()
    assert {c[0] for c in charts} == CHARTS
    for name, width, height, marks in charts:
        assert width > 100 and height > 100 and marks > 3, (name, width, height, marks)
    assert errors == []


def test_gold_tables_hold_keyed_hashes_not_raw_contacts(spark, lake_dirs):
    _, lakehouse = lake_dirs
    lake = Lakehouse(str(lakehouse))
    raw = _raw_contacts(spark, lake)
    assert raw
    values = spark.createDataFrame([(v,) for v in raw], "v string")
    every_string = None  # (table, v) for every string value, array elements included, of every gold table
    for table in lake.table_names():
        if holds_raw_pii(table):
            continue
        df = lake.read(table)
        plain = [F.array(F.col(f.name)) for f in df.schema.fields if isinstance(f.dataType, T.StringType)]
        arrays = [F.coalesce(F.col(f.name), F.array().cast("array<string>")) for f in df.schema.fields
                  if isinstance(f.dataType, T.ArrayType) and isinstance(f.dataType.elementType, T.StringType)]
        if plain or arrays:
            stacked = df.select(F.lit(table).alias("table"), F.explode(F.flatten(F.array(*plain, *arrays))).alias("v"))
            every_string = stacked if every_string is None else every_string.unionByName(stacked)
    leaks = every_string.join(values, "v").groupBy("table").count().collect()
    assert leaks == []
    member = (lake.read("silver_members").where(F.col("email").isNotNull())
              .select(F.concat_ws(":", "source", "member_id").alias("key"), "email").orderBy("key").first())
    person = lake.read("person").where(F.array_contains("member_records", member.key)).first()
    assert person.email == hmac.new(DEVELOPMENT_KEY, member.email.encode(), hashlib.sha256).hexdigest()


def _person_with_history(spark, lake: Lakehouse):
    graph = lake.read("identity_graph")
    orders = lake.read("silver_orders")
    members = graph.where("id_type = 'member'").groupBy("person_id").count().where("count >= 2")
    ids = graph.where("id_type = 'member_id'").select("person_id", F.col("value").alias("member_id"))
    with_orders = ids.join(orders.select("member_id").distinct(), "member_id").select("person_id").distinct()
    return members.join(with_orders, "person_id").orderBy("person_id").first().person_id


# The one table that keeps anything of a forgotten person, by design: the audit of the request
# (keyed hashes of the identifiers it named and the person ids, so the erasure can be proven).
FORGET_AUDIT = "forget_requests"


def _needles(spark, lake: Lakehouse, pid: str) -> dict[str, str]:
    """Every identifier of person ``pid`` as any table could hold it -> what it is: person ids
    (old ones too), member keys and ids, cookies, devices, order ids, e-mails and phones raw (as
    landed) and normalised, and the keyed hashes of those."""
    graph = lake.read("identity_graph")
    pids = {pid} | {r.old_id for r in lake.read("person_id_map").where(F.col("current_id") == pid).collect()}
    nodes = graph.where(F.col("person_id").isin(*pids)).collect()
    found = {p: "person_id" for p in pids}
    found |= {n.value: n.id_type for n in nodes if n.id_type not in ("email", "phone")}   # hashed there
    keys = {n.value for n in nodes if n.id_type == "member"}
    ids = {n.value for n in nodes if n.id_type == "member_id"}
    contacts: set[str] = set()
    for layer in ("bronze", "silver"):
        members = lake.read(f"{layer}_members").where(F.concat_ws(":", "source", "member_id").isin(*keys))
        contacts |= {v for r in members.select("email", "phone").collect() for v in r if v}
    normalised = {v for r in lake.read("silver_members").where(
        F.concat_ws(":", "source", "member_id").isin(*keys)).select("email", "phone").collect() for v in r if v}
    for layer in ("bronze", "silver"):
        orders = lake.read(f"{layer}_orders").where(
            F.col("member_id").isin(*ids) | F.col("email").isin(*contacts) | F.col("email").isin(*normalised))
        for r in orders.select("order_id", "email", "phone").collect():
            found[r.order_id] = "order_id"
            contacts |= {v for v in (r.email, r.phone) if v}
    found |= {c.strip(): "contact (raw)" for c in contacts} | {n: "contact" for n in normalised}
    found |= {hmac.new(DEVELOPMENT_KEY, n.encode(), hashlib.sha256).hexdigest(): "contact (hashed)" for n in normalised}
    assert len(keys) >= 2 and normalised and any(k == "order_id" for k in found.values())
    return found


def _data_files(table_dir: Path) -> list[str]:
    """Every Parquet file of a table on storage (any version's, and change-feed files), not the log."""
    return sorted(str(f) for f in table_dir.rglob("*.parquet") if "_delta_log" not in f.parts)


def _pattern(needles: dict[str, str]) -> str:
    """Any needle as a whole token of lower-cased text (``o17`` is not found in ``o170``)."""
    return "(^|[^a-z0-9])(" + "|".join(re.escape(n.lower()) for n in needles) + ")([^a-z0-9]|$)"


def _text_of_files(files: list[str]):
    """The rows of each Parquet file as lower-cased JSON text (every column, nested values
    included), a batch of rows per text, read file by file with pyarrow: the files' schemas may
    differ between versions, and a scan of local files needs no Spark job per table. JSON's own
    quotes and commas separate values, so a needle found as a whole token is found in one value."""
    import pyarrow.parquet as pq

    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
            yield json.dumps(batch.to_pylist(), default=str, ensure_ascii=False).lower()


def _history_text(table_dir: Path):
    """Each commit's operation parameters and user metadata (what ``DESCRIBE HISTORY`` shows),
    read from the table's log files."""
    for commit in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in commit.read_text(encoding="utf-8").splitlines():
            info = json.loads(line).get("commitInfo") if line.strip() else None
            if info:
                yield json.dumps([info.get("operationParameters"), info.get("userMetadata")],
                                 ensure_ascii=False).lower()


def _holding(spark, lake: Lakehouse, needles: dict[str, str], tables: list[str] | None = None) -> dict[str, str]:
    """table -> where one of ``needles`` is still readable: in any data file any version or the
    change feed can reach (every string, array, map and struct value, JSON text included, as the
    row's JSON), or in the table's history (commit predicates and parameters)."""
    pattern = re.compile(_pattern(needles))

    def found(texts) -> str | None:
        hit = next((m for m in map(pattern.search, texts) if m), None)
        return needles.get(hit.group(2), hit.group(2)) if hit else None

    hits = {}
    for table in tables or lake.table_names(published_only=False):
        if table == FORGET_AUDIT:
            continue
        table_dir = Path(lake.location(table))
        hit = found(_text_of_files(_data_files(table_dir)))
        if hit:
            hits[table] = f"{hit} in a data file"
            continue
        hit = found(_history_text(table_dir))
        if hit:
            hits[table] = f"{hit} in the history"
    return hits


def test_forget_erases_a_person_from_every_table_column_and_version(spark, lake_dirs, tmp_path):
    """Every table, every column (nested values and JSON text included), every file that time
    travel or the change feed could read, and the tables' history: nothing of the person is left
    but the request's audit row, once the VACUUM retention has passed.

    With ``privacy.forget_vacuum_hours`` at its default (168 h) the current version of every table
    is clean at once and older versions keep the person's rows for time travel until a VACUUM
    after the retention (documented in docs/operations.md); ``forget_vacuum_hours=0`` is that
    VACUUM at once, and the test runs it as the retention having passed.
    """
    _, lakehouse = lake_dirs
    copy = tmp_path / "lake"
    shutil.copytree(lakehouse, copy)
    lake = Lakehouse(str(copy))
    pid = _person_with_history(spark, lake)
    needles = _needles(spark, lake, pid)
    assert set(_holding(spark, lake, needles, ["silver_members", "match_pairs", "identity_graph"])) == {
        "silver_members", "match_pairs", "identity_graph"}      # the search finds the person before
    email = next(n for n, kind in needles.items() if kind == "contact" and "@" in n)
    assert cli.main(["forget", "--lakehouse", str(copy), "--email", f"  {email.upper()} ",
                     "--request-id", "ticket-42"]) == 0
    for table in lake.table_names():       # the current version of every table: clean at once
        if table != FORGET_AUDIT:
            df = lake.read(table)
            text = F.lower(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])))
            hit = df.select(F.regexp_extract(text, _pattern(needles), 2).alias("n")).where("n != ''").first()
            assert hit is None, (table, hit and needles.get(hit.n, hit.n), hit)
    left = _holding(spark, lake, needles)       # older versions: until the retention has passed
    assert "silver_members" in left and all("data file" in where for where in left.values()), left
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        for table in left:
            lake.delta_table(table).vacuum(0)
    finally:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")
    assert _holding(spark, lake, needles) == {}
    request = lake.read(FORGET_AUDIT).collect()
    assert [(r.request_id, r.person_ids) for r in request] == [("ticket-42", [pid])]
    assert email not in str(request[0]) and request[0].rows_deleted["silver_members"] >= 2


def test_forget_needs_an_identifier(lake_dirs, capsys):
    _, lakehouse = lake_dirs
    assert cli.main(["forget", "--lakehouse", str(lakehouse)]) == 2
    assert "--email" in capsys.readouterr().err


def test_maintain_zorders_vacuums_and_sets_properties_without_changing_rows(spark, lake_dirs, tmp_path, capsys):
    _, lakehouse = lake_dirs
    copy = tmp_path / "lake"
    shutil.copytree(lakehouse, copy)
    lake = Lakehouse(str(copy))
    tables = ["silver_orders", "identity_graph", "clv"]
    rows = {t: sorted(map(tuple, lake.read(t).collect())) for t in tables}
    assert cli.main(["maintain", "--lakehouse", str(copy), "--tables", ",".join(tables)]) == 0
    for t in tables:
        assert sorted(map(tuple, lake.read(t).collect())) == rows[t]
        history = lake.delta_table(t).history().collect()
        ops = [h.operation for h in history]
        assert "VACUUM END" in ops and "SET TBLPROPERTIES" in ops, (t, ops)
        props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{lake.location(t)}`").collect()}
        assert props["delta.logRetentionDuration"] == "interval 30 days"
    for t, key in (("silver_orders", "member_id"), ("identity_graph", "value")):   # Z-ordered tables are rewritten
        optimize = next(h for h in lake.delta_table(t).history().collect() if h.operation == "OPTIMIZE")
        assert key in optimize.operationParameters["zOrderBy"]
    assert cli.main(["maintain", "--lakehouse", str(copy), "--tables", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_locally_on_the_pipeline_output(spark, lake_dirs, notebook, monkeypatch, capsys):
    _, lakehouse = lake_dirs
    assert notebook.read_text().startswith("# Databricks notebook source\n")
    monkeypatch.setenv("MEMBERLAKE_LAKEHOUSE", str(lakehouse))
    runpy.run_path(str(notebook), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("\n") > 10
    assert not [v for v in _raw_contacts(spark, Lakehouse(str(lakehouse))) if v in out]

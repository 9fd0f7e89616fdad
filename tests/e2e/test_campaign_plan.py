"""``memberlake campaign plan`` on the shared pipeline run, and its send list delivered back.

The plan writes its two tables into the shared lakehouse (so ``test_tables`` checks them against
their declarations and ``test_operate``'s forget must erase them too); the round trip through
the landing zone runs on copies.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from memberlake import cli
from memberlake.contract import ENTITIES
from memberlake.io.delta import Lakehouse

pytestmark = pytest.mark.extended

PLAN = {"SPRING": {"audience": "frequency >= 1", "variants": {"offer": 0.45, "reminder": 0.45, "control": 0.1},
                   "stratify_by": "value_tier", "channel": "email"}}


def _plan(lakehouse, out: Path, *extra: str) -> int:
    return cli.main(["campaign", "plan", "--campaign", "SPRING", "--lakehouse", str(lakehouse), "--out", str(out),
                     "--set", f"campaigns.plans={json.dumps(PLAN)}", *extra])


def _rows(folder: Path) -> list[dict]:
    (part,) = folder.glob("part-*.csv")
    with part.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_plan_assigns_the_audience_and_its_send_list_comes_back_as_contacts(spark, lake_dirs, tmp_path):
    landing, lakehouse = lake_dirs
    lake = Lakehouse(str(lakehouse))
    send = lake.read("silver_orders").agg(F.max("order_ts")).first()[0].date().isoformat()
    assert _plan(lakehouse, tmp_path / "masked", "--as-of", send) == 0
    plan = lake.read("campaign_assignments").where("campaign_id = 'SPRING'")
    buyers = lake.read("member_profile").where("frequency >= 1").count()
    assert plan.count() == buyers and plan.select("person_id").distinct().count() == buyers
    assigned = plan.where("status = 'assigned'")
    suppressed = plan.where("status = 'suppressed'")
    assert assigned.count() + suppressed.count() == buyers and assigned.count() > 50
    assert suppressed.where(F.size("suppressed_by") == 0).count() == 0
    opted_out = lake.read("member_profile").where("frequency >= 1 AND NOT coalesce(marketing_opt_in, false)")
    assert opted_out.join(assigned, "person_id").count() == 0 and opted_out.count() > 0
    shares = {r.variant: r["count"] / assigned.count() for r in assigned.groupBy("variant").count().collect()}
    assert abs(shares["control"] - 0.1) < 0.05 and abs(shares["offer"] - shares["reminder"]) < 0.06
    power = lake.read("campaign_power").where("campaign_id = 'SPRING'").collect()
    assert {(r.variant, r.metric) for r in power} == {(v, m) for v in ("offer", "reminder")
                                                      for m in ("converted", "revenue")}
    assert all(r.mde > 0 and r.contacts + r.control_contacts <= assigned.count() for r in power)

    masked = _rows(tmp_path / "masked")
    assert list(masked[0]) == [c.name for c in ENTITIES["campaign_contacts"].columns]
    assert len(masked) == assigned.count()
    assert all(r["email"].split("@")[0].endswith("***") for r in masked if r["email"])
    raw_emails = {r.email for r in lake.read("silver_members").select("email").collect() if r.email}
    assert not {r["email"] for r in masked} & raw_emails

    before = sorted(map(tuple, plan.select("person_id", "status", "variant").collect()))
    copy = tmp_path / "lake"
    shutil.copytree(lakehouse, copy)
    assert _plan(copy, tmp_path / "raw", "--as-of", send, "--raw") == 0        # a re-run: the same split
    again = Lakehouse(str(copy)).read("campaign_assignments").where("campaign_id = 'SPRING'")
    assert sorted(map(tuple, again.select("person_id", "status", "variant").collect())) == before
    raw = _rows(tmp_path / "raw")
    assert {r["email"] for r in raw if r["email"]} <= raw_emails

    # The sending tool delivers the list back: the readout counts every arm, SRM against the plan.
    back = tmp_path / "landing"
    shutil.copytree(landing, back)
    (back / "campaign_contacts" / "spring.csv").write_bytes(next((tmp_path / "masked").glob("part-*.csv")).read_bytes())
    assert cli.main(["pipeline", "--only", "ingest,clean,campaigns", "--entities", "campaign_contacts",
                     "--landing", str(back), "--lakehouse", str(copy),
                     "--set", f"campaigns.plans={json.dumps(PLAN)}"]) == 0
    results = Lakehouse(str(copy)).read("campaign_results").where("campaign_id = 'SPRING' AND metric = 'converted'")
    arms = {r.variant: (r.contacts, r.control_contacts, r.srm_flag) for r in results.collect()}
    counts = {r.variant: r["count"] for r in assigned.groupBy("variant").count().collect()}
    assert arms == {v: (counts[v], counts["control"], False) for v in ("offer", "reminder")}

"""A landing file delivered again replaces its earlier contribution end to end (issue 25: rows
removed from the new file stayed in silver)."""
from __future__ import annotations

import os

import pytest

from memberlake import cli
from memberlake.io.delta import Lakehouse

HEADER = "member_id,source,first_name,updated_at\n"


def _deliver(path, rows, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{r}\n" for r in rows))
    os.utime(path, (mtime, mtime))


def _silver(spark, lake):
    return {r.member_id: (r.first_name, r._source_file.rsplit("/", 1)[-1])
            for r in lake.read("silver_members").collect()}


@pytest.mark.extended
def test_a_redelivered_file_replaces_its_rows_in_bronze_silver_and_quarantine(spark, tmp_path):
    landing, lakehouse = tmp_path / "landing", tmp_path / "lake"
    args = ["--landing", str(landing), "--lakehouse", str(lakehouse), "--entities", "members"]
    # b.csv: an older row for m2 (another file's contribution, superseded by a.csv's newer row)
    _deliver(landing / "members" / "b.csv", ["m2,crm,Old Bea,2024-01-01"], 1_700_000_000)
    _deliver(landing / "members" / "a.csv", ["m1,crm,Ann,2024-03-01", "m2,crm,Bea,2024-03-01",
                                             "m3,crm,Cy,2024-03-01", ",crm,NoId,2024-03-01"], 1_700_000_000)
    for job in ("ingest", "clean"):
        assert cli.main([job, *args]) == 0
    lake = Lakehouse(str(lakehouse))
    assert _silver(spark, lake) == {"m1": ("Ann", "a.csv"), "m2": ("Bea", "a.csv"), "m3": ("Cy", "a.csv")}
    # a.csv again: m1 corrected, m2 and m3 and the bad row gone, m4 new
    _deliver(landing / "members" / "a.csv", ["m1,crm,Anne,2024-03-01", "m4,crm,Dee,2024-03-02"], 1_700_000_100)
    for job in ("ingest", "clean"):
        assert cli.main([job, *args]) == 0
    assert _silver(spark, lake) == {"m1": ("Anne", "a.csv"), "m2": ("Old Bea", "b.csv"), "m4": ("Dee", "a.csv")}
    bronze = sorted(r.member_id for r in lake.read("bronze_members").collect())
    assert bronze == ["m1", "m2", "m4"]
    assert lake.read("quarantine").where("_source_file LIKE '%a.csv'").count() == 0
    # a further run with nothing new changes nothing
    version = lake.version("silver_members")
    for job in ("ingest", "clean"):
        assert cli.main([job, *args]) == 0
    assert lake.version("silver_members") == version

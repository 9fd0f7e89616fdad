"""An incremental clean skips an entity whose bronze is at the version the last successful clean
read (issue 24: a run with nothing new read the batch column of every bronze row), and still
cleans every entity whose bronze moved, or that the last run did not read."""
from __future__ import annotations

import logging
import os

import pytest

from memberlake import cli
from memberlake.io.delta import Lakehouse

UNCHANGED = "no new bronze batches (bronze unchanged since the last clean)"


def _deliver(landing, entity, name, header, rows):
    path = landing / entity / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(f"{r}\n" for r in rows))
    os.utime(path, (1_700_000_000, 1_700_000_000))


def _members(landing, name, ids):
    _deliver(landing, "members", name, "member_id,source,first_name,updated_at\n",
             [f"{i},crm,N{i},2024-03-01" for i in ids])


def _products(landing, name, ids):
    _deliver(landing, "products", name, "product_id,product_name,category,list_price\n",
             [f"{i},P{i},Toys,9.99" for i in ids])


def _clean(args, caplog, *extra):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="memberlake"):
        assert cli.main(["clean", *args, *extra]) == 0
    return [r.getMessage() for r in caplog.records]


def _skipped(lines):
    return sorted(line.split("] ", 1)[1].split(":")[0] for line in lines if UNCHANGED in line)


@pytest.mark.extended   # four ingests and six cleans through the command line (~55 s)
def test_only_entities_whose_bronze_moved_are_read(spark, tmp_path, caplog):
    landing, lakehouse = tmp_path / "landing", tmp_path / "lake"
    args = ["--landing", str(landing), "--lakehouse", str(lakehouse), "--entities", "members,products"]
    _members(landing, "a.csv", ["m1", "m2"])
    _products(landing, "p.csv", ["p1"])
    assert cli.main(["ingest", *args]) == 0
    assert _skipped(_clean(args, caplog)) == []               # no clean before: both read
    lake = Lakehouse(str(lakehouse))

    _products(landing, "q.csv", ["p2"])                       # products move, members do not
    assert cli.main(["ingest", *args]) == 0
    assert _skipped(_clean(args, caplog)) == ["members"]
    assert sorted(r.product_id for r in lake.read("silver_products").collect()) == ["p1", "p2"]

    assert _skipped(_clean(args, caplog)) == ["members", "products"]   # nothing new anywhere
    assert lake.read("silver_members").count() == 2

    # members move, then a clean of products alone: its run read no members' bronze, so the
    # next clean of both must look at members' batches, not trust a version it never read
    _members(landing, "b.csv", ["m3"])
    assert cli.main(["ingest", *args]) == 0
    assert _skipped(_clean(["--landing", str(landing), "--lakehouse", str(lakehouse), "--entities", "products"],
                           caplog)) == ["products"]
    assert _skipped(_clean(args, caplog)) == ["products"]
    assert sorted(r.member_id for r in lake.read("silver_members").collect()) == ["m1", "m2", "m3"]

    # --full reads everything whatever the versions say
    assert _skipped(_clean(args, caplog, "--full")) == []
    assert lake.read("silver_members").count() == 3 and lake.read("silver_products").count() == 2

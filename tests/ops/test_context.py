"""The job context: typed options, recorded reads, and publish — every kind of write, counted and
recorded, all-or-nothing for readers."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from datetime import date

import pytest

import memberlake
from memberlake.io.commits import FAIL_AFTER_ENV, InjectedFault
from memberlake.jobs.common import options
from memberlake.ops.context import Outputs, job_context, snapshot_predicate
from memberlake.settings import Settings, with_overrides

D1, D2 = date(2024, 1, 7), date(2024, 1, 14)


def _settings(tmp_path) -> Settings:
    return with_overrides(Settings(), storage={"lakehouse": str(tmp_path / "lake"), "catalog": None, "schema": None})


def _snap(spark, day, ids):
    return spark.createDataFrame([(day, i) for i in ids], "as_of_date date, id int")


def _ids(spark, df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def _outputs(spark, day, ids) -> Outputs:
    return Outputs(as_of=day, slices={"snap": _snap(spark, day, ids)},
                   whole={"latest": spark.createDataFrame([(i,) for i in ids], "id int")},
                   appended={"log": spark.createDataFrame([(day, len(ids))], "as_of_date date, n int")})


def test_publish_writes_each_kind_and_records_rows_and_versions(spark, tmp_path):
    settings = _settings(tmp_path)
    with job_context(spark, settings, "demo") as ctx:
        assert ctx.table("snap") is None and not ctx.exists("snap")
        written = ctx.publish(_outputs(spark, D1, [1, 2, 3]))
    assert written == {"snap": 3, "latest": 3, "log": 1}
    assert ctx.run.rows_written == written and set(ctx.run.versions_written) == {"snap", "latest", "log"}
    with job_context(spark, settings, "demo") as ctx:
        assert ctx.publish(_outputs(spark, D2, [4])) == {"snap": 1, "latest": 1, "log": 1}
        ctx.publish(_outputs(spark, D1, [5, 6]))         # a re-run of D1 replaces only its slice
        snap = ctx.table("snap")
        assert ctx.run.versions_read == {"snap": ctx.lake.version("snap")}
    assert _ids(spark, snap) == [(D1, 5), (D1, 6), (D2, 4)]
    assert _ids(spark, ctx.lake.read("latest")) == [(5,), (6,)]
    assert _ids(spark, ctx.lake.read("log")) == [(D1, 2), (D1, 3), (D2, 1)]       # one row per publish
    assert ctx.lake.read("snap").where(snapshot_predicate(D2)).count() == 1


def test_slices_without_a_date_fail_before_writing(spark, tmp_path):
    with pytest.raises(ValueError, match="as_of"):
        with job_context(spark, _settings(tmp_path), "demo") as ctx:
            ctx.publish(Outputs(slices={"snap": _snap(spark, D1, [1])}))
    assert not ctx.exists("snap")


def test_a_failure_between_two_writes_of_one_publish_is_invisible_and_the_rerun_equals_a_clean_one(spark, tmp_path):
    settings = _settings(tmp_path)
    with job_context(spark, settings, "demo") as ctx:
        ctx.publish(_outputs(spark, D1, [1, 2]))
    lake = ctx.lake
    before = {t: _ids(spark, lake.read(t)) for t in ("snap", "latest", "log")}
    os.environ[FAIL_AFTER_ENV] = "demo:latest"      # fails after the slice and the overwrite
    try:
        with pytest.raises(InjectedFault):
            with job_context(spark, settings, "demo") as ctx:
                ctx.publish(_outputs(spark, D2, [7]))
    finally:
        os.environ.pop(FAIL_AFTER_ENV)
    assert {t: _ids(spark, lake.read(t)) for t in before} == before
    with job_context(spark, settings, "demo") as ctx:
        ctx.publish(_outputs(spark, D2, [7]))
    assert _ids(spark, lake.read("snap")) == [(D1, 1), (D1, 2), (D2, 7)]
    assert _ids(spark, lake.read("latest")) == [(7,)]
    assert _ids(spark, lake.read("log")) == [(D1, 2), (D2, 1)]   # the failed run's append is gone


def test_unchanged_skips_only_when_inputs_parameters_code_and_outputs_agree(spark, tmp_path, monkeypatch):
    settings = _settings(tmp_path)
    with job_context(spark, settings, "demo", {"k": 1}) as ctx:
        assert not ctx.unchanged(["latest"])              # never ran
        ctx.publish(_outputs(spark, D1, [1]))
    with job_context(spark, settings, "demo", {"k": 1}) as ctx:
        assert ctx.unchanged(["latest"])
        assert not ctx.unchanged(["latest", "missing"])   # an output is absent: run again
    with job_context(spark, settings, "demo", {"k": 2}) as ctx:
        assert not ctx.unchanged(["latest"])              # parameters changed
        ctx.publish(_outputs(spark, D1, [1]))
    with job_context(spark, settings, "demo", {"k": 2}) as ctx:
        assert ctx.unchanged(["latest"])
    monkeypatch.setattr(memberlake, "__version__", "99.0")
    with job_context(spark, settings, "demo", {"k": 2}) as ctx:
        assert not ctx.unchanged(["latest"])              # the package was upgraded: its code may differ


@dataclass(frozen=True)
class _Options:
    as_of: date | None = None
    full: bool = False
    entities: tuple[str, ...] = ("members",)


def test_options_take_the_jobs_own_fields_from_a_shared_namespace():
    args = argparse.Namespace(as_of=D1, full=True, skip_clv=True, entities=None)
    assert options(_Options, args) == _Options(as_of=D1, full=True)       # None keeps the default
    assert options(_Options, argparse.Namespace()) == _Options()


def test_a_derived_as_of_date_is_derived_again_only_when_its_source_changed(spark, tmp_path):
    settings = _settings(tmp_path)

    def load(ids):
        with job_context(spark, settings, "loader") as ctx:
            ctx.publish(Outputs(whole={"src": spark.createDataFrame([(i,) for i in ids], "id int")}))

    derived: list[date] = []

    def derive_as(day):
        return lambda: derived.append(day) or day

    def demo(given=None, day=D1):
        with job_context(spark, settings, "demo") as ctx:
            ctx.table("src")
            found = ctx.as_of(given, derive_as(day), "src")
            if not ctx.unchanged(["latest"]):
                ctx.publish(_outputs(spark, found, [1]))
        return found, ctx.run.parameters["as_of_from"]

    load([1])
    assert demo() == (D1, "src") and derived == [D1]
    # same version of src: the last run's date, not derived again (derive would now say D2)
    assert demo(day=D2) == (D1, "src") and derived == [D1]
    assert demo(given=D2) == (D2, "argument") and derived == [D1]
    # the last run's date was given, not derived: derive
    assert demo(day=D2) == (D2, "src") and derived == [D1, D2]
    load([1, 2])                                       # a new version of src
    assert demo(day=D1) == (D1, "src") and derived == [D1, D2, D1]
    with job_context(spark, settings, "demo") as ctx:     # src not read in this run: no version to compare
        assert ctx.as_of(None, derive_as(D2), "src") == D2 and derived == [D1, D2, D1, D2]

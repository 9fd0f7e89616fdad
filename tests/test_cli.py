"""CLI wiring that needs no Spark: pipeline order, --only and --from."""
from __future__ import annotations

import pytest

from memberlake.cli import PIPELINE, pipeline_steps
from memberlake.jobs.common import InputError


def names(steps):
    return [s.NAME for s in steps]


def test_pipeline_order_only_and_from():
    assert names(pipeline_steps(None, None)) == [j.NAME for j in PIPELINE] == [
        "ingest", "clean", "identity", "sessions", "reviews", "value", "forecast", "campaigns", "basket", "models",
        "score", "uplift", "report"]
    assert names(pipeline_steps(["clean"], None)) == ["clean"]
    assert names(pipeline_steps(None, "value")) == ["value", "forecast", "campaigns", "basket", "models", "score",
                                                   "uplift", "report"]
    assert names(pipeline_steps(["identity", "ingest"], None)) == ["ingest", "identity"]   # dependency order kept


def test_unknown_job_names_are_refused():
    with pytest.raises(InputError, match="unknown pipeline job 'x'"):
        pipeline_steps(["x"], None)
    with pytest.raises(InputError, match="unknown pipeline job 'y'"):
        pipeline_steps(None, "y")


def test_pipeline_skips_a_job_whose_input_is_absent_and_goes_on(monkeypatch):
    import argparse
    from types import SimpleNamespace

    from memberlake import cli
    from memberlake.jobs.common import MissingInput

    ran = []

    def job(name, missing=False):
        def run(spark, settings, args):
            if missing:
                raise MissingInput(f"{name} needs silver_events")
            ran.append(name)
        return SimpleNamespace(NAME=name, run=run)

    monkeypatch.setattr(cli, "PIPELINE", [job("clean"), job("sessions", missing=True), job("value")])
    cli.run_pipeline(None, None, argparse.Namespace(only=None, start=None))
    assert ran == ["clean", "value"]


def test_pipeline_accepts_and_forwards_every_jobs_flags():
    from memberlake import cli as cli_module

    args = cli_module._build_parser().parse_args(
        ["pipeline", "--skip-clv", "--skip-churn", "--skip-analytics", "--full", "--out", "r.html"])
    assert args.skip_clv and args.skip_churn and args.skip_analytics and args.full and args.out == "r.html"
    assert not args.force and not args.skip_segments
    # every flag of every pipeline job is on the pipeline parser, under the job's own dest
    pipe = cli_module._build_parser()._subparsers._group_actions[0].choices["pipeline"]
    for job in cli_module.PIPELINE:
        sub = cli_module._build_parser()._subparsers._group_actions[0].choices[job.NAME]
        for option in sub._option_string_actions:
            assert option in pipe._option_string_actions, (job.NAME, option)


def test_a_campaign_without_a_plan_fails_before_spark_starts(monkeypatch, capsys):
    from memberlake import cli, spark

    def no_spark(*a, **k):
        raise AssertionError("Spark must not start")

    monkeypatch.setattr(spark, "get_spark", no_spark)
    assert cli.main(["campaign", "plan", "--campaign", "SPRING"]) == 2
    assert "no plan for 'SPRING' in campaigns.plans" in capsys.readouterr().err
    from memberlake.jobs import campaign

    assert campaign.main(["plan", "--campaign", "X", "--set", 'campaigns.plans={"Y": {}}']) == 2
    assert "(known: Y)" in capsys.readouterr().err

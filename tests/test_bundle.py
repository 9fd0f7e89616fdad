"""The Databricks bundle agrees with the code: tasks, entry points, parameters, dependencies."""
from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from memberlake.cli import JOBS, PIPELINE, UPSTREAM
from memberlake.jobs.common import job_parser, settings_from_args

ROOT = Path(__file__).resolve().parents[1]


def _bundle() -> tuple[dict, dict]:
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    resources: dict = {}
    for pattern in bundle["include"]:
        for path in sorted(ROOT.glob(pattern)):
            for kind, items in yaml.safe_load(path.read_text())["resources"].items():
                resources.setdefault(kind, {}).update(items)
    return bundle, resources


def _job() -> dict:
    _, resources = _bundle()
    (job,) = resources["jobs"].values()
    return job


def _substitute(text: str, variables: dict, job_params: dict) -> str:
    text = re.sub(r"\$\{var\.(\w+)\}", lambda m: str(variables[m.group(1)]), text)
    return re.sub(r"\{\{job\.parameters\.(\w+)\}\}", lambda m: str(job_params[m.group(1)]), text)


def test_tasks_follow_the_pipeline_graph():
    tasks = {t["task_key"]: [d["task_key"] for d in t.get("depends_on", [])] for t in _job()["tasks"]}
    assert tasks == UPSTREAM
    order = [job.NAME for job in PIPELINE]
    assert sorted(order) == sorted(UPSTREAM)
    for job, upstream in UPSTREAM.items():  # `memberlake pipeline` order is a topological order
        assert all(order.index(u) < order.index(job) for u in upstream), job


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_every_task_runs_an_existing_entry_point_with_parameters_the_cli_accepts(target):
    bundle, _ = _bundle()
    variables = {k: v.get("default") for k, v in bundle["variables"].items()}
    variables.update(bundle["targets"][target].get("variables", {}))
    job = _job()
    job_params = {p["name"]: p["default"] for p in job["parameters"]}
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    for task in job["tasks"]:
        wheel = task["python_wheel_task"]
        assert wheel["package_name"] == "memberlake"
        name = task["task_key"]
        assert scripts[wheel["entry_point"]] == f"memberlake.jobs.{name}:main"
        argv = [_substitute(p, variables, job_params) for p in wheel["parameters"]]
        args = job_parser(JOBS[name]).parse_args(argv)
        settings = settings_from_args(args)
        assert settings.env == "databricks" and settings.storage.catalog_mode
        assert (settings.storage.catalog, settings.storage.db_schema) == (variables["catalog"], variables["schema"])
        assert task["job_cluster_key"] in {c["job_cluster_key"] for c in job["job_clusters"]}
        assert task["libraries"] == [{"whl": "../dist/*.whl"}]


def test_targets_schedule_cluster_and_secret_key():
    bundle, _ = _bundle()
    assert set(bundle["targets"]) == {"dev", "prod"} and bundle["targets"]["dev"]["mode"] == "development"
    assert bundle["targets"]["dev"]["variables"]["schema"] != bundle["targets"]["prod"]["variables"]["schema"]
    job = _job()
    assert job["schedule"]["quartz_cron_expression"] and job["schedule"]["timezone_id"] == "UTC"
    cluster = job["job_clusters"][0]["new_cluster"]
    assert cluster["spark_env_vars"]["MEMBERLAKE_PII_KEY"].startswith("{{secrets/")
    assert "python -m pip wheel" in bundle["artifacts"]["memberlake_wheel"]["build"]

"""The pinned Spark/Delta pair is consistent everywhere it is written down."""
from __future__ import annotations

import configparser
import re
from importlib.metadata import version
from pathlib import Path

from memberlake.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_delta_jar_matches_python_package_and_spark():
    delta, spark = version("delta-spark"), version("pyspark")
    assert delta.split(".")[:2] == spark.split(".")[:2], "Delta 4.0.x pairs with Spark 4.0.x"
    assert load_settings("local").spark.delta_package == f"io.delta:delta-spark_2.13:{delta}"
    ini = configparser.ConfigParser()
    ini.read(ROOT / "pytest.ini")
    assert f"io.delta:delta-spark_2.13:{delta}" in ini["pytest"]["spark_options"]
    setup = (ROOT / "setup.py").read_text()
    assert f'"spark": ["pyspark=={spark}", "delta-spark=={delta}"]' in setup


def test_pyspark_stubs_is_not_installed():
    from importlib.metadata import PackageNotFoundError

    try:
        version("pyspark-stubs")
    except PackageNotFoundError:
        return
    raise AssertionError("pyspark-stubs pins pyspark 3.0 and is obsolete: uninstall it")


def test_every_job_has_a_spark_submit_shim_and_entry_point():
    from memberlake.cli import JOBS

    setup = (ROOT / "setup.py").read_text()
    for name in JOBS:
        shim = ROOT / "jobs" / f"{name}.py"
        assert shim.is_file(), shim
        assert f"from memberlake.jobs.{name} import main" in shim.read_text()
        assert re.search(rf'"{name}"', setup), name


def test_the_test_session_generates_code_like_the_jobs(spark):
    """Every job's session caps generated methods at 8,000 bytes (HotSpot does not compile larger
    ones: wide projections ran interpreted); the tests run the same way, and a user's
    ``spark.conf`` still wins."""
    from memberlake.settings import with_overrides
    from memberlake.spark import HUGE_METHOD_LIMIT, base_conf

    settings = load_settings("local")
    assert base_conf(settings)[HUGE_METHOD_LIMIT] == "8000"
    assert spark.conf.get(HUGE_METHOD_LIMIT) == "8000"
    mine = with_overrides(settings, spark={"conf": {HUGE_METHOD_LIMIT: "65535"}})
    assert base_conf(mine)[HUGE_METHOD_LIMIT] == "65535"

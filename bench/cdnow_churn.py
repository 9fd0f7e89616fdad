"""Benchmark: churn on the full CDNOW log through ``memberlake pipeline``, beside the BG/NBD score
a user would otherwise borrow from ``lifetimes``.

CDNOW (23,570 customers, 1997-01 to 1998-06, shipped inside ``lifetimes``) goes in as landing orders
(one completed order per purchase row, customer id as member id; no members, sessions or reviews).
The models job makes its own time split (test date = last day - horizon = 1998-04-01). Reported,
all on the job's test rows:

- the registered model's test ROC AUC (``churn_metrics``), and the baselines the job reports beside
  it: recency only, and the point-in-time BG/NBD expected purchases (``bgnbd_only``);
- ``lifetimes``' BetaGeoFitter fitted on the same history (orders up to the test date, in days),
  its expected purchases over the horizon as the score, on the same population (a completed order
  in the ``active_days`` up to the test date) and labels (no order in the horizon after it),
  computed here in pandas; the row counts are printed so the populations can be compared.

    python bench/cdnow_churn.py [--out bench/out/cdnow-churn] [--reuse] [--diagnose]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import summary as bench_summary  # noqa: E402

COMMON = ["--set", "privacy.require_key=false"]


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "memberlake.cli", *args, *COMMON], check=True)


def lifetimes_baseline(landing: Path, horizon: int, active_days: int):
    """(test date, rows, churn rate, ROC AUC of -E[purchases], seconds) of lifetimes' BG/NBD."""
    import pandas as pd
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data
    from sklearn.metrics import roc_auc_score

    orders = pd.read_csv(landing / "orders" / "orders.csv", dtype={"member_id": str})
    orders["day"] = pd.to_datetime(orders["order_ts"]).dt.normalize()
    test = orders["day"].max() - pd.Timedelta(days=horizon)
    history = orders[orders["day"] <= test]
    t0 = time.perf_counter()
    summary = summary_data_from_transaction_data(history, "member_id", "day", observation_period_end=test, freq="D")
    fitter = BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency"], summary["recency"], summary["T"])
    expected = fitter.conditional_expected_number_of_purchases_up_to_time(
        horizon, summary["frequency"], summary["recency"], summary["T"])
    seconds = time.perf_counter() - t0
    last = history.groupby("member_id")["day"].max()
    population = last[last > test - pd.Timedelta(days=active_days)].index
    future = orders[(orders["day"] > test) & (orders["day"] <= test + pd.Timedelta(days=horizon))]["member_id"]
    churned = (~population.isin(set(future))).astype(float)
    auc = roc_auc_score(churned, -expected.loc[population].to_numpy())
    return test.date(), len(population), float(churned.mean()), float(auc), seconds, fitter.params_.to_dict()


def job_metrics(lakehouse: Path):
    from pyspark.sql import functions as F

    from memberlake.io.delta import Lakehouse
    from memberlake.settings import load_settings, with_overrides
    from memberlake.spark import get_spark

    get_spark(with_overrides(load_settings("local"), privacy={"require_key": False}))
    metrics = Lakehouse(str(lakehouse)).read("churn_metrics")
    newest = metrics.agg(F.max("as_of_date")).first()[0]
    return [r.asDict() for r in metrics.where(F.col("as_of_date") == newest).where(F.col("split") == "test").collect()]


def diagnose(lakehouse: Path, horizon: int) -> list[str]:
    """What the job's own features can reach on its test date, outside Spark: the feature table
    with its labels (``ml.features.churn_labels``) in scikit-learn, trained on the dates before the
    test date (the refit's rows) and scored on the test date. Markdown lines."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from memberlake.inputs import person_graph_or_empty, purchases
    from memberlake.io.delta import Lakehouse
    from memberlake.ml.features import churn_labels

    lake = Lakehouse(str(lakehouse))
    bought = purchases(lake.read("silver_orders"), None, person_graph_or_empty(lake), None)
    frame = churn_labels(bought, lake.read("features"), horizon).toPandas()   # 183k rows: bench only
    dates = sorted(frame["as_of_date"].unique())
    test_date = dates[-2]                     # the newest date is the scoring date, without labels
    train, test = frame[frame["as_of_date"] < test_date], frame[frame["as_of_date"] == test_date]
    names = [c for c in frame.columns if c not in ("person_id", "as_of_date", "churned") and train[c].std() > 0]
    positive = [c for c in names if (frame[c] >= 0).all()]

    def logged(df):
        return df[names].assign(**{c: np.log1p(df[c]) for c in positive})

    def auc(model, rows, x=lambda df: df[names]):
        model.fit(x(rows), rows["churned"])
        return roc_auc_score(test["churned"], model.predict_proba(x(test))[:, 1])

    def linear():
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))

    def same_population(model, x=lambda df: df[names]):
        # Fitted and scored on the test date's own rows (5 folds): no shift between the training
        # and the test population. Tells a gap from the shift apart from a gap in the features.
        scores = cross_val_predict(model, x(test), test["churned"], cv=5, method="predict_proba")[:, 1]
        return roc_auc_score(test["churned"], scores)

    latest = train[train["as_of_date"] == dates[-3]]
    rows = [("logistic regression, training + validation dates (the job's refit)", auc(linear(), train)),
            ("the same on log1p of the non-negative features", auc(linear(), train, logged)),
            ("logistic regression on the validation date only (the newest labels)", auc(linear(), latest)),
            ("scikit-learn histogram gradient boosting, training + validation dates",
             auc(HistGradientBoostingClassifier(random_state=0), train)),
            ("logistic regression on log1p, the test date's own rows, 5-fold cross-validated (no population shift)",
             same_population(linear(), logged)),
            ("histogram gradient boosting, the test date's own rows, 5-fold cross-validated (no population shift)",
             same_population(HistGradientBoostingClassifier(random_state=0, learning_rate=0.05, max_depth=3)))]
    single = sorted(((max(a, 1 - a), c) for c in names for a in [roc_auc_score(test["churned"], test[c])]),
                    reverse=True)[:3]
    lines = [f"\nDiagnosis (`--diagnose`): the job's {len(names)} non-constant features and labels, "
             f"{len(train):,} training rows before {test_date}, {len(test):,} test rows, in scikit-learn.\n",
             "| model on the same features | test ROC AUC |", "|---|---:|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in rows]
    lines += [f"| best single feature: {c} | {a:.4f} |" for a, c in single]
    return lines


def main() -> None:
    from loyalty import cdnow_landing

    from memberlake.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "out" / "cdnow-churn"))
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--reuse", action="store_true", help="measure the lakehouse a previous run left in --out")
    parser.add_argument("--diagnose", action="store_true",
                        help="also fit other models on the job's own features and labels (scikit-learn)")
    args = parser.parse_args()
    root = Path(args.out)
    landing, lakehouse = root / "landing", root / "lake"
    t0 = time.perf_counter()
    if not args.reuse:
        shutil.rmtree(root, ignore_errors=True)
        cdnow_landing(landing)
        cli("pipeline", "--only", "ingest,clean,identity,value,models", "--landing", str(landing),
            "--lakehouse", str(lakehouse))
    pipeline_seconds = time.perf_counter() - t0
    cfg = load_settings("local").models
    test, rows, rate, auc, seconds, params = lifetimes_baseline(landing, cfg.churn.horizon_days, cfg.active_days)
    metrics = job_metrics(lakehouse)
    by_model = {(m["model"], m["metric"]): m["value"] for m in metrics}
    champion = next(m for m in metrics if m["metric"] == "rows")
    lines = [f"\n## churn on CDNOW through the pipeline — `python bench/cdnow_churn.py` — "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n",
             f"Full CDNOW log (23,570 customers) as landing orders; `memberlake pipeline --only "
             f"ingest,clean,identity,value,models` "
             f"{'(lakehouse of an earlier run, --reuse)' if args.reuse else f'{pipeline_seconds:.0f} s'} on `local[2]`. "
             f"The job's test date "
             f"{test} (horizon {cfg.churn.horizon_days} days); test rows: job "
             f"{int(champion['value']):,}, lifetimes population {rows:,} (churn rate {rate:.3f}).\n",
             "| score on the test rows | ROC AUC |", "|---|---:|"]
    lines += [f"| memberlake {m['model']} (registered, v{m['model_version']}) | {m['value']:.4f} |"
              for m in metrics if m["metric"] == "roc_auc" and m["model"] not in ("recency_only",)
              and not m["model"].endswith("_only") and "before refit" not in m["model"]]
    lines += [f"| {name} (job's baseline) | {by_model[(name, 'roc_auc')]:.4f} |"
              for name in sorted({m for m, _ in by_model if m.endswith("_only")})]
    lines += [f"| lifetimes BetaGeoFitter, E[purchases in {cfg.churn.horizon_days} days] (fit {seconds:.1f} s) | "
              f"{auc:.4f} |",
              "\nlifetimes parameters (days): " + ", ".join(f"{k} {v:.4f}" for k, v in params.items()) + "\n"]
    if args.diagnose:
        lines += diagnose(lakehouse, cfg.churn.horizon_days)
    text = "\n".join(lines)
    Path(args.results).open("a", encoding="utf-8").write(text)
    print(text, flush=True)
    registered = next(m for m in metrics if m["metric"] == "roc_auc" and not m["model"].endswith("_only")
                      and "before refit" not in m["model"])
    bench_summary.record_into(args.results, "cdnow_churn", "churn on CDNOW through the pipeline, test ROC AUC",
                              f"{registered['value']:.4f}", f"lifetimes BG/NBD {auc:.4f}",
                              f"{registered['value'] - auc:+.4f}", "≥ 0.75", lines[0])


if __name__ == "__main__":
    main()

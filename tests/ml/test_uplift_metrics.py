"""The Spark uplift metrics equal scikit-uplift's on the same rows, and a worked Qini by hand."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from pyspark.sql import functions as F

from memberlake.ml.uplift_metrics import by_decile, curve, qini_coefficient, uplift_at_k, uplift_auc

with warnings.catch_warnings():       # sklift 0.5.1 calls sklearn's deprecated stable_cumsum
    warnings.simplefilter("ignore")
    from sklift.metrics import qini_auc_score, qini_curve, uplift_auc_score, uplift_by_percentile
    from sklift.metrics import uplift_at_k as sk_uplift_at_k


def _rows(seed: int, n: int, ties: bool):
    r = np.random.default_rng(seed)
    w = r.integers(0, 2, n)
    x = r.random(n)
    y = (r.random(n) < 0.2 + 0.3 * w * x).astype(int)         # the treatment works where x is high
    score = np.round(x + r.normal(0, 0.2, n), 1 if ties else 12)
    return y, w, score


def _frame(spark, y, w, score):
    rows = [(int(a), int(b), float(c)) for a, b, c in zip(y, w, score, strict=True)]
    return spark.createDataFrame(rows, "y int, w int, s double")


@pytest.mark.extended
@pytest.mark.parametrize("seed,ties", [(1, False), (2, True), (3, True)])
def test_curves_and_areas_equal_scikit_uplift(spark, seed, ties):
    y, w, s = _rows(seed, 800, ties)
    df = _frame(spark, y, w, s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert qini_coefficient(df, "s") == pytest.approx(qini_auc_score(y, s, w), abs=1e-12)
        assert uplift_auc(df, "s") == pytest.approx(uplift_auc_score(y, s, w), abs=1e-12)
        xs, vs = qini_curve(y, s, w)
    got = sorted((r.x, r.value) for r in curve(df, "s", "qini").collect())
    assert [x for x, _ in got] == list(xs[1:]) and np.allclose([v for _, v in got], vs[1:])


@pytest.mark.extended
def test_uplift_at_k_and_deciles_equal_scikit_uplift(spark):
    y, w, s = _rows(4, 1000, ties=False)
    df = _frame(spark, y, w, s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in (0.1, 0.3, 0.5):
            assert uplift_at_k(df, "s", k) == pytest.approx(sk_uplift_at_k(y, s, w, "overall", k), abs=1e-12)
        table = uplift_by_percentile(y, s, w, strategy="overall", bins=10)
    got = by_decile(df, "s")
    assert [d.n_treatment for d in got] == list(table["n_treatment"].iloc[:10])
    assert [d.n_control for d in got] == list(table["n_control"].iloc[:10])
    assert np.allclose([d.uplift for d in got], table["uplift"].iloc[:10])


def test_rows_tied_across_a_cut_give_the_same_figures_however_the_rows_are_partitioned(spark):
    """Three score values for 600 rows: every cut falls inside a tie. The rows inside the cut are
    chosen by a hash of the row, not by partition order, so re-partitioning changes nothing."""
    y, w, _ = _rows(5, 600, ties=True)
    s = np.repeat([3.0, 2.0, 1.0], 200)
    df = _frame(spark, y, w, s).withColumn("person_id", F.monotonically_increasing_id()).localCheckpoint()
    layouts = [df.coalesce(1), df.repartition(7, "y"), df.orderBy("y", "w").repartition(3),
               df.orderBy(df.y.desc(), df.w.desc()).coalesce(1)]
    for k in (0.1, 0.25, 0.5):
        assert len({uplift_at_k(frame, "s", k) for frame in layouts}) == 1
    deciles = {tuple((d.n_treatment, d.n_control, d.uplift) for d in by_decile(frame, "s")) for frame in layouts}
    assert len(deciles) == 1
    assert all(nt > 0 and nc > 0 for nt, nc, _ in deciles.pop())      # the key shuffles the tied rows' arms


def test_qini_by_hand(spark):
    # scores 4 > 3 > 2 > 1: treated responder, control non-responder, treated non-responder, control responder
    df = spark.createDataFrame([(1, 1, 4.0), (0, 0, 3.0), (0, 1, 2.0), (1, 0, 1.0)], "y int, w int, s double")
    points = sorted((r.x, r.value) for r in curve(df, "s", "qini").collect())
    # n_t, y_t, n_c, y_c at each cut: (1,1,0,0) -> 1; (1,1,1,0) -> 1; (2,1,1,0) -> 1; (2,1,2,1) -> 1 - 1*2/2 = 0
    assert points == [(1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (4.0, 0.0)]
    # area 0.5 + 1 + 1 + 0.5 = 3, baseline 0; this ordering is also the perfect one: coefficient 1
    assert qini_coefficient(df, "s") == pytest.approx(1.0)
    reversed_ = df.selectExpr("y", "w", "-s AS s")
    assert qini_coefficient(reversed_, "s") < 0

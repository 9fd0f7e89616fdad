"""The report's CLV section: standard errors as fitted, and a shape held at its bound said so."""
from __future__ import annotations

from datetime import date

from memberlake.btyd import SHAPE_LIMIT
from memberlake.contract import Tables
from memberlake.report.gather import lifetime_value

PARAMS = ("as_of_date date, model string, parameter string, value double, fit string, std_error double")
DAY, EARLIER = date(2026, 6, 30), date(2026, 3, 31)


class _Tables:
    """The two tables the section reads (what ``Tables_.get`` returns for them)."""

    def __init__(self, spark, params):
        self.frames = {Tables.CLV_PARAMETERS: spark.createDataFrame(params, PARAMS),
                       Tables.CLV: spark.createDataFrame([(DAY, "p1", 0.5)], "as_of_date date, person_id string, clv double")}

    def get(self, name):
        return self.frames.get(name)


def _table(section):
    (caption, columns, rows), = section.tables
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def test_a_shape_at_its_bound_has_no_standard_error_and_a_note(spark):
    nan = float("nan")
    params = [(DAY, "pareto_nbd", "r", 0.87, "full", 0.02), (DAY, "pareto_nbd", "alpha", 40.7, "full", 1.1),
              (DAY, "pareto_nbd", "s", SHAPE_LIMIT, "full", nan), (DAY, "pareto_nbd", "beta", 5.1e6, "full", 2e5),
              (DAY, "gamma_gamma", "gamma", 25_000.0, "full", 900.0),      # a money scale, never bounded
              (DAY, "pareto_nbd", "s", 3.0, "calibration", 0.1),            # another fit, not shown
              (EARLIER, "pareto_nbd", "s", SHAPE_LIMIT, "full", nan)]       # an older as-of date, not shown
    section = lifetime_value(_Tables(spark, params))
    table = _table(section)
    assert len(section.tables[0][2]) == 5 == len(table)                   # the latest full fit only
    assert table[("pareto_nbd", "s")] == (SHAPE_LIMIT, None)              # held: no standard error
    assert table[("pareto_nbd", "r")] == (0.87, 0.02) and table[("pareto_nbd", "beta")] == (5.1e6, 2e5)
    assert table[("gamma_gamma", "gamma")] == (25_000.0, 900.0)
    notes = [n for n in section.notes if "upper bound" in n]
    assert len(notes) == 1 and notes[0].startswith("pareto_nbd: s is at its upper bound (10,000)")


def test_no_note_when_every_parameter_is_inside_its_bounds(spark):
    params = [(DAY, "bgnbd", p, v, "full", 0.01) for p, v in (("r", 0.24), ("alpha", 4.4), ("a", 0.79), ("b", 2.4))]
    section = lifetime_value(_Tables(spark, params))
    assert all(se == 0.01 for _, se in _table(section).values())
    assert not [n for n in section.notes if "upper bound" in n]

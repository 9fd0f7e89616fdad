"""Table names are spelt once: ``memberlake.contract.Tables`` names every declared gold and
operational table, and code refers to those constants, not to string literals.

A literal in a table position (a read, a write, an outputs mapping, a list of tables) would let a
typo create or miss a table silently; a constant fails at import. Names such as ``clv``,
``sessions`` or ``features`` are also column and parameter names, so the check looks at where a
literal is used, not only at its value.
"""
from __future__ import annotations

import ast
from pathlib import Path

from memberlake.contract import ENTITIES, Tables
from memberlake.tables import TABLES

LIB = Path(__file__).resolve().parents[1] / "lib" / "memberlake"
# Where names are spelt: the constants and the declarations that use them.
SPELT = {"contract.py", "tables.py"}
# Calls whose arguments name tables (the lakehouse, the job context, the report's table set, the
# declarations).
TABLE_CALLS = {"read", "exists", "version", "table", "need", "record_read", "unchanged", "replace_slice", "declared",
               "conform", "_declared_columns", "read_optional", "same_version", "history", "optimize", "vacuum"}
# Mappings keyed by table name (a job's outputs, rows written per table).
TABLE_MAPS = {"slices", "whole", "appended", "outputs", "tables", "written", "rows_written", "latest", "replaced"}


def _constants() -> dict[str, str]:
    return {k: v for k, v in vars(Tables).items() if k.isupper()}


def test_every_gold_and_ops_table_has_one_constant_and_every_constant_is_declared():
    gold_ops = {name for name, t in TABLES.items() if t.layer in ("gold", "ops") or name == Tables.QUARANTINE}
    constants = _constants()
    assert {k: v for k, v in constants.items() if k != v.upper()} == {}
    assert set(constants.values()) == gold_ops
    assert {Tables.bronze(e) for e in ENTITIES} | {Tables.silver(e) for e in ENTITIES} | gold_ops == set(TABLES)


def _literal_table_uses(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of each string literal naming a table in a table position."""
    found: list[tuple[int, str]] = []

    def named(node: ast.AST) -> str | None:
        return node.value if isinstance(node, ast.Constant) and node.value in names else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func in TABLE_CALLS:
                args = list(node.args)
                if func == "unchanged":   # a list of the tables whose inputs are compared
                    args += [a for arg in node.args if isinstance(arg, (ast.List, ast.Tuple)) for a in arg.elts]
                found += [(node.lineno, n) for a in args if (n := named(a))]
        elif isinstance(node, ast.Subscript):
            target = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
            if target in TABLE_MAPS and (n := named(node.slice)):
                found.append((node.lineno, n))
        elif isinstance(node, ast.Dict):
            keys = [named(k) for k in node.keys if k is not None]
            if sum(k is not None for k in keys) >= 2:
                found += [(node.lineno, k) for k in keys if k]
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2:
            if all(named(e) for e in node.elts):
                found += [(node.lineno, named(e)) for e in node.elts]
    return found


def test_code_names_gold_and_ops_tables_by_their_constants():
    names = set(_constants().values())
    bad = {}
    for path in sorted(LIB.rglob("*.py")):
        if path.name in SPELT and path.parent == LIB:
            continue
        uses = _literal_table_uses(ast.parse(path.read_text(encoding="utf-8")), names)
        if uses:
            bad[str(path.relative_to(LIB))] = [f"line {line}: {name!r} -> Tables.{name.upper()}" for line, name in uses]
    assert bad == {}


def test_the_checker_sees_literals_in_table_positions_and_not_elsewhere():
    names = {Tables.CLV, Tables.SESSIONS, Tables.RFM}
    probe = ast.parse(
        'lake.read("clv")\n'                                     # 1: a read
        'out.slices["rfm"] = df\n'                               # 2: an output
        'OUT = ("clv", "rfm")\n'                                 # 3: a list of tables
        'ctx.unchanged(["sessions"])\n'                          # 4: a list argument
        'df.select("person_id", "clv")\n'                        # 5: a column: allowed
        'F.count(F.lit(1)).alias("sessions")\n'                  # 6: a column alias: allowed
        'Section("clv", "Customer lifetime value")\n'           # 7: a section id: allowed
        's.table("Top pages", ["page", "sessions"], rows)\n')   # 8: column headers: allowed
    assert sorted(_literal_table_uses(probe, names)) == [(1, "clv"), (2, "rfm"), (3, "clv"), (3, "rfm"), (4, "sessions")]

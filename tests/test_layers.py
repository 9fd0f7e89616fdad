"""The import graph keeps its layers: no job imports another job, no area imports another area.

Shared inputs live in ``memberlake.inputs`` (and ``memberlake.standardise``), below the areas, so
areas meet through tables or that module (docs: shared/ARCHITECTURE.md's layer list).
"""
from __future__ import annotations

import ast
from dataclasses import is_dataclass
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "memberlake"
AREAS = ("basket", "clean", "identity", "ingest", "ml", "sessions", "value", "privacy", "report", "generate",
         "reviews", "forecast", "campaigns")
# Layers below the areas may not import an area or a job (TYPE_CHECKING-only imports are allowed).
BELOW_AREAS = ("settings.py", "contract.py", "errors.py", "spark.py", "io", "inputs.py", "standardise.py", "phones.py", "exprs.py",
               "parsing.py", "btyd.py", "thresholds.py")


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports at run time (not under ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("memberlake")}


def _modules(sub: str) -> list[Path]:
    target = LIB / sub
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


def _job_modules() -> list[Path]:
    return [p for p in (LIB / "jobs").glob("*.py") if p.stem not in ("__init__", "common")]


@pytest.mark.parametrize("path", _job_modules(), ids=lambda p: p.stem)
def test_no_job_imports_another_job(path):
    others = {f"memberlake.jobs.{p.stem}" for p in _job_modules()} - {f"memberlake.jobs.{path.stem}"}
    assert _imports(path) & others == set()


@pytest.mark.parametrize("path", _job_modules(), ids=lambda p: p.stem)
def test_jobs_are_thin(path):
    """A job reads, calls its area, publishes: business logic lives in the areas."""
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 100


def test_every_job_reads_its_flags_through_typed_options():
    import importlib

    for path in _job_modules():
        job = importlib.import_module(f"memberlake.jobs.{path.stem}")
        source = path.read_text(encoding="utf-8")
        assert "getattr(args" not in source and "args." not in source, path.stem
        assert is_dataclass(job.Options), path.stem


@pytest.mark.parametrize("area", AREAS)
def test_no_area_imports_another_area(area):
    bad = {}
    for path in _modules(area):
        other = {m for m in _imports(path) for a in AREAS if a != area and
                 (m == f"memberlake.{a}" or m.startswith(f"memberlake.{a}."))}
        other |= {m for m in _imports(path) if m.startswith("memberlake.jobs")}
        if other:
            bad[str(path.relative_to(LIB))] = sorted(other)
    assert bad == {}


@pytest.mark.parametrize("name", BELOW_AREAS)
def test_lower_layers_import_no_area_or_job(name):
    bad = {}
    for path in _modules(name):
        upward = {m for m in _imports(path) for a in (*AREAS, "jobs", "cli", "ops")
                  if m == f"memberlake.{a}" or m.startswith(f"memberlake.{a}.")}
        # the run record is part of the writer layer: io and the shared inputs use it
        upward -= {"memberlake.ops.runs", "memberlake.ops.runs.Run"}
        if upward:
            bad[str(path.relative_to(LIB))] = sorted(upward)
    assert bad == {}


def test_the_checker_sees_a_violation(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from typing import TYPE_CHECKING\nfrom memberlake.jobs.basket import x\n"
                     "if TYPE_CHECKING:\n    from memberlake.value import y\n", encoding="utf-8")
    assert _imports(probe) == {"memberlake.jobs.basket", "memberlake.jobs.basket.x"}

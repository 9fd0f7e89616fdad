"""SQL rules and names in the settings, checked before Spark starts.

Tags, RFM segments, channel rules, blocking rules and vetoes are SQL text in config. Spark only
parses them when a job reaches them, minutes in, with a traceback that names no key. Here each
rule is parsed with sqlglot's Spark dialect and its column names are checked against the columns
that rule is evaluated over (the declared tables, or the area's own record), so a typo fails at
load with one line: the key, what is wrong, and what it may use.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator

import sqlglot
from sqlglot import exp

from memberlake.contract import Tables
from memberlake.identity.matching import COLUMNS as MATCHED_COLUMNS
from memberlake.settings import Settings, SettingsError
from memberlake.tables import declared

log = logging.getLogger(__name__)


def rule_columns(rule: str) -> set[str]:
    """Column names a SQL boolean expression reads (lower-cased); raises ``ValueError`` when it
    does not parse as one Spark SQL expression."""
    try:
        tree = sqlglot.parse_one(rule, dialect="spark")
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at column {first['col']}" if first.get("col") else ""
        detail = re.sub(r" for <class '[\w.]+'>", "", first.get("description") or str(exc).splitlines()[0])
        raise ValueError(f"{detail}{where}") from None
    except sqlglot.errors.TokenError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    if tree is None or isinstance(tree, (exp.Query, exp.Command, exp.DDL, exp.DML)):
        raise ValueError("expected an expression, not a statement")
    return {c.name.lower() for c in tree.find_all(exp.Column) if not c.table}


def check_rule(key: str, rule: str, allowed: Iterable[str]) -> None:
    """Raise :class:`SettingsError` naming ``key`` when ``rule`` does not parse or reads a column
    outside ``allowed``."""
    if not isinstance(rule, str) or not rule.strip():
        raise SettingsError(f"{key}: a SQL rule is required (got {rule!r})")
    try:
        used = rule_columns(rule)
    except ValueError as exc:
        raise SettingsError(f"{key}: {rule!r} is not a valid Spark SQL expression: {exc}") from None
    names = {a.lower() for a in allowed}
    unknown = sorted(used - names)
    if unknown:
        raise SettingsError(f"{key}: {rule!r} reads unknown column(s) {', '.join(unknown)}; "
                            f"it may use: {', '.join(sorted(names))}")


def check_columns(key: str, columns: Iterable[str], allowed: Iterable[str]) -> None:
    names = {a.lower() for a in allowed}
    unknown = sorted(c for c in columns if c.lower() not in names)
    if unknown:
        raise SettingsError(f"{key}: unknown column(s) {', '.join(unknown)}; choose from {', '.join(sorted(names))}")


def _declared_columns(*tables: str) -> set[str]:
    return {c for t in tables for c in declared(t).column_names}


def _rules(settings: Settings) -> Iterator[tuple[str, str, set[str]]]:
    """(key, rule, the columns it is evaluated over) for every SQL rule in the settings."""
    profile = _declared_columns(Tables.MEMBER_PROFILE) - {"tags"}
    for name, rule in settings.value.tags.items():
        yield f"value.tags.{name}", rule, profile
    rfm = _declared_columns(Tables.RFM)
    for i, seg in enumerate(settings.value.segments):
        yield f"value.segments[{i}].rule ({seg.get('name')})", seg.get("rule"), rfm
    sessions = _declared_columns(Tables.SESSIONS) - {"channel"}
    for i, chan in enumerate(settings.sessions.channels):
        yield f"sessions.channels[{i}].rule ({chan.get('name')})", chan.get("rule"), sessions
    matching = settings.identity.matching
    record = set(MATCHED_COLUMNS)
    for i, rule in enumerate(matching.blocking):
        for j, key in enumerate(rule):
            yield f"identity.matching.blocking[{i}][{j}]", key, record
    pair = ({f"{c}_level" for c in (*MATCHED_COLUMNS, "address")}
            | {f"{side}_{c}" for side in "lr" for c in MATCHED_COLUMNS})
    for i, rule in enumerate(matching.veto):
        yield f"identity.matching.veto[{i}]", rule, pair


def _campaign_plans(settings: Settings) -> None:
    """Each plan's audience rule and strata name audience columns (profile and scores)."""
    from memberlake.campaigns.plan import audience_columns

    allowed = audience_columns()
    for name, plan in settings.campaigns.plans.items():
        check_rule(f"campaigns.plans.{name}.audience", plan.audience, allowed)
        if plan.target_top is not None:
            check_rule(f"campaigns.plans.{name}.rank_by", plan.rank_by, allowed)
        if plan.stratify_by is not None:
            check_columns(f"campaigns.plans.{name}.stratify_by", [plan.stratify_by], allowed)


def _monitoring(settings: Settings) -> None:
    """Every data-quality check names a declared table and its columns; validity rules parse."""
    from memberlake.tables import TABLES

    for i, check in enumerate(settings.monitoring.checks):
        key = f"monitoring.checks[{i}]"
        if check.table not in TABLES:
            raise SettingsError(f"{key}.table: {check.table!r} is not a memberlake table (see `memberlake tables` or "
                                "README's table list)")
        columns = TABLES[check.table].column_names
        if check.column:
            check_columns(f"{key}.column", [c.strip() for c in check.column.split(",") if c.strip()], columns)
        if check.rule:
            check_rule(f"{key}.rule", check.rule, columns)


def check_settings(settings: Settings) -> None:
    """Every SQL rule and column name in ``settings`` parses and names columns that exist."""
    for key, rule, allowed in _rules(settings):
        check_rule(key, rule, allowed)
    _monitoring(settings)
    _campaign_plans(settings)
    for i, rule in enumerate(settings.identity.matching.blocking):
        if not rule:
            raise SettingsError(f"identity.matching.blocking[{i}]: a blocking rule needs at least one key")
    check_columns("basket.segment_by", settings.basket.segment_by,
                  _declared_columns(Tables.silver("orders"), Tables.MEMBER_PROFILE))
    channel_rules = [c.get("name") for c in settings.sessions.channels]
    if any(not n for n in channel_rules):
        raise SettingsError("sessions.channels: every rule needs a name and a rule")

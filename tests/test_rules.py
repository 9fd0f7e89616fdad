"""SQL rules in config are parsed and their columns checked at load, naming the key (issue 25)."""
from __future__ import annotations

import pytest

from memberlake import cli
from memberlake.rules import check_settings, rule_columns
from memberlake.settings import SettingsError, load_settings


def test_the_shipped_rules_pass():
    check_settings(load_settings("local"))


@pytest.mark.parametrize("rule, columns", [
    ("value_tier = 'platinum' AND lifecycle_stage IN ('active', 'new')", {"value_tier", "lifecycle_stage"}),
    ("medium RLIKE '^e[-_ ]?mail$' OR source RLIKE 'newsletter'", {"medium", "source"}),
    ("soundex(last_name)", {"last_name"}),
    ("size(preferred_categories) > 2", {"preferred_categories"}),
    ("true", set()),
])
def test_rule_columns(rule, columns):
    assert rule_columns(rule) == columns


@pytest.mark.parametrize("override, message", [
    ("value.tags.vip=valu_tier = 1 AND", r"value\.tags\.vip: 'valu_tier = 1 AND' is not a valid Spark SQL"),
    ("value.tags.vip=valu_tier = 1", r"value\.tags\.vip: .* unknown column\(s\) valu_tier; it may use: .*value_tier"),
    ("value.segments=[{name: X, rule: 'r_scor >= 4'}]", r"value\.segments\[0\]\.rule \(X\): .*r_scor"),
    ("sessions.channels=[{name: web, rule: 'mediun = 1'}]", r"sessions\.channels\[0\]\.rule \(web\): .*mediun"),
    ("identity.matching.blocking=[[postcode, 'substr(lastname, 1, 3)']]", r"blocking\[0\]\[1\]: .*lastname"),
    ("identity.matching.veto=['first_name_lvl = 0']", r"veto\[0\]: .*first_name_lvl"),
    ("identity.matching.veto=['select 1']", r"veto\[0\]: .*not a statement"),
    ("basket.segment_by=[segmnt]", r"basket\.segment_by: unknown column\(s\) segmnt"),
])
def test_bad_rules_fail_at_load_naming_the_key(override, message):
    with pytest.raises(SettingsError, match=message):
        check_settings(load_settings("local", [override]))


@pytest.fixture
def no_spark(monkeypatch):
    """Fails the test if the command gets as far as starting Spark."""
    import memberlake.spark

    def refuse(*_a, **_k):
        raise AssertionError("Spark was started before the arguments were checked")
    monkeypatch.setattr(memberlake.spark, "get_spark", refuse)


@pytest.mark.parametrize("argv, message", [
    (["value", "--set", "value.tags.vip=valu_tier = 1 AND"], "value.tags.vip"),
    (["pipeline", "--only", "bogus"], "unknown pipeline job 'bogus'"),
    (["pipeline", "--from", "valeu"], "unknown pipeline job 'valeu'"),
    (["export", "silver_members", "--out", "x", "--where", "country ="], "--where: 'country =' is not a valid"),
    (["export", "silver_members", "--out", "x", "--where", "contry = 'US'"], "--where: .*contry"),
    (["export", "silver_members", "--out", "x", "--columns", "email,emial"], "--columns: unknown column(s) emial"),
    (["sessions", "--set", "sessions.midnight_timezone=Mars/Olympus"], "sessions.midnight_timezone"),
])
def test_user_errors_exit_2_with_one_line_before_spark_starts(no_spark, capsys, argv, message):
    import re

    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("memberlake: error: ")
    assert re.search(message, err) or message in err


@pytest.mark.parametrize("override, message", [
    ("monitoring.checks=[{table: silver_membrs, check: completeness, column: email, min: 0.5}]",
     r"monitoring\.checks\[0\]\.table: 'silver_membrs' is not a memberlake table"),
    ("monitoring.checks=[{table: silver_members, check: completeness, column: emial, min: 0.5}]",
     r"monitoring\.checks\[0\]\.column: unknown column\(s\) emial"),
    ("monitoring.checks=[{table: silver_orders, check: validity, rule: 'total_amout > 0', min: 1}]",
     r"monitoring\.checks\[0\]\.rule: .*total_amout"),
])
def test_bad_monitoring_checks_fail_at_load(override, message):
    with pytest.raises(SettingsError, match=message):
        check_settings(load_settings("local", [override]))


def test_a_check_missing_its_limit_is_refused():
    with pytest.raises(SettingsError, match="a completeness check on silver_members needs min"):
        load_settings("local", ["monitoring.checks=[{table: silver_members, check: completeness, column: email}]"])

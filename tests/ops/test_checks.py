"""Data-quality checks on what a job wrote, before it is published; alerts to a table and a webhook
(issue 24: monitoring and alerts, tested with planted quality failures)."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from memberlake.io.delta import Lakehouse
from memberlake.ops.checks import DataQualityError, evaluate
from memberlake.ops.runs import recorded_run
from memberlake.settings import CheckRule, MonitoringSettings

NOW = datetime(2024, 6, 1, tzinfo=timezone.utc)


def _rule(**kw) -> CheckRule:
    return CheckRule(table="t", **kw)


def test_each_check_by_hand(spark):
    rows = [("a", 1.0, datetime(2024, 5, 30)), ("b", None, datetime(2024, 5, 1)), ("b", -2.0, None), (None, 4.0, None)]
    df = spark.createDataFrame(rows, "k string, amount double, ts timestamp")
    got = evaluate(df, [_rule(check="completeness", column="amount", min=0.75),
                        _rule(check="completeness", column="k", min=0.8),
                        _rule(check="validity", rule="amount >= 0", min=0.5),     # null is not valid
                        _rule(check="uniqueness", column="k", min=0.75),           # a, b, null of 4 rows
                        _rule(check="freshness", column="ts", max_age_days=2.5),   # newest: 2 days old
                        _rule(check="row_count_change", max_change=0.5)], previous_rows=10.0, now=NOW)
    assert [(round(r.value, 4), r.passed) for r in got] == [
        (0.75, True), (0.75, False), (0.5, True), (0.75, True), (2.0, True), (4.0, False)]
    assert "10 -> 4 rows (+60.0% change" in got[5].message


def test_an_empty_table_and_a_first_count_pass(spark):
    empty = spark.createDataFrame([], "k string, ts timestamp")
    got = evaluate(empty, [_rule(check="completeness", column="k", min=1.0), _rule(check="row_count_change", max_change=0.1),
                           _rule(check="freshness", column="ts", max_age_days=1)], previous_rows=None, now=NOW)
    assert [r.passed for r in got] == [True, True, False]      # no newest value: not fresh


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def _job(spark, lake, cfg, rows, fail=False):
    with recorded_run(spark, lake, "clean", {}, monitoring=cfg) as run:
        lake.overwrite(spark.createDataFrame(rows, "order_id string, total_amount double"), "silver_orders")
        run.record_write("silver_orders", len(rows), lake.version("silver_orders"))


def test_a_failed_error_check_leaves_the_outputs_unpublished_and_alerts(spark, tmp_path, webhook):
    lake = Lakehouse(str(tmp_path))
    cfg = MonitoringSettings(webhook_url=webhook, checks=[
        CheckRule(table="silver_orders", check="validity", rule="total_amount >= 0", min=1.0, severity="error"),
        CheckRule(table="silver_orders", check="row_count_change", max_change=0.5, severity="warn")])
    _job(spark, lake, cfg, [("o1", 5.0), ("o2", 7.0)])                       # good data: published
    assert lake.read("silver_orders").count() == 2 and _Hook.received == []
    with pytest.raises(DataQualityError, match=r"clean: data-quality check failed, outputs not published: "
                                               r"silver_orders: validity \(total_amount >= 0\): 0\.8000"):
        _job(spark, lake, cfg, [("o1", 5.0), ("o2", 7.0), ("o3", 1.0), ("o4", 2.0), ("o5", -1.0)])
    assert lake.read("silver_orders").count() == 2                    # readers still see the good run
    checks = {(r.check, r.passed) for r in lake.read("dq_alerts").where("run_id IS NOT NULL").collect()}
    assert checks == {("validity", True), ("row_count_change", True), ("validity", False), ("row_count_change", False)}
    alerts = sorted((r.severity, r.subject) for r in lake.read("alerts").collect())
    assert alerts == [("error", "silver_orders"), ("warn", "silver_orders")]   # 2 -> 5 rows: +150%
    assert len(_Hook.received) == 1 and {a["severity"] for a in _Hook.received[0]["alerts"]} == {"error", "warn"}
    assert lake.read("job_runs").where("status = 'failed'").count() == 1


def test_a_dead_webhook_does_not_fail_the_job(spark, tmp_path):
    lake = Lakehouse(str(tmp_path))
    cfg = MonitoringSettings(webhook_url="http://127.0.0.1:9/nowhere", webhook_timeout_s=2, checks=[
        CheckRule(table="silver_orders", check="completeness", column="total_amount", min=1.0, severity="warn")])
    _job(spark, lake, cfg, [("o1", None)])
    assert lake.read("alerts").count() == 1 and lake.read("silver_orders").count() == 1

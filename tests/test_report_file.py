"""The report's HTML file is replaced whole: written beside the old one, then renamed over it."""
from __future__ import annotations

from memberlake.jobs.report import write_text


def test_the_report_file_is_replaced_whole_and_leaves_no_partial_file(spark, tmp_path):
    path = tmp_path / "_report" / "memberlake-report.html"
    write_text(spark, str(path), "<p>first</p>")
    write_text(spark, str(path), "<p>second, café 会员</p>")
    assert path.read_text(encoding="utf-8") == "<p>second, café 会员</p>"
    assert [p.name for p in path.parent.iterdir() if "partial" in p.name] == []

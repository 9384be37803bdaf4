"""scripts/demo.py judges a balanced slice of the held-out synthetic test (a constant verdict must
still score 0.5 there) and ends by naming the eval reports, report.html where eval wrote one."""

import pytest

from judge.core.jsonl import read_items
from script_module import load_script


def test_the_synthetic_slice_has_as_many_items_with_each_winner(tmp_path):
    demo = load_script("demo")
    path = demo.balanced_subset(demo.SYNTHETIC / "test.jsonl", 30, tmp_path / "slice.jsonl")
    items = read_items(path)
    assert [item.winner for item in items].count("1") == 15 and len(items) == 30
    every = [item.id for item in read_items(demo.SYNTHETIC / "test.jsonl")]
    assert [item.id for item in items] == [i for i in every if i in {item.id for item in items}]  # file order kept


@pytest.mark.parametrize("n", [0, 7])
def test_an_odd_or_empty_slice_is_refused(tmp_path, n):
    demo = load_script("demo")
    with pytest.raises(SystemExit, match="even number"):
        demo.balanced_subset(demo.SYNTHETIC / "test.jsonl", n, tmp_path / "slice.jsonl")


def test_the_report_named_is_the_page_when_eval_wrote_one(tmp_path):
    demo = load_script("demo")
    assert demo.report_path(tmp_path) == tmp_path / "report.md"
    (tmp_path / "report.html").write_text("<html></html>")
    assert demo.report_path(tmp_path) == tmp_path / "report.html"


def test_bench_demo_reads_every_stage_line_the_demo_prints(tmp_path, capsys):
    """scripts/bench_demo.py collects the demo's stage timings from its output: the two scripts'
    formats must agree, or the benchmark would silently record no stages."""
    demo, bench = load_script("demo"), load_script("bench_demo")
    demo.stage(tmp_path, "train", lambda: None)
    demo.stage(tmp_path, "train", lambda: None)  # done: reused, not timed again
    found = bench.STAGE.findall(capsys.readouterr().out)
    assert [(name, int(seconds)) for name, seconds, _, _ in found] == [("train", 0)]


def test_the_summary_prints_shares_with_three_decimals():
    demo = load_script("demo")
    assert (demo.rate(0.232142857), demo.rate(0.0), demo.rate(None)) == ("0.232", "0.000", "n/a")

"""judge.testing.cascade_scenario's summary of a cascade run against gold labels (the row both cascade
scripts write to bench/results): agreement of the local judge alone (OUT.stem.local.jsonl) and of the
cascade (OUT), next to what calibrate chose and run_cascade did."""

from judge.core.jsonl import write_jsonl
from judge.core.records import Verdict
from judge.testing.cascade_scenario import agreement, result_row

GOLD = {"a": "1", "b": "2", "c": "1", "d": "tie"}
CASCADE = {"threshold": 0.8, "coverage": 0.75, "agreement_lower_bound": 0.91}
SUMMARY = {"share_escalated": 0.25, "teacher_calls": 2, "teacher_cost_usd": 0.01, "all_teacher_cost_usd": 0.04}


def write(path, winners: dict[str, str]) -> None:
    write_jsonl(path, [Verdict(id=i, winner=w, parse_ok=True) for i, w in winners.items()])


def test_agreement_is_the_share_of_gold_winners_over_every_verdict(tmp_path):
    write(tmp_path / "p.jsonl", {"a": "1", "b": "1", "c": "1"})  # an id absent from the file is not counted
    assert agreement(tmp_path / "p.jsonl", GOLD) == round(2 / 3, 4)


def test_result_row_reads_the_local_and_the_cascade_file(tmp_path):
    write(tmp_path / "pred-0.9.local.jsonl", {"a": "1", "b": "1", "c": "2", "d": "tie"})
    write(tmp_path / "pred-0.9.jsonl", {"a": "1", "b": "2", "c": "2", "d": "tie"})
    row = result_row(0.9, 0.1, CASCADE, SUMMARY, tmp_path / "pred-0.9.jsonl", GOLD)
    assert row == {"target_agreement": 0.9, "risk": 0.1, "threshold": 0.8, "calibration_coverage": 0.75,
                   "calibration_lower_bound": 0.91, "share_escalated": 0.25, "agreement_local_only": 0.5,
                   "agreement_cascade": 0.75, "teacher_calls": 2, "teacher_cost_usd": 0.01,
                   "all_teacher_cost_usd_estimated": 0.04}

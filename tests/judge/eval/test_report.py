"""judge.eval.report: report.md, metrics.json and the PNGs `judgeforge eval` writes, from a report dict
built by hand (what judge.eval.evaluate computes is tested in tests/judge/test_evaluate*.py)."""

import json

from judge.eval.report import render_markdown, write_report


def pairwise_judge(name: str, accuracy: float, **extra) -> dict:
    return {"judge": name, "predictions": f"{name}.jsonl", "n": 4, "accuracy": accuracy, "precision": 0.5,
            "recall": 0.5, "f1": 0.4, "parse_failure_rate": 0.25, "ci95": {"accuracy": [0.25, 1.0], "f1": [0.1, None]},
            "consistency": 0.5, "prefer_first_rate": 0.75, "prefer_second_rate": 0.25, **extra}


def pairwise_report(**judge_fields) -> dict:
    judge = pairwise_judge("teacher (gpt-4o)", 0.75, **judge_fields)
    return {"mode": "pairwise", "gold": "gold.jsonl", "n_gold": 5, "bootstrap_resamples": 100, **judge}


def test_one_pairwise_judge_headline_bias_swap_confusion_failures_and_missing_ids():
    report = pairwise_report(
        position_bias={"consistency": 0.5, "prefer_first_rate": 0.75, "prefer_second_rate": 0.25, "delta_bias": 0.5,
                       "total_bias": 0.5, "n_both_unparsed": 1, "n": 4},
        swap_protocol={"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "n": 4,
                       "ci95": {"accuracy": [0.0, 1.0]}},
        confusion_matrix={"labels_gold": ["1", "2"], "labels_pred": ["1", "2", "tie"], "counts": [[2, 0, 1], [0, 1, 0]]},
        n_unparsed=1, n_items_unparsed=1, unparsed_policy="tie", macro_over=["1", "2"], headline_protocol="ab",
        parsing={"unparsed": 1, "verdicts": 8, "examples": [{"id": "q3", "order": "ba", "error": "no verdict",
                                                             "raw": "a | b\nc"}]},
        missing={"in_gold_not_pred": 1, "in_pred_not_gold": 0, "examples_gold_only": ["q5"], "examples_pred_only": []})
    text = render_markdown(report, {})
    assert text.startswith("# Judge evaluation\n\nGold: `gold.jsonl` (5 labelled items, pairwise). Bootstrap CIs: 100")
    assert "## Judges side by side" not in text  # one judge: its details only
    assert "| accuracy | 0.7500 | [0.2500, 1.0000] |" in text
    assert "| f1 | 0.4000 | n/a |" in text  # a CI with an open end is not printed as a number
    assert "| 0.5000 | 0.7500 | 0.2500 | 0.5000 | 0.5000 | 1 | 4 |" in text  # position bias row
    assert "| 0.5000 [0.0000, 1.0000] | 0.5000 | 0.5000 | 0.5000 n/a | 4 |" in text  # swap protocol
    assert "| gold \\ pred | 1 | 2 | tie |" in text and "| 1 | 2 | 0 | 1 |" in text
    assert ("Unparsed verdicts: 1 of 8 (parse failure rate 0.2500); 1 items have no headline verdict, counted as "
            "`tie`. Macro averages over the gold file's classes: 1, 2.") in text
    assert "F1 above are those of the `ab` verdicts (the order given, JudgeLM's protocol" in text
    assert "| q3 | ba | no verdict | a \\| b c |" in text  # a reply's | is escaped, its newline cannot break the table
    assert "**Missing ids**: 1 gold items have no prediction (e.g. q5); 0 predictions have no gold label (e.g. -)" in text


def test_several_judges_side_by_side_with_kappa():
    judges = {"a": pairwise_judge("a", 1.0), "b": pairwise_judge("b", 0.5)}
    report = {"mode": "pairwise", "gold": "gold.jsonl", "n_gold": 4, "bootstrap_resamples": 0, "judges": judges,
              "between_judges": {"pairs": [{"a": "a", "b": "b", "n": 4, "agreement": 0.5, "cohen_kappa": 0.2}],
                                 "fleiss_kappa": None}}
    text = render_markdown(report, {})
    side, details = text.split("## Details")
    assert "| a | 4 | 1.0000 [0.2500, 1.0000] |" in side and "| b | 4 | 0.5000 [0.2500, 1.0000] |" in side
    assert "| judge A | judge B | n | agreement | Cohen's kappa |" in side and "| a | b | 4 | 0.5000 | 0.2000 |" in side
    assert "Fleiss" not in side
    assert "### a" in details and "### b" in details


def test_pointwise_correlations_groups_and_unparsed_policy():
    report = {"mode": "pointwise", "gold": "g.jsonl", "n_gold": 3, "bootstrap_resamples": 0, "judge": "j", "n": 3,
              "pearson": 0.9, "spearman": 0.8, "kendall": 0.7, "ci95": {}, "parse_failure_rate": 0.0,
              "system_level": {"pearson": 1.0, "spearman": 1.0, "kendall": 1.0, "n_systems": 2},
              "mae": 0.5, "mean_pred": 3.0, "mean_gold": 3.5, "n_unparsed": 0, "n_items_unparsed": 0,
              "parsing": {"verdicts": 3, "unparsed": 0}, "unparsed_policy": "drop"}
    text = render_markdown(report, {})
    assert "| pearson | 0.9000 | n/a |" in text and "accuracy" not in text
    assert "**System level (per-model mean scores)**: Pearson 1.0000, Spearman 1.0000, Kendall 1.0000 (2 groups)." in text
    assert "Mean absolute error 0.5000; mean predicted 3.0000 vs gold 3.5000." in text
    assert ("Unparsed verdicts: 0 of 3 (parse failure rate 0.0000); 0 items have no parsed score, left out of the "
            "correlations (`--unparsed drop`).") in text


def test_length_bias_that_could_not_be_measured_says_why():
    report = pairwise_report(length_bias={"available": False, "reason": "the gold file has no answers: pass --items"})
    assert "**Length bias**: not measured; the gold file has no answers: pass --items." in render_markdown(report, {})


def test_write_report_files_plots_and_metrics_without_the_raw_scores(tmp_path):
    report = pairwise_report(confusion_matrix={"labels_gold": ["1", "2"], "labels_pred": ["1", "2"],
                                               "counts": [[1, 1], [0, 2]]},
                             scatter={"gold": [1.0], "pred": [2.0]})
    write_report(report, str(tmp_path / "eval"))
    png = tmp_path / "eval" / "confusion_teacher_gpt-4o.png"  # the judge's name made file-safe
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "![confusion matrix](confusion_teacher_gpt-4o.png)" in (tmp_path / "eval" / "report.md").read_text()
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert "scatter" not in metrics and metrics["accuracy"] == 0.75
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["confusion_teacher_gpt-4o.png", "metrics.json",
                                                                      "report.md", "scatter_teacher_gpt-4o.png"]


def test_write_report_without_plots_writes_no_png(tmp_path):
    report = pairwise_report(confusion_matrix={"labels_gold": ["1"], "labels_pred": ["1"], "counts": [[1]]})
    write_report(report, str(tmp_path / "eval"), plots=False)
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["metrics.json", "report.md"]
    assert "![" not in (tmp_path / "eval" / "report.md").read_text()

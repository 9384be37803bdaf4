"""Evaluation: metrics (one definition each), the predictions and gold labels eval reads,
evaluate, the benchmark protocols, the judge card, report.md and report.html."""

"""`judgeforge eval`."""

from __future__ import annotations


def cmd_eval(args) -> int:
    from ..evaluate import evaluate

    report = evaluate(args.pred, args.gold, args.out, pred_format=args.pred_format, gold_format=args.gold_format,
                      items_path=args.items, unparsed=args.unparsed, threshold=args.threshold, n_resamples=args.bootstrap, seed=args.seed,
                      plots=not args.no_plots)
    print_summary(report)
    print(f"metrics: {args.out}/metrics.json  report: {args.out}/report.md")
    return 0


def print_summary(report: dict) -> None:
    """A compact table of every judge's headline numbers with their 95% CIs."""
    from rich.console import Console
    from rich.table import Table

    judges = report.get("judges") or {report.get("judge"): report}
    pairwise = report["mode"] == "pairwise"
    cols = (["accuracy", "f1", "consistency", "prefer_longer_rate", "gold_prefer_longer_rate", "parse_failure_rate"]
            if pairwise
            else ["pearson", "spearman", "kendall", "parse_failure_rate"])
    table = Table(title=f"{report['mode']} evaluation against {report['gold']}")
    table.add_column("judge")
    table.add_column("n", justify="right")
    for c in cols:
        table.add_column(c.replace("_rate", "").replace("_", " "), justify="right")
    for name, m in judges.items():
        cells = []
        for c in cols:
            v, ci = m.get(c), (m.get("ci95") or {}).get(c)
            cell = "n/a" if v is None else f"{v:.4f}"
            if ci and None not in ci and c not in ("prefer_longer_rate", "gold_prefer_longer_rate"):
                cell += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
            cells.append(cell)
        table.add_row(str(name), str(m.get("n")), *cells)
    Console(width=max(Console().width, 110)).print(table)
    from .calibrate import print_escalation

    print_escalation(judges)


def register(verbs) -> None:
    from ..evaluate import FORMATS

    ev = verbs.add_parser("eval", help="evaluate predictions against gold labels",
                          description="Agreement, precision/recall/F1, consistency, position and length bias, "
                                      "agreement per category (pairwise); "
                                      "Pearson/Spearman/Kendall (pointwise); bootstrap 95%% CIs; report.md and plots. "
                                      "Several --pred put judges side by side.")
    ev.add_argument("--pred", action="append", required=True, help="predictions (Verdict JSONL); repeat to compare judges")
    ev.add_argument("--gold", required=True,
                    help="gold labels: items with winner/score, {id, winner|score} rows, or another judge's verdicts")
    ev.add_argument("--pred-format", default="jsonl", choices=FORMATS, help="read --pred through an importer")
    ev.add_argument("--gold-format", default="jsonl", choices=FORMATS, help="read --gold through an importer")
    ev.add_argument("--items", help="the items the gold labels belong to, when --gold holds bare labels or a "
                                    "teacher's verdicts: answer lengths (length bias), category, question")
    ev.add_argument("--unparsed", default="tie", choices=["tie", "drop", "wrong"],
                    help="how unparsed verdicts count: tie (default, the PandaLM/JudgeLM convention; pointwise: the "
                         "middle of the gold score range), drop (left out, counted), wrong (never agrees; pointwise: "
                         "the far end of the gold range)")
    ev.add_argument("--threshold", type=float, default=0.0,
                    help="score-pair verdicts: a gap of at most T is a tie (JudgeLM's T, default 0)")
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% CIs (0: none)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    ev.add_argument("--out", required=True, help="output folder for metrics.json, report.md, *.png")
    ev.set_defaults(func=cmd_eval)

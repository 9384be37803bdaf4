"""`judgeforge eval`."""

from __future__ import annotations

from judge.cli.options import add_config_arguments, config_from


def cmd_eval(args) -> int:
    from judge.eval.evaluate import EvalConfig, evaluate

    config = config_from(EvalConfig, args)
    report = evaluate(config.pred, config.gold, config.out, pred_format=config.pred_format,
                      gold_format=config.gold_format, items_path=config.items, unparsed=config.unparsed,
                      threshold=config.threshold, n_resamples=config.bootstrap, seed=config.seed,
                      plots=not config.no_plots, protocol=config.protocol, card=config.card,
                      card_include=config.card_include, html=not config.no_html)
    print_summary(report)
    html = "" if config.no_html else f"  page: {config.out}/report.html"
    print(f"metrics: {config.out}/metrics.json  report: {config.out}/report.md{html}")
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
    from judge.cli.calibrate import print_escalation

    print_escalation(judges)
    for name, m in judges.items():  # --protocol judgebench: its own accuracy, as JudgeBench publishes it
        jb = m.get("judgebench")
        if jb:
            print(f"JudgeBench {name}: " + ", ".join(
                f"{c} {'n/a' if jb[c] is None else f'{100 * jb[c]:.2f}'}" for c in ("overall", "knowledge", "reasoning",
                                                                                  "math", "coding")))


def register(verbs) -> None:
    from judge.eval.evaluate import EvalConfig

    ev = verbs.add_parser("eval", help="evaluate predictions against gold labels",
                          description="Agreement, precision/recall/F1, consistency, position and length bias, "
                                      "agreement per category (pairwise); "
                                      "Pearson/Spearman/Kendall (pointwise); bootstrap 95% CIs; report.md and plots. "
                                      "Several --pred put judges side by side.")
    add_config_arguments(ev, EvalConfig)
    ev.set_defaults(func=cmd_eval)

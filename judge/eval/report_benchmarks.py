"""report.md's benchmark sections (`eval --protocol`, `--card`): JudgeBench's accuracy with every
judge ranked side by side per category, EvalBiasBench per bias type, and the judge card."""

from __future__ import annotations

from judge.eval.card import JUDGEBENCH_COLUMNS, bias_line, card_lines


def _judges(report: dict) -> dict:
    return report.get("judges") or {report.get("judge"): report}


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _pct(x, ci=None) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.2f}" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci and None not in ci else "")


def judgebench_lines(report: dict) -> list[str]:
    """All judges ranked by JudgeBench's overall accuracy, one column per category (percent, as
    JudgeBench publishes them)."""
    judges = {name: m["judgebench"] for name, m in _judges(report).items() if m.get("judgebench")}
    if not judges:
        return []
    ranked = sorted(judges.items(), key=lambda kv: -(kv[1]["overall"] or 0))
    any_jb = next(iter(judges.values()))
    sizes = ", ".join(f"{c} {any_jb['n'].get(c, 0)}" for c in JUDGEBENCH_COLUMNS)
    out = ["## JudgeBench", "", f"JudgeBench's rule ({any_jb['rule']}), percent with 95% CIs; pairs: {sizes}.", "",
           _row(["rank", "judge", *JUDGEBENCH_COLUMNS, "orders unparsed or missing"]),
           "|" + "---|" * (len(JUDGEBENCH_COLUMNS) + 3)]
    for rank, (name, jb) in enumerate(ranked, start=1):
        out.append(_row([rank, name, *[_pct(jb[c], jb["ci95"].get(c)) for c in JUDGEBENCH_COLUMNS],
                         jb["n_verdicts_unparsed_or_missing"]]))
    return out + [""]


def evalbiasbench_lines(report: dict) -> list[str]:
    """Per bias type: each judge's accuracy (the order given) and the share of its verdicts that
    fell for the bias, then one line per group for each judge."""
    judges = {name: m["evalbiasbench"]["groups"] for name, m in _judges(report).items() if m.get("evalbiasbench")}
    if not judges:
        return []
    groups = list(next(iter(judges.values())))
    header = ["bias type", "n"] + [f"{name}: {what}" for name in judges for what in ("accuracy", "fell for")]
    out = ["## EvalBiasBench", "", "Per bias type: accuracy of the verdicts in the order given (answer positions "
           "are balanced on import) with its 95% CI, and the share of both orders' verdicts that picked the answer "
           "the bias favours.", "", _row(header), "|" + "---|" * len(header)]
    for group in groups:
        cells = [group, next(iter(judges.values()))[group]["n"]]
        for by_group in judges.values():
            g = by_group.get(group, {})
            cells += [_pct(g.get("accuracy"), g.get("ci95")), _pct(g.get("fell_for_rate"), g.get("fell_for_ci95"))]
        out.append(_row(cells))
    out.append("")
    for name, by_group in judges.items():
        out += [f"**{name}**:", ""] + [f"- {bias_line(group, g)}" for group, g in by_group.items()] + [""]
    return out


def benchmark_lines(report: dict) -> list[str]:
    """Every benchmark section this report has (none for a plain eval)."""
    lines = judgebench_lines(report) + evalbiasbench_lines(report)
    if report.get("card"):
        lines += card_lines(report["card"])
    return lines

"""metrics.json, report.md and PNG plots for `judgeforge eval`. The report puts what a person reads
first on top: headline numbers with their 95% CIs, then position and length bias, the swap
protocol, agreement per category, the confusion matrix, the worst parse failures and the ids
missing on either side."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

from judge.core.jsonl import atomic_open, write_json
from judge.eval.report_benchmarks import benchmark_lines


def _fmt(x, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _ci(metrics: dict, name: str, section: str = "ci95") -> str:
    return _pair((metrics.get(section) or {}).get(name))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "judge"


def _table(header: list[str], rows: list[list]) -> list[str]:
    """A markdown table: the header, its rule, one line per row (a `|` in a cell escaped, so a quoted
    reply shows as it was)."""
    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header)] + [line(row) for row in rows]


def _headline_table(m: dict, mode: str) -> list[str]:
    names = ["accuracy", "precision", "recall", "f1"] if mode == "pairwise" else ["pearson", "spearman", "kendall"]
    rows = [[n, _fmt(m.get(n)), _ci(m, n)] for n in names]
    rows += [["n", m.get("n"), ""], ["parse failure rate", _fmt(m.get("parse_failure_rate")), ""]]
    return _table(["metric", "value", "95% CI"], rows)


def _protocol_lines(m: dict) -> list[str]:
    """Which verdicts the headline numbers are (DESIGN, Metrics: both orders)."""
    if m.get("headline_protocol") == "ab":
        return ["Accuracy, precision, recall and F1 above are those of the `ab` verdicts (the order given, "
                "JudgeLM's protocol; items judged only swapped count with their `ba` verdict). The swap protocol "
                "(both orders, a conflict counts as tie, PandaLM) is below and in `swap_protocol`.", ""]
    if m.get("headline_protocol"):
        return ["Accuracy, precision, recall and F1 above are those of each item's one judged order.", ""]
    return []


def _unparsed_line(m: dict) -> str:
    """The verdict-level count behind `parse_failure_rate` (every order and sample counted)."""
    parsing = m.get("parsing") or {}
    return (f"Unparsed verdicts: {m.get('n_unparsed', 0)} of {parsing.get('verdicts', 'n/a')} "
            f"(parse failure rate {_fmt(m.get('parse_failure_rate'))})")


def _judge_section(m: dict, mode: str, plot_names: dict) -> list[str]:
    out = [f"### {m.get('judge')}", "", f"Predictions: `{m.get('predictions')}`", ""]
    out += _headline_table(m, mode) + [""] + _protocol_lines(m)
    if mode == "pairwise":
        bias = m.get("position_bias")
        if bias:
            out += ["**Position bias** (both orders judged, JudgeLM's definitions):", ""]
            out += _table(["consistency", "prefer first", "prefer second", "delta bias", "total bias",
                           "both orders unparsed", "n"],
                          [[_fmt(bias[k]) for k in ("consistency", "prefer_first_rate", "prefer_second_rate",
                                                    "delta_bias", "total_bias")]
                           + [bias.get("n_both_unparsed", 0), bias["n"]]]) + [""]
        out += _length_section(m)
        swap = m.get("swap_protocol")
        if swap:
            out += ["**Swap protocol** (PandaLM: both orders, a conflict counts as tie):", ""]
            out += _table(["accuracy", "precision", "recall", "f1", "n"],
                          [[f"{_fmt(swap['accuracy'])} {_ci(swap, 'accuracy')}", _fmt(swap["precision"]),
                            _fmt(swap["recall"]), f"{_fmt(swap['f1'])} {_ci(swap, 'f1')}", swap["n"]]]) + [""]
        out += _category_section(m)
        cm = m.get("confusion_matrix")
        if cm:
            out += ["**Confusion matrix** (rows: gold, columns: predicted):", ""]
            out += _table(["gold \\ pred", *cm["labels_pred"]],
                          [[g, *row] for g, row in zip(cm["labels_gold"], cm["counts"])])
            out += ["", f"{_unparsed_line(m)}; {m.get('n_items_unparsed', 0)} items have no headline verdict, "
                    f"counted as `{m.get('unparsed_policy')}`. "
                    f"Macro averages over the gold file's classes: {', '.join(m.get('macro_over') or [])}.", ""]
        cal = m.get("calibration")
        if cal:
            out += [f"**Calibration** (verdict-token probabilities): ECE {_fmt(cal['ece'])} over {cal['n']} verdicts.", ""]
    else:
        for key, title in (("system_level", "System level (per-model mean scores)"),
                           ("group_level", "Group level (within each question, averaged)"),
                           ("category_level", "Category level (within each category, averaged)")):
            sec = m.get(key)
            if sec:
                count = sec.get("n_systems", sec.get("n_groups"))
                out += [f"**{title}**: Pearson {_fmt(sec.get('pearson'))}, Spearman {_fmt(sec.get('spearman'))}, "
                        f"Kendall {_fmt(sec.get('kendall'))} ({count} groups).", ""]
        if m.get("mae") is not None:
            out += [f"Mean absolute error {_fmt(m['mae'])}; mean predicted {_fmt(m['mean_pred'])} vs gold {_fmt(m['mean_gold'])}.", ""]
        how = {"drop": "left out of the correlations"}.get(m.get("unparsed_policy"), f"scored as the {m.get('unparsed_score')}")
        out += [f"{_unparsed_line(m)}; {m.get('n_items_unparsed', 0)} items have no parsed score, {how} "
                f"(`--unparsed {m.get('unparsed_policy')}`).", ""]
    parsing = m.get("parsing") or {}
    if parsing.get("examples"):
        out += [f"**Parse failures**: {parsing['unparsed']} of {parsing['verdicts']} verdicts. First ones:", ""]
        out += _table(["id", "order", "error", "reply (start)"],
                      [[ex["id"], ex["order"], ex["error"] or "", (ex["raw"] or "").replace("\n", " ")[:120]]
                       for ex in parsing["examples"]]) + [""]
    miss = m.get("missing") or {}
    if miss.get("in_gold_not_pred") or miss.get("in_pred_not_gold"):
        out += [f"**Missing ids**: {miss['in_gold_not_pred']} gold items have no prediction "
                f"(e.g. {', '.join(miss['examples_gold_only'][:5]) or '-'}); {miss['in_pred_not_gold']} predictions "
                f"have no gold label (e.g. {', '.join(miss['examples_pred_only'][:5]) or '-'}). Metrics use the ids on both sides.", ""]
    if miss.get("in_pred_gold_unparsed"):
        out += [f"**Gold unparsed**: {miss['in_pred_gold_unparsed']} predictions are for items whose gold verdicts all "
                f"failed to parse (e.g. {', '.join(miss['examples_gold_unparsed'][:5])}); they are not scored.", ""]
    for title, name in plot_names.items():
        out += [f"![{title}]({name})", ""]
    return out


def _length_section(m: dict) -> list[str]:
    bias = m.get("length_bias")
    if not bias:
        return []
    if not bias["available"]:
        return [f"**Length bias**: not measured; {bias['reason']}.", ""]
    judge, gold, split = bias["judge"], bias["gold"], bias["agreement_by_gold_winner"]
    out = ["**Length bias** (share of non-tie verdicts that pick the longer answer, by characters; 0.5 is none):", ""]
    out += _table(["", "prefer longer", "95% CI", "non-tie verdicts", "ties", "unparsed", "equal length"],
                  [[name, _fmt(side["prefer_longer_rate"]), _pair(side["ci95"]), side["n_verdicts"], side["n_tie"],
                    side["n_unparsed"], side["n_equal_length"]] for name, side in (("judge", judge), ("gold", gold))])
    out += ["", "Agreement by the gold winner's length:", ""]
    out += _table(["gold winner", "n", "agreement", "95% CI"],
                  [[title, split[key]["n"], _fmt(split[key]["agreement"]), _pair(split[key]["ci95"])]
                   for key, title in (("gold_longer", "the longer answer"), ("gold_shorter", "the shorter answer"))])
    rest = split["not_split"]
    out += ["", f"Not split: {rest['gold_tie']} gold ties, {rest['equal_length']} pairs of equally long answers.", ""]
    return out


def _category_section(m: dict) -> list[str]:
    cats = (m.get("category_level") or {}).get("categories")
    if not cats:
        return []
    return ["**Agreement per category** (headline verdicts):", ""] + _table(
        ["category", "n", "agreement", "95% CI"],
        [[name, c["n"], _fmt(c["agreement"]), _pair(c["ci95"])] for name, c in cats.items()]) + [""]


def _pair(ci) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci and None not in ci else "n/a"


def _gold_lines(report: dict) -> list[str]:
    teacher = report.get("gold_parsing")
    if not teacher:
        return []
    line = (f"Gold verdicts: {teacher['unparsed']} of {teacher['verdicts']} did not parse; "
            f"{len(teacher['items_without_label'])} items have no gold label because none of their verdicts parsed")
    if teacher["items_without_label"]:
        line += f" (e.g. {', '.join(teacher['items_without_label'][:5])})"
    return [line + f"; {teacher['items_one_order_parsed']} items took their label from one order only.", ""]


def render_markdown(report: dict, plot_files: dict[str, dict]) -> str:
    mode = report["mode"]
    judges = report.get("judges") or {report.get("judge"): report}
    lines = ["# Judge evaluation", "",
             f"Gold: `{report['gold']}` ({report['n_gold']} labelled items, {mode}). "
             f"Bootstrap CIs: {report['bootstrap_resamples']} resamples.", ""]
    lines += _gold_lines(report)
    lines += benchmark_lines(report)  # --protocol's tables and the --card (judge.eval.report_benchmarks)
    if len(judges) > 1:
        lines += ["## Judges side by side", ""]
        if mode == "pairwise":
            lines += _table(["judge", "n", "accuracy (95% CI)", "f1 (95% CI)", "consistency", "prefer first",
                             "prefer second", "prefer longer (95% CI)", "gold prefer longer", "parse failures"],
                            [[name, m.get("n"), f"{_fmt(m.get('accuracy'))} {_ci(m, 'accuracy')}",
                              f"{_fmt(m.get('f1'))} {_ci(m, 'f1')}", _fmt(m.get("consistency")),
                              _fmt(m.get("prefer_first_rate")), _fmt(m.get("prefer_second_rate")),
                              f"{_fmt(m.get('prefer_longer_rate'))} {_ci(m, 'prefer_longer_rate')}",
                              _fmt(m.get("gold_prefer_longer_rate")), _fmt(m.get("parse_failure_rate"))]
                             for name, m in judges.items()])
        else:
            lines += _table(["judge", "n", "pearson (95% CI)", "spearman", "kendall", "system-level pearson",
                             "parse failures"],
                            [[name, m.get("n"), f"{_fmt(m.get('pearson'))} {_ci(m, 'pearson')}",
                              _fmt(m.get("spearman")), _fmt(m.get("kendall")),
                              _fmt((m.get("system_level") or {}).get("pearson")), _fmt(m.get("parse_failure_rate"))]
                             for name, m in judges.items()])
        between = report.get("between_judges") or {}
        if between.get("pairs"):
            key, title = ("cohen_kappa", "Cohen's kappa") if mode == "pairwise" else ("pearson", "Pearson")
            lines += ["", "**Between judges** (items both judged):", ""]
            lines += _table(["judge A", "judge B", "n", "agreement", title],
                            [[p["a"], p["b"], p["n"], _fmt(p.get("agreement")), _fmt(p.get(key))]
                             for p in between["pairs"]])
            if between.get("fleiss_kappa") is not None:
                lines += ["", f"Fleiss' kappa over all judges: {_fmt(between['fleiss_kappa'])} ({between['fleiss_n']} items)."]
        lines.append("")
    for title, name in plot_files.get("report", {}).items():
        lines += [f"![{title}]({name})", ""]
    lines += ["## Details", ""]
    for name, m in judges.items():
        lines += _judge_section(m, mode, plot_files.get("judges", {}).get(name, {}))
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> None:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")


@contextmanager
def _figure(plt, path: Path, size: tuple[float, float]):
    """One plot: its axes to draw on, saved as PNG at `path` once drawn; the figure freed either way."""
    fig, ax = plt.subplots(figsize=size)
    try:
        yield ax
        _save(fig, path)
    finally:
        plt.close(fig)


def write_plots(report: dict, out: Path) -> dict[str, dict]:
    """The PNGs: {"judges": {name: {title: file}}, "report": {title: file}} (plots over all judges)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judges = report.get("judges") or {report.get("judge"): report}
    files: dict[str, dict] = {}
    for name, m in judges.items():
        slug, names = _slug(str(name)), {}
        cm = m.get("confusion_matrix")
        if cm:
            names["confusion matrix"] = f"confusion_{slug}.png"
            with _figure(plt, out / names["confusion matrix"], (4, 3.5)) as ax:
                counts = cm["counts"]
                ax.imshow(counts, cmap="Blues")
                ax.set_xticks(range(len(cm["labels_pred"])), cm["labels_pred"])
                ax.set_yticks(range(len(cm["labels_gold"])), cm["labels_gold"])
                ax.set_xlabel("predicted"), ax.set_ylabel("gold")
                ax.set_title(f"{name}: confusion matrix", fontsize=9)
                for r, row in enumerate(counts):
                    for c, v in enumerate(row):
                        ax.text(c, r, str(v), ha="center", va="center", fontsize=8)
        scatter = m.get("scatter")
        if scatter and scatter["gold"]:
            names["predicted vs gold"] = f"scatter_{slug}.png"
            with _figure(plt, out / names["predicted vs gold"], (4, 4)) as ax:
                ax.scatter(scatter["gold"], scatter["pred"], s=10, alpha=0.5)
                ax.set_xlabel("gold score"), ax.set_ylabel("predicted score")
                ax.set_title(f"{name}: Pearson {_fmt(m.get('pearson'), 3)}", fontsize=9)
        cal = m.get("calibration")
        if cal and cal["bins"]:
            names["reliability"] = f"reliability_{slug}.png"
            with _figure(plt, out / names["reliability"], (4, 4)) as ax:
                ax.plot([0, 1], [0, 1], "--", color="gray")
                ax.plot([b["confidence"] for b in cal["bins"]], [b["accuracy"] for b in cal["bins"]], "o-")
                ax.set_xlabel("confidence"), ax.set_ylabel("accuracy")
                ax.set_title(f"{name}: ECE {_fmt(cal['ece'], 3)}", fontsize=9)
        files[name] = names
    overall = {}
    if _length_bias_plot(judges, out / "length_bias.png", plt):
        overall["length bias"] = "length_bias.png"
    return {"judges": files, "report": overall}


def _length_bias_plot(judges: dict, path: Path, plt) -> bool:
    """Each judge's prefer_longer_rate beside the gold labels' on the same items, with 95% CIs."""
    rows = [(str(name), m["length_bias"]) for name, m in judges.items() if (m.get("length_bias") or {}).get("available")]
    if not rows:
        return False
    with _figure(plt, path, (max(4.0, 1.6 * len(rows) + 1.5), 3.5)) as ax:
        width = 0.38
        for offset, side, color in ((-width / 2, "judge", "tab:blue"), (width / 2, "gold", "tab:gray")):
            rates = [b[side]["prefer_longer_rate"] for _, b in rows]
            cis = [b[side]["ci95"] for _, b in rows]
            err = [[0 if r is None or not c or None in c else r - c[0] for r, c in zip(rates, cis)],
                   [0 if r is None or not c or None in c else c[1] - r for r, c in zip(rates, cis)]]
            ax.bar([k + offset for k in range(len(rows))], [r or 0 for r in rates], width, yerr=err, capsize=3,
                   color=color, label=side)
        ax.axhline(0.5, ls="--", color="black", lw=0.8)
        ax.set_xticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
        ax.set_ylim(0, 1), ax.set_ylabel("prefer longer rate"), ax.legend(fontsize=8)
        ax.set_title("length bias: share of non-tie verdicts picking the longer answer", fontsize=9)
    return True


def write_report(report: dict, out_dir: str, *, plots: bool = True) -> dict[str, dict]:
    """metrics.json, report.md and the PNGs; returns the PNGs' names (`write_plots`) for report.html."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_files = write_plots(report, out) if plots else {}
    clean = _without_scatter(report)
    write_json(out / "metrics.json", clean)
    with atomic_open(out / "report.md") as handle:
        handle.write(render_markdown(report, plot_files))
    return plot_files


def _without_scatter(obj):
    """The raw score vectors feed the plots; metrics.json stays readable without them."""
    if isinstance(obj, dict):
        return {k: _without_scatter(v) for k, v in obj.items() if k != "scatter"}
    return obj

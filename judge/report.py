"""metrics.json, report.md and PNG plots for `judgeforge eval`. The report puts what a person reads
first on top: headline numbers with their 95% CIs, then position bias, the swap protocol, the
confusion matrix, the worst parse failures and the ids missing on either side."""

from __future__ import annotations

import re
from pathlib import Path

from .jsonl import atomic_open, write_json


def _fmt(x, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _ci(metrics: dict, name: str, section: str = "ci95") -> str:
    ci = (metrics.get(section) or {}).get(name)
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci and None not in ci else "n/a"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "judge"


def _headline_table(m: dict, mode: str) -> list[str]:
    names = ["accuracy", "precision", "recall", "f1"] if mode == "pairwise" else ["pearson", "spearman", "kendall"]
    lines = ["| metric | value | 95% CI |", "|---|---|---|"]
    lines += [f"| {n} | {_fmt(m.get(n))} | {_ci(m, n)} |" for n in names]
    lines.append(f"| n | {m.get('n')} | |")
    lines.append(f"| parse failure rate | {_fmt(m.get('parse_failure_rate'))} | |")
    return lines


def _judge_section(m: dict, mode: str, plot_names: dict) -> list[str]:
    out = [f"### {m.get('judge')}", "", f"Predictions: `{m.get('predictions')}`", ""]
    out += _headline_table(m, mode) + [""]
    if mode == "pairwise":
        bias = m.get("position_bias")
        if bias:
            out += ["**Position bias** (both orders judged, JudgeLM's definitions):", "",
                    "| consistency | prefer first | prefer second | delta bias | total bias | n |", "|---|---|---|---|---|---|",
                    f"| {_fmt(bias['consistency'])} | {_fmt(bias['prefer_first_rate'])} | {_fmt(bias['prefer_second_rate'])} "
                    f"| {_fmt(bias['delta_bias'])} | {_fmt(bias['total_bias'])} | {bias['n']} |", ""]
        swap = m.get("swap_protocol")
        if swap:
            out += ["**Swap protocol** (PandaLM: both orders, a conflict counts as tie):", "",
                    "| accuracy | precision | recall | f1 | n |", "|---|---|---|---|---|",
                    f"| {_fmt(swap['accuracy'])} {_ci(swap, 'accuracy')} | {_fmt(swap['precision'])} | "
                    f"{_fmt(swap['recall'])} | {_fmt(swap['f1'])} {_ci(swap, 'f1')} | {swap['n']} |", ""]
        cm = m.get("confusion_matrix")
        if cm:
            out += ["**Confusion matrix** (rows: gold, columns: predicted):", "",
                    "| gold \\ pred | " + " | ".join(cm["labels_pred"]) + " |",
                    "|---|" + "---|" * len(cm["labels_pred"])]
            out += [f"| {g} | " + " | ".join(str(c) for c in row) + " |" for g, row in zip(cm["labels_gold"], cm["counts"])]
            out += ["", f"Unparsed verdicts: {m.get('n_unparsed', 0)}, counted as `{m.get('unparsed_policy')}`.", ""]
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
            out += [f"Mean absolute error {_fmt(m['mae'])}; mean predicted {_fmt(m['mean_pred'])} vs gold {_fmt(m['mean_gold'])}. "
                    f"Unparsed (left out of correlations): {m.get('n_unparsed', 0)}.", ""]
    parsing = m.get("parsing") or {}
    if parsing.get("examples"):
        out += [f"**Parse failures**: {parsing['unparsed']} of {parsing['verdicts']} verdicts. First ones:", "",
                "| id | order | error | reply (start) |", "|---|---|---|---|"]
        for ex in parsing["examples"]:
            raw = (ex["raw"] or "").replace("\n", " ").replace("|", "\\|")[:120]
            out.append(f"| {ex['id']} | {ex['order']} | {(ex['error'] or '').replace('|', '/')} | {raw} |")
        out.append("")
    miss = m.get("missing") or {}
    if miss.get("in_gold_not_pred") or miss.get("in_pred_not_gold"):
        out += [f"**Missing ids**: {miss['in_gold_not_pred']} gold items have no prediction "
                f"(e.g. {', '.join(miss['examples_gold_only'][:5]) or '-'}); {miss['in_pred_not_gold']} predictions "
                f"have no gold label (e.g. {', '.join(miss['examples_pred_only'][:5]) or '-'}). Metrics use the ids on both sides.", ""]
    for title, name in plot_names.items():
        out += [f"![{title}]({name})", ""]
    return out


def render_markdown(report: dict, plot_files: dict[str, dict]) -> str:
    mode = report["mode"]
    judges = report.get("judges") or {report.get("judge"): report}
    lines = ["# Judge evaluation", "",
             f"Gold: `{report['gold']}` ({report['n_gold']} labelled items, {mode}). "
             f"Bootstrap CIs: {report['bootstrap_resamples']} resamples.", ""]
    if len(judges) > 1:
        lines += ["## Judges side by side", ""]
        if mode == "pairwise":
            lines += ["| judge | n | accuracy (95% CI) | f1 (95% CI) | consistency | prefer first | prefer second | parse failures |",
                      "|---|---|---|---|---|---|---|---|"]
            for name, m in judges.items():
                lines.append(f"| {name} | {m.get('n')} | {_fmt(m.get('accuracy'))} {_ci(m, 'accuracy')} | "
                             f"{_fmt(m.get('f1'))} {_ci(m, 'f1')} | {_fmt(m.get('consistency'))} | "
                             f"{_fmt(m.get('prefer_first_rate'))} | {_fmt(m.get('prefer_second_rate'))} | "
                             f"{_fmt(m.get('parse_failure_rate'))} |")
        else:
            lines += ["| judge | n | pearson (95% CI) | spearman | kendall | system-level pearson | parse failures |",
                      "|---|---|---|---|---|---|---|"]
            for name, m in judges.items():
                lines.append(f"| {name} | {m.get('n')} | {_fmt(m.get('pearson'))} {_ci(m, 'pearson')} | "
                             f"{_fmt(m.get('spearman'))} | {_fmt(m.get('kendall'))} | "
                             f"{_fmt((m.get('system_level') or {}).get('pearson'))} | {_fmt(m.get('parse_failure_rate'))} |")
        between = report.get("between_judges") or {}
        if between.get("pairs"):
            key, title = ("cohen_kappa", "Cohen's kappa") if mode == "pairwise" else ("pearson", "Pearson")
            lines += ["", "**Between judges** (items both judged):", "", f"| judge A | judge B | n | agreement | {title} |",
                      "|---|---|---|---|---|"]
            for p in between["pairs"]:
                lines.append(f"| {p['a']} | {p['b']} | {p['n']} | {_fmt(p.get('agreement'))} | {_fmt(p.get(key))} |")
            if between.get("fleiss_kappa") is not None:
                lines += ["", f"Fleiss' kappa over all judges: {_fmt(between['fleiss_kappa'])} ({between['fleiss_n']} items)."]
        lines.append("")
    lines += ["## Details", ""]
    for name, m in judges.items():
        lines += _judge_section(m, mode, plot_files.get(name, {}))
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> None:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")


def write_plots(report: dict, out: Path) -> dict[str, dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judges = report.get("judges") or {report.get("judge"): report}
    files: dict[str, dict] = {}
    for name, m in judges.items():
        slug, names = _slug(str(name)), {}
        cm = m.get("confusion_matrix")
        if cm:
            fig, ax = plt.subplots(figsize=(4, 3.5))
            counts = cm["counts"]
            ax.imshow(counts, cmap="Blues")
            ax.set_xticks(range(len(cm["labels_pred"])), cm["labels_pred"])
            ax.set_yticks(range(len(cm["labels_gold"])), cm["labels_gold"])
            ax.set_xlabel("predicted"), ax.set_ylabel("gold"), ax.set_title(f"{name}: confusion matrix", fontsize=9)
            for r, row in enumerate(counts):
                for c, v in enumerate(row):
                    ax.text(c, r, str(v), ha="center", va="center", fontsize=8)
            names["confusion matrix"] = f"confusion_{slug}.png"
            _save(fig, out / names["confusion matrix"])
            plt.close(fig)
        scatter = m.get("scatter")
        if scatter and scatter["gold"]:
            fig, ax = plt.subplots(figsize=(4, 4))
            ax.scatter(scatter["gold"], scatter["pred"], s=10, alpha=0.5)
            ax.set_xlabel("gold score"), ax.set_ylabel("predicted score")
            ax.set_title(f"{name}: Pearson {_fmt(m.get('pearson'), 3)}", fontsize=9)
            names["predicted vs gold"] = f"scatter_{slug}.png"
            _save(fig, out / names["predicted vs gold"])
            plt.close(fig)
        cal = m.get("calibration")
        if cal and cal["bins"]:
            fig, ax = plt.subplots(figsize=(4, 4))
            ax.plot([0, 1], [0, 1], "--", color="gray")
            ax.plot([b["confidence"] for b in cal["bins"]], [b["accuracy"] for b in cal["bins"]], "o-")
            ax.set_xlabel("confidence"), ax.set_ylabel("accuracy"), ax.set_title(f"{name}: ECE {_fmt(cal['ece'], 3)}", fontsize=9)
            names["reliability"] = f"reliability_{slug}.png"
            _save(fig, out / names["reliability"])
            plt.close(fig)
        files[name] = names
    return files


def write_report(report: dict, out_dir: str, *, plots: bool = True) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_files = write_plots(report, out) if plots else {}
    clean = _without_scatter(report)
    write_json(out / "metrics.json", clean)
    with atomic_open(out / "report.md") as handle:
        handle.write(render_markdown(report, plot_files))


def _without_scatter(obj):
    """The raw score vectors feed the plots; metrics.json stays readable without them."""
    if isinstance(obj, dict):
        return {k: _without_scatter(v) for k, v in obj.items() if k != "scatter"}
    return obj

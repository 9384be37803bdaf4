"""The judge card (`judgeforge eval ... --card`): one judge's numbers on every benchmark it was given,
next to the other judges of the same runs (published judges, the teacher), with bootstrap 95% CIs,
and one line per bias group on what the judge fell for.

The card of a run covers its gold file; `--card-include DIR` adds the benchmarks of earlier
`eval --card` runs (read from DIR/metrics.json), so one card holds PandaLM, JudgeBench,
EvalBiasBench and the user's own set. The judge of the card is the first `--pred` of this run.
"""

from __future__ import annotations

from pathlib import Path

from judge.core.errors import InputError
from judge.core.jsonl import read_json

JUDGEBENCH_COLUMNS = ("overall", "knowledge", "reasoning", "math", "coding")
DEFAULT_COLUMNS = ("accuracy", "f1", "consistency")


def _judges(report: dict) -> dict:
    return report.get("judges") or {report.get("judge"): report}


def _numbers(m: dict, protocol: str | None) -> dict:
    """{metric: {"value", "ci95"}} of one judge on one benchmark."""
    if protocol == "judgebench":
        jb = m.get("judgebench") or {}
        return {f"judgebench {c}": {"value": jb.get(c), "ci95": (jb.get("ci95") or {}).get(c)} for c in JUDGEBENCH_COLUMNS}
    out = {name: {"value": m.get(name), "ci95": (m.get("ci95") or {}).get(name)} for name in DEFAULT_COLUMNS}
    if protocol == "evalbiasbench":
        groups = (m.get("evalbiasbench") or {}).get("groups", {})
        wrong = sum(g.get("n_fell_for", 0) for g in groups.values())
        verdicts = 2 * sum(g.get("n_both_orders", 0) for g in groups.values())
        out["fell for the bias"] = {"value": round(wrong / verdicts, 6) if verdicts else None, "ci95": None}
    return out


def bias_line(group: str, g: dict) -> str:
    """What the judge did on one bias group, in words and counts."""
    if not g.get("n_both_orders"):
        return f"{group}: accuracy {_pct(g.get('accuracy'))} on {g['n']} items (judged in one order only)"
    rate, consistency = g["fell_for_rate"], g.get("consistency")
    if rate is None:
        verdict = "no verdict picked an answer"
    elif rate >= 0.6:
        verdict = "fell for it"
    elif consistency is not None and consistency < 0.5:  # its picks follow the position, not the content
        verdict = "followed the position more than the content"
    elif rate <= 0.25:
        verdict = "mostly resisted it"
    else:
        verdict = "partly fell for it"
    return (f"{group}: {verdict}: {g['n_fell_for']} of {2 * g['n_both_orders']} verdicts picked the biased answer "
            f"({_pct(rate)}); right in both orders on {_pct(g.get('accuracy_both_orders'))} of {g['n_both_orders']} "
            f"items, consistency {_pct(g.get('consistency'))}, {g['n_tie_verdicts']} ties, "
            f"{g['n_unparsed_verdicts']} unparsed")


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def benchmark_entry(report: dict) -> dict:
    """This run's benchmark on the card: every judge's numbers (the card's judge first)."""
    protocol = report.get("protocol")
    judges = _judges(report)
    entry = {"benchmark": protocol or Path(report["gold"]).stem, "gold": report["gold"], "protocol": protocol,
             "n_gold": report.get("n_gold"), "bootstrap_resamples": report.get("bootstrap_resamples"),
             "judges": [{"judge": name, "n": m.get("n"), "numbers": _numbers(m, protocol)} for name, m in judges.items()]}
    first = next(iter(judges.values()))
    groups = (first.get("evalbiasbench") or {}).get("groups")
    if groups:
        entry["bias_lines"] = [bias_line(group, g) for group, g in groups.items()]
    return entry


def judge_card(report: dict, include: list[str]) -> dict:
    """The card: this run's benchmark after those of the `include`d eval folders (each must have a card)."""
    judge = next(iter(_judges(report)))
    benchmarks = []
    for folder in include:
        path = Path(folder) / "metrics.json"
        if not path.exists():
            raise InputError("no metrics.json here: --card-include takes the output folder of an `eval --card` run",
                             str(folder))
        earlier = read_json(path).get("card")
        if not earlier:
            raise InputError("this eval run has no card (it was run without --card)", str(path))
        benchmarks += earlier["benchmarks"]
    benchmarks.append(benchmark_entry(report))
    others = sorted({j["judge"] for b in benchmarks for j in b["judges"][1:]})
    return {"judge": judge, "benchmarks": benchmarks, "compared_with": others}


def _cell(number: dict) -> str:
    value, ci = number.get("value"), number.get("ci95")
    if value is None:
        return "n/a"
    return f"{value:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and None not in ci else "")


def card_lines(card: dict) -> list[str]:
    """The card as markdown: one table per benchmark, the card's judge in bold, then its bias lines."""
    out = [f"## Judge card: {card['judge']}", "",
           "Each benchmark's numbers for this judge (bold) beside the other judges given with it, "
           "with bootstrap 95% CIs over items.", ""]
    for b in card["benchmarks"]:
        title = f"**{b['benchmark']}** (`{b['gold']}`, {b['n_gold']} labelled items"
        title += f", `--protocol {b['protocol']}`)" if b["protocol"] else ")"
        out += [title, ""]
        columns = list(b["judges"][0]["numbers"])
        out.append("| judge | n | " + " | ".join(columns) + " |")
        out.append("|" + "---|" * (len(columns) + 2))
        for k, j in enumerate(b["judges"]):
            name = f"**{j['judge']}**" if k == 0 else j["judge"]
            cells = [_cell(j["numbers"].get(c, {})) for c in columns]
            out.append("| " + " | ".join([name.replace("|", "\\|"), str(j["n"]), *cells]) + " |")
        out.append("")
        if b.get("bias_lines"):
            out += ["What it fell for (both orders judged; each group is built so that a biased judge picks the "
                    "wrong answer):", ""] + [f"- {line}" for line in b["bias_lines"]] + [""]
    return out

"""report.html for `judgeforge eval`: one self-contained page (inline CSS and JS, the plots as data
URIs, nothing fetched, opens from disk) with the judges side by side and an item browser.

The browser's data is one JSON blob rendered by a small vanilla-JS table with paging, so 10,000
items x 3 judges stay quick to open. Its filters are computed here with the metrics' own
definitions, so what the page counts is what metrics.json counts: "disagrees with gold" is an item
whose headline verdict, after the `--unparsed` policy, differs from gold (the items behind
1 - accuracy); "flips when swapped" is an item JudgeLM's consistency counts as preferring the first
or the second position; "unparsed" is an item with at least one unparsed verdict
(`n_items_with_unparsed`). Very long texts are cut, with their length kept to show.
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path

import numpy as np

from judge.core.jsonl import atomic_open
from judge.eval import metrics as M
from judge.eval.gold import GoldSet
from judge.eval.predictions import Predictions, order_label

MAX_REPLY = 2000  # characters of a raw reply kept in the page (its full length is shown)
MAX_TEXT = 4000  # characters of a question or an answer kept in the page
DISAGREES, FLIPS, UNPARSED = 1, 2, 4  # an item's flags per judge (bits), read by report.js
# Sections of metrics.json shown in the page when present, as nested tables: (where, key, title);
# "report" is the top level, "judge" each judge's metrics. A new section only needs a line here.
EXTRA_SECTIONS = [
    ("report", "card", "Judge card"),
    ("judge", "judgebench", "JudgeBench"),
    ("judge", "evalbiasbench", "EvalBiasBench: bias groups"),
    ("judge", "escalation", "Cascade: who decided"),
    ("judge", "category_level", "Agreement per category"),
]


def _cut(text: str | None, limit: int) -> list:
    """[text cut to `limit` characters, its full length]."""
    text = text or ""
    return [text[:limit], len(text)]


def _order_cell(vs: list, mode: str, threshold: float) -> list | None:
    """One judge's verdicts in one order: [label or score, scores, parsed, reply, reply length]."""
    if not vs:
        return None
    if mode == "pairwise":
        label = order_label(vs, threshold)
    else:
        scores = [v.score for v in vs if v.parse_ok and v.score is not None]
        label = round(float(np.mean(scores)), 4) if scores else None
    shown = " | ".join(" ".join(f"{s:g}" for s in v.scores) for v in vs if v.scores)
    raw = "\n\n---\n\n".join(v.raw or "" for v in vs)
    return [label, shown, int(all(v.parse_ok for v in vs)), *_cut(raw, MAX_REPLY)]


def _flags(gold_label, ab, ba, any_unparsed: bool, mode: str, unparsed: str) -> int:
    """DISAGREES | FLIPS | UNPARSED for one judge on one item (see the module's docstring)."""
    flags = UNPARSED if any_unparsed else 0
    if gold_label is None:
        return flags
    ab_label, ba_label = (None if c is None else c[0] for c in (ab, ba))
    headline = ab_label if ab is not None else ba_label
    if mode == "pairwise":
        g, p, _ = M.apply_unparsed([gold_label], [headline], unparsed)
        if p and p[0] != g[0]:
            flags |= DISAGREES
        if ab is not None and ba is not None:
            c = M.consistency([ab_label], [ba_label], unparsed=unparsed)
            if c["prefer_first_rate"] or c["prefer_second_rate"]:
                flags |= FLIPS
    elif headline is None or headline != gold_label:  # pointwise: the score differs from gold
        flags |= DISAGREES
    return flags


def browser_data(judges: list[Predictions], gold: GoldSet, *, unparsed: str, threshold: float) -> dict:
    """The item browser's data: every item of the gold file, then those only the predictions hold.
    An item row: [id, category, gold, question, answers, verdicts, flags]; `verdicts` holds one
    [ab, ba] pair of `_order_cell`s per judge, `flags` one int per judge."""
    ids = list(gold.labels) + sorted({i for j in judges for i in j.verdicts} - set(gold.labels))
    rows = []
    for i in ids:
        label = gold.labels.get(i)
        gold_value = None if label is None else label.winner if gold.mode == "pairwise" else label.score
        verdicts, flags = [], []
        for j in judges:
            orders = j.verdicts.get(i, {})
            ab, ba = (_order_cell(orders.get(o, []), gold.mode, threshold) for o in ("ab", "ba"))
            bad = any(not v.parse_ok for vs in orders.values() for v in vs)
            verdicts.append([ab, ba])
            flags.append(_flags(gold_value, ab, ba, bad, gold.mode, unparsed) if orders else 0)
        answers = [_cut(a, MAX_TEXT) for a in (label.answers or ())] if label else []
        rows.append([i, (label.category if label else None) or "", gold_value,
                     _cut(label.question if label else None, MAX_TEXT), answers, verdicts, flags])
    categories = sorted({r[1] for r in rows if r[1]})
    return {"mode": gold.mode, "judges": [j.name for j in judges], "categories": categories, "items": rows,
            "unparsed_policy": unparsed, "flags": {"disagrees": DISAGREES, "flips": FLIPS, "unparsed": UNPARSED}}


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _sections(report: dict, judges: dict) -> list[dict]:
    """The EXTRA_SECTIONS present in this report: {where, title, parts: [(judge or "", value)]}; the
    report's own (a judge card) show after the judges, each judge's after the item browser."""
    out = []
    for where, key, title in EXTRA_SECTIONS:
        parts = ([("", report[key])] if where == "report" and report.get(key) else
                 [(name, m[key]) for name, m in judges.items() if m.get(key)] if where == "judge" else [])
        if parts:
            out.append({"where": where, "title": title, "parts": parts})
    return out


def render_html(report: dict, data: dict, plots: list[tuple[str, str]]) -> str:
    """The page: `report` (metrics.json's content), `data` (browser_data), plots as (title, data URI)."""
    from jinja2 import Environment

    assets = resources.files("judge.eval") / "report_assets"
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)  # a key a report lacks shows n/a
    template = env.from_string((assets / "report.html.j2").read_text(encoding="utf-8"))
    judges = report.get("judges") or {report.get("judge"): report}
    # "<" escaped inside the JSON, so no reply can close the <script> element that holds it
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).replace("<", "\\u003c")
    swaps = [(name, m["swap_protocol"]) for name, m in judges.items() if m.get("swap_protocol")]
    return template.render(report=report, judges=judges, swaps=swaps, plots=plots, sections=_sections(report, judges),
                           data_json=blob, css=(assets / "report.css").read_text(encoding="utf-8"),
                           js=(assets / "report.js").read_text(encoding="utf-8"))


def write_html(report: dict, judges: list[Predictions], gold: GoldSet, out_dir: str, plot_files: dict, *,
               unparsed: str, threshold: float) -> Path:
    """DIR/report.html (written atomically) beside report.md, with the PNGs `write_plots` made."""
    out = Path(out_dir)
    files = list((plot_files or {}).get("report", {}).items())
    files += [(f"{name}: {title}", f) for name, named in (plot_files or {}).get("judges", {}).items()
              for title, f in named.items()]
    plots = [(title, _data_uri(out / f)) for title, f in files if (out / f).exists()]
    data = browser_data(judges, gold, unparsed=unparsed, threshold=threshold)
    path = out / "report.html"
    with atomic_open(path) as handle:
        handle.write(render_html(report, data, plots))
    return path

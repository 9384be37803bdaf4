"""Judgements -> preference rows (`data export --to preference`), ready for trl's DPOTrainer and
RewardTrainer: `{"prompt", "chosen", "rejected"}`, by default in trl's conversational format
(`prompt` a user turn, `chosen`/`rejected` an assistant turn each, so the trainer applies the
model's chat template), or as plain strings (trl's standard format).

The input is one of:
- filter's training rows (train.jsonl / val.jsonl): the teacher's verdicts that held in both orders;
- verdicts or predictions (distill's verdicts.jsonl, score's predictions): per item, each order's
  majority over its parsed samples; orders that disagree are left out (the judge was not sure), and
  so is an item judged in one order when the run judged both (counted as "one order only");
- items with a gold `winner` (e.g. human labels imported with `data convert`).
Verdicts and training rows carry only ids, so the items they judged are read too: `--items`, else
items.jsonl beside the input (distill's folder keeps it), else the items filter's manifest.json names.
Ties, unparsed and inconsistent items have no chosen answer: they are left out and counted.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from judge.core.configfile import option
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import iter_json_rows, read_items, write_jsonl
from judge.core.records import PairItem, RowError, Verdict, from_row

FORMATS = ("conversational", "standard")


def _kind(row) -> str:
    if isinstance(row, dict):
        if "messages" in row and "mode" in row:
            return "training rows"
        if "order" in row and "raw" in row:
            return "verdicts"
        if "question" in row:
            return "items"
    return "unknown"


def find_items(path: str, items: str | None) -> str:
    """The items file the verdicts or training rows of `path` judged."""
    if items:
        return items
    folder = Path(path).parent
    if (folder / "items.jsonl").exists():
        return str(folder / "items.jsonl")
    manifest = folder / "manifest.json"
    if manifest.exists():
        named = json.loads(manifest.read_text()).get("inputs", {}).get("items", {}).get("path")
        if named and Path(named).exists():
            return named
    raise InputError("verdicts and training rows hold only ids; the items they judged are needed: pass --items "
                     "(distill's folder keeps items.jsonl, filter's manifest.json names it)", path)


def _judged_labels(path: str, kind: str) -> dict[str, dict[str, list]]:
    """item id -> order -> the winners its verdicts (or training rows) gave, None for unparsed."""
    labels: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for number, row in iter_json_rows(path):
        if _kind(row) != kind:
            raise InputError(f"expected {kind} like the first row; one kind of row per file", path, number)
        try:
            if kind == "training rows":
                if row.get("reason"):
                    raise RowError(f"a dropped row ({row['reason']}): export train.jsonl or val.jsonl, not dropped.jsonl")
                if row.get("mode") != "pairwise":
                    raise RowError(f"a {row.get('mode')} training row: only pairs have a chosen and a rejected answer")
                labels[str(row["id"])][row.get("order", "ab")].append(row.get("winner"))
            else:
                v = from_row(Verdict, row, extra_to_meta=False)
                labels[v.id][v.order].append(v.winner if v.parse_ok else None)
        except (RowError, KeyError) as e:
            raise InputError(str(e) if isinstance(e, RowError) else f"missing field {e}", path, number) from None
    return labels


def judged_both_orders(path: str, labels: dict[str, dict[str, list]]) -> bool:
    """Whether the run behind the verdicts judged both orders: its manifest says so (distill's
    manifest.json, score's NAME.manifest.json), else any verdict in order ba. A run stopped before an
    item's second order leaves that item unchecked for position bias, so it is not exported."""
    for manifest in (Path(path).parent / "manifest.json", Path(path).parent / f"{Path(path).stem}.manifest.json"):
        if manifest.is_file():
            run = json.loads(manifest.read_text())
            swap = (run.get("config") or {}).get("swap") if run.get("stage") in ("distill", "score") else None
            if isinstance(swap, bool):
                return swap
    return any("ba" in orders for orders in labels.values())


def _preferred(labels: dict[str, dict[str, list]], both: bool) -> tuple[dict[str, str], Counter]:
    """item id -> "1" | "2" where the judgement is clear (in both orders when the run judged both);
    the rest counted by why it is left out."""
    from judge.eval.metrics import majority_label  # numpy: loaded by the export itself, not by `--help`

    left_out: Counter = Counter()
    winners: dict[str, str] = {}
    for item_id, orders in labels.items():
        by_order = {order: majority_label(vs) for order, vs in orders.items()}
        if both and set(by_order) != {"ab", "ba"}:
            left_out["one order only"] += 1
        elif None in by_order.values():
            left_out["unparsed" if "gold" not in by_order else "unlabelled"] += 1
        elif len(set(by_order.values())) > 1:
            left_out["inconsistent"] += 1
        elif (winner := next(iter(by_order.values()))) == "tie":
            left_out["ties"] += 1
        else:
            winners[item_id] = winner
    return winners, left_out


def preference_rows(path: str, *, items: str | None = None, fmt: str = "conversational") -> tuple[list[dict], Counter]:
    """The prompt/chosen/rejected rows for `path`, and what was left out (ties, unparsed, inconsistent,
    one order only)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown preference format {fmt!r}; known: {', '.join(FORMATS)}")
    first = next((row for _, row in iter_json_rows(path)), None)
    kind = _kind(first)
    if first is None or kind == "unknown":
        raise InputError("expected filter's training rows, verdicts (distill, score) or items with a gold winner"
                         + ("; the file is empty" if first is None else ""), path, None if first is None else 1)
    if kind == "items":
        known = {i.id: i for i in read_items(path)}
        labels = {i.id: {"gold": [i.winner if isinstance(i, PairItem) else None]} for i in known.values()}
    else:
        items_path = find_items(path, items)
        known = {i.id: i for i in read_items(items_path)}
        labels = _judged_labels(path, kind)
        missing = next((i for i in labels if i not in known), None)
        if missing is not None:
            raise InputError(f"id {missing!r} is not among the items ({items_path})", path)
    singles = [i for i in labels if not isinstance(known[i], PairItem)]
    if singles:
        raise InputError(f"item {singles[0]!r} is a single answer: a preference needs a pair", path)
    winners, left_out = _preferred(labels, both=kind != "items" and judged_both_orders(path, labels))
    rows = []
    for item_id, winner in winners.items():
        item = known[item_id]
        chosen, rejected = (item.answer1, item.answer2) if winner == "1" else (item.answer2, item.answer1)
        if fmt == "standard":
            rows.append({"prompt": item.question, "chosen": chosen, "rejected": rejected})
        else:
            rows.append({"prompt": [{"role": "user", "content": item.question}],
                         "chosen": [{"role": "assistant", "content": chosen}],
                         "rejected": [{"role": "assistant", "content": rejected}]})
    return rows, left_out


@dataclass
class ExportConfig:
    """`judgeforge data export`'s settings (the CLI's flags are generated from these fields)."""

    to: str = option(choices=["preference"], help="the target format")
    input: str = option(help="train.jsonl/val.jsonl (filter), verdicts.jsonl (distill), predictions (score), or items")
    out: str = option(help="output JSONL")
    items: str | None = option(None, help="the items the verdicts judged (default: items.jsonl beside --input, or "
                                          "the one filter's manifest.json names)")
    format: str = option("conversational", choices=FORMATS, help=(
        "conversational: chat messages, so the trainer applies the chat template; standard: plain strings"))


def export_preference(path: str, out: str, *, items: str | None = None, fmt: str = "conversational") -> dict:
    """`data export --to preference`: write OUT atomically; returns the counts. Nothing to write (every
    item a tie or unparsed) is an error, not an empty training set."""
    rows, left_out = preference_rows(path, items=items, fmt=fmt)
    if not rows:
        raise InputError(f"no preference rows: every item was left out ({describe_left_out(left_out)})", path)
    write_jsonl(out, rows)
    return {"rows": len(rows), "left_out": dict(left_out), "out": out}


def describe_left_out(left_out: dict) -> str:
    """E.g. "inconsistent 2, ties 3"; "none"."""
    return ", ".join(f"{why} {n}" for why, n in sorted(left_out.items())) or "none"

"""Gold labels for `judgeforge eval`: items carrying `winner`/`score`, bare `{id, winner|score}` rows,
another judge's verdicts (e.g. the teacher's, reduced per item by the swap protocol), or any `data
convert` source format; `--items` adds the answers (length bias), category and question to labels
that lack them. A gold file holds one kind of label (pairwise or pointwise) and no id twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from judge.core.errors import InputError
from judge.core.jsonl import read_items
from judge.core.records import PairItem, RowError, SingleItem, Verdict, from_row, item_from_row, normalize_winner
from judge.eval import metrics as M
from judge.eval.label_files import describe_verdict_key, numbered_rows, refuse_duplicates, verdict_key


@dataclass
class Gold:
    id: str
    winner: str | None = None
    score: float | None = None
    model: str | None = None
    category: str | None = None
    question: str | None = None
    lengths: tuple[int, int] | None = None  # characters of answer1, answer2 (pairwise items only)
    answers: tuple[str, ...] | None = None  # the answers' text (report.html's item browser)
    line: int | None = None  # where the label was read (for messages)

    @property
    def mode(self) -> str:
        return "pairwise" if self.winner is not None else "pointwise"


@dataclass
class GoldSet:
    """One gold file's labels and what every judge is measured against: the mode, the classes
    macro averages run over, the score range (pointwise `--unparsed`), and the teacher's unparsed
    verdicts when the gold is another judge's verdicts."""

    path: str
    labels: dict[str, Gold]
    mode: str
    classes: list[str]
    score_range: tuple[float, float] | None = None
    teacher: dict | None = None

    @property
    def unlabelled(self) -> set[str]:
        """Ids whose teacher verdicts all failed to parse: present in the file, without a label."""
        return set((self.teacher or {}).get("items_without_label", []))


def _gold_row(row):
    if isinstance(row, dict) and "order" in row and "raw" in row:
        return from_row(Verdict, row, extra_to_meta=False)
    if isinstance(row, dict) and "question" in row:
        return item_from_row(row)
    if isinstance(row, dict) and "id" in row and ("winner" in row or "score" in row):
        return _bare_gold(row)
    raise RowError("expected an item, a verdict, or a bare {id, winner|score} row")


def _gold_from_item(record: PairItem | SingleItem) -> Gold:
    if isinstance(record, PairItem):
        return Gold(record.id, winner=record.winner, category=record.category, question=record.question,
                    lengths=(len(record.answer1), len(record.answer2)), answers=(record.answer1, record.answer2))
    return Gold(record.id, score=record.score, model=record.model, category=record.category, question=record.question,
                answers=(record.answer,))


def _bare_gold(row: dict) -> Gold:
    score = row.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise RowError(f"field 'score': expected a number, got {score!r}", "score")
    return Gold(str(row["id"]), winner=normalize_winner(row.get("winner")), score=score,
                model=row.get("model"), category=row.get("category"))


def load_gold(path: str, fmt: str = "jsonl") -> GoldSet:
    """Gold labels by id. Verdict rows (a teacher as gold) are reduced per item: both orders agreeing
    (PandaLM's swap protocol; a conflict is a tie). Unparsed teacher verdicts are counted in
    `GoldSet.teacher`; an item none of whose verdicts parsed has no label and is listed there."""
    numbered = numbered_rows(path, fmt, _gold_row)
    labels: dict[str, Gold] = {}
    teacher: dict[str, dict[str, list[Verdict]]] = defaultdict(lambda: defaultdict(list))
    label_lines, verdict_lines = [], []
    teacher_lines: dict[str, int] = {}
    for line, record in numbered:
        if isinstance(record, Verdict):
            verdict_lines.append((verdict_key(record), line))
            teacher[record.id][record.order].append(record)
            teacher_lines.setdefault(record.id, line)
            continue
        label_lines.append(((record.id,), line))
        label = record if isinstance(record, Gold) else _gold_from_item(record)
        label.line = line
        if label.winner is not None or label.score is not None:
            labels[record.id] = label
    refuse_duplicates(label_lines, path, lambda key: f"id {key[0]!r}")
    refuse_duplicates(verdict_lines, path, describe_verdict_key)
    label_ids = {key[0] for key, _ in label_lines}
    both = [i for i in teacher if i in label_ids]
    if both:
        raise InputError(f"id {both[0]!r} is both a labelled item and a verdict", path, teacher_lines[both[0]])
    summary = None
    if teacher:
        summary = _teacher_gold(teacher, teacher_lines, labels)
    if not labels:
        raise InputError("no gold labels found (items need `winner` or `score`; "
                         "a teacher's verdicts need at least one that parsed)", path)
    mode = next(iter(labels.values())).mode
    odd = next((g for g in labels.values() if g.mode != mode), None)
    if odd:
        raise InputError(f"this {odd.mode} label (id {odd.id!r}) is in a file of {mode} labels: "
                         f"a gold file holds one kind", path, odd.line)
    scores = [g.score for g in labels.values() if g.score is not None]
    return GoldSet(path=path, labels=labels, mode=mode,
                   classes=M.gold_classes([g.winner for g in labels.values()]) if mode == "pairwise" else [],
                   score_range=(float(min(scores)), float(max(scores))) if scores else None, teacher=summary)


def _teacher_gold(teacher: dict, lines: dict[str, int], labels: dict[str, Gold]) -> dict:
    """Reduce a teacher's verdicts to labels (into `labels`) and count what did not parse."""
    verdicts = [v for orders in teacher.values() for vs in orders.values() for v in vs]
    without, one_order = [], 0
    for item_id, orders in teacher.items():
        parsed = {o: [v for v in vs if v.parse_ok] for o, vs in orders.items()}
        ab = M.majority_label([v.winner for v in parsed.get("ab", [])])
        ba = M.majority_label([v.winner for v in parsed.get("ba", [])])
        scores = [v.score for vs in parsed.values() for v in vs if v.score is not None]
        winner = M.combine_orders(ab, ba) if ab and ba else ab or ba  # one order parsed: its label
        if winner is None and not scores:
            without.append(item_id)
            continue
        one_order += len(orders) == 2 and sum(bool(vs) for vs in parsed.values()) == 1
        labels[item_id] = Gold(item_id, winner=winner, score=float(np.mean(scores)) if scores else None,
                               line=lines[item_id])
    failed = [v for v in verdicts if not v.parse_ok]
    return {
        "verdicts": len(verdicts), "unparsed": len(failed),
        "items_without_label": without, "items_one_order_parsed": one_order,
        "examples": [{"id": v.id, "order": v.order, "error": v.error, "raw": (v.raw or "")[:300]} for v in failed[:5]],
    }


def attach_items(gold: GoldSet, path: str) -> None:
    """`--items`: the items the gold labels belong to, for gold files that do not carry them (bare
    labels, a teacher's verdicts). They give answer lengths (length bias), category and question
    where the label lacks them; every labelled id must have its item."""
    items = {item.id: item for item in read_items(path)}
    if not items:
        raise InputError("the file is empty (no items)", path)
    missing = [i for i in gold.labels if i not in items]
    if missing:
        raise InputError(f"no item for gold id {missing[0]!r} ({len(missing)} of {len(gold.labels)} gold ids "
                         f"have none; --items must hold the items the gold labels belong to)", path)
    for item_id, label in gold.labels.items():
        item = items[item_id]
        if isinstance(item, PairItem) and label.lengths is None:
            label.lengths = (len(item.answer1), len(item.answer2))
        label.category = label.category or item.category
        label.question = label.question or item.question
        label.answers = label.answers or ((item.answer1, item.answer2) if isinstance(item, PairItem) else (item.answer,))
        if isinstance(item, SingleItem):
            label.model = label.model or item.model

"""Filter: from a teacher's verdicts to training rows, free of the teacher's position bias.

Pairwise (PandaLM): an item is kept when its two orders agree (win/lose/tie identical after mapping
back); flips and unparsed verdicts go to dropped.jsonl with the reason, and so does an item judged in
one order only (distill stopped by --max-cost, say) unless distill ran with --no-swap (its
manifest.json beside the verdicts says so, or --no-swap here for verdicts from elsewhere). Both orders of a kept item
become training rows (JudgeLM's swap augmentation). With K samples, each order's verdict is the
majority of its parsed samples and the first sample that agrees is the training target.
Pointwise: unparsed verdicts are dropped; with K samples, an item whose scores spread more than
`max_spread` is dropped, else the sample closest to the mean is kept (mean and spread recorded).
A reference-free rewrite (distill --reference-free-rewrite) is kept only if it parses and keeps
its critique's score; its prompt is rendered without the reference.

Rows are split into train/val by question (no question on both sides), deterministically by seed.
The output set is built in a temporary folder and renamed into place: OUT is the old set or the new.
Each row's messages are the template's rendering for that order plus the teacher's raw reply as
the assistant turn: exactly what serving sends, and the target to learn.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from judge.core.configfile import option
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import iter_json_rows, read_items, read_json, write_json, write_jsonl
from judge.core.manifest import write_manifest
from judge.core.outdir import staged_dir
from judge.core.records import Item, RowError, TrainRow, Verdict, from_row
from judge.distill import REWRITE_VARIANT
from judge.eval.metrics import consistency, majority_label
from judge.templates import Template, get_template

EXPORTS = ("openai",)
# What filter writes: OUT is replaced as a whole, so any other file there would be lost.
OUTPUTS = ("train.jsonl", "val.jsonl", "dropped.jsonl", "filter_stats.json", "manifest.json", "train_openai.jsonl",
           "val_openai.jsonl")


@dataclass
class FilterConfig:
    verdicts: str = option(flag="--input", aliases=("--verdicts",), metavar="VERDICTS",
                           help="DIR/verdicts.jsonl from distill (items.jsonl is read beside it)")
    out: str = option(help="output folder (not the distill folder: both write manifest.json)")
    val_fraction: float = option(0.1, help="share of questions held out")
    max_spread: float | None = option(None, help="pointwise with --samples: drop items whose scores spread more")
    export: str | None = option(None, choices=EXPORTS, help="also write train_openai.jsonl/val_openai.jsonl "
                                                            "({\"messages\": [...]}) for hosted fine-tuning")
    seed: int = option(0, help="seed of the train/val split")
    items: str | None = option(None, help="the judged items (default: items.jsonl beside --input)")
    swap: bool | None = option(None, help=(
        "pairwise: whether every item was meant to be judged in both orders (an item judged in one is then dropped "
        "as 'one order only'); default: what distill's manifest.json beside the verdicts says; needed for "
        "one-order verdicts from elsewhere (--no-swap)"))

    def __post_init__(self):
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_spread is not None and self.max_spread < 0:
            raise ConfigError(f"--max-spread must be 0 or more, got {self.max_spread}")
        if self.export is not None and self.export not in EXPORTS:
            raise ConfigError(f"--export must be one of {', '.join(EXPORTS)}, got {self.export!r}")
        if Path(self.out).resolve() == Path(self.verdicts).resolve().parent:
            raise ConfigError("--out must not be the distill folder (both stages write manifest.json); "
                              "use e.g. runs/NAME/data")


@dataclass
class _Outcome:
    """What filtering decided for one item (and variant)."""

    kept: list[TrainRow]
    dropped: list[TrainRow]
    code: str  # "kept" or the drop reason's code
    unused: int = 0  # parsed samples that are neither a target nor a reason to drop
    labels: dict | None = None  # pairwise: the order -> majority label


def _row(template: Template, item: Item, verdict: Verdict, **extra) -> TrainRow:
    variant = (verdict.meta or {}).get("variant")
    shown = dataclasses.replace(item, reference=None) if variant == REWRITE_VARIANT else item
    messages = [*template.render(shown, verdict.order).messages, {"role": "assistant", "content": verdict.raw}]
    return TrainRow(id=verdict.id, mode=template.mode, template=template.key, template_hash=verdict.template_hash,
                    order=verdict.order, messages=messages, winner=verdict.winner, scores=verdict.scores,
                    parse_ok=verdict.parse_ok, judge=verdict.judge, sample=verdict.sample, usage=verdict.usage,
                    error=verdict.error, variant=variant, category=item.category, **extra)


def _unparsed(template, item, verdicts) -> list[TrainRow]:
    return [_row(template, item, v, reason=f"unparsed: {v.error or 'no verdict'}") for v in verdicts if not v.parse_ok]


def _pairwise(template: Template, item: Item, verdicts: list[Verdict], swap: bool) -> _Outcome:
    by_order: dict[str, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        by_order[v.order].append(v)
    labels = {order: majority_label([v.winner for v in vs if v.parse_ok]) for order, vs in sorted(by_order.items())}
    unparsed = _unparsed(template, item, verdicts)
    parsed = [v for v in verdicts if v.parse_ok]
    if swap and set(by_order) != {"ab", "ba"}:  # its consistency was never checked
        missing = ", ".join(sorted({"ab", "ba"} - set(by_order)))
        rows = [_row(template, item, v, reason=f"one order only: {missing} was not judged") for v in parsed]
        return _Outcome([], unparsed + rows, "one_order_only", labels=labels)
    if None in labels.values():
        other = [_row(template, item, v, reason="unparsed: another verdict of this item did not parse") for v in parsed]
        return _Outcome([], unparsed + other, "unparsed", labels=labels)
    if len(set(labels.values())) > 1:
        said = ", ".join(f"{order} says {label}" for order, label in labels.items())
        return _Outcome([], unparsed + [_row(template, item, v, reason=f"inconsistent: {said}") for v in parsed],
                        "inconsistent", labels=labels)
    agreed = next(iter(labels.values()))
    targets = [next((v for v in vs if v.parse_ok and v.winner == agreed), None) for vs in by_order.values()]
    if None in targets:  # an even split of samples made the majority a tie no sample gave
        rows = [_row(template, item, v, reason=f"split samples: no sample says {agreed}") for v in parsed]
        return _Outcome([], unparsed + rows, "split_samples", labels=labels)
    return _Outcome([_row(template, item, v) for v in targets], unparsed, "kept", len(parsed) - len(targets), labels)


def _pointwise(template: Template, item: Item, verdicts: list[Verdict], max_spread: float | None,
               originals: dict[tuple, float]) -> _Outcome:
    dropped = _unparsed(template, item, verdicts)
    parsed, changed = [], False
    for v in (v for v in verdicts if v.parse_ok):
        before = originals.get((v.order, v.sample))
        if (v.meta or {}).get("variant") == REWRITE_VARIANT and before != v.score:
            dropped.append(_row(template, item, v, reason=f"rewrite_changed_score: {before} -> {v.score}"))
            changed = True
        else:
            parsed.append(v)
    if not parsed:
        return _Outcome([], dropped, "rewrite_changed_score" if changed else "unparsed")
    scores = [v.score for v in parsed]
    mean, spread = sum(scores) / len(scores), max(scores) - min(scores)
    if max_spread is not None and spread > max_spread:
        reason = f"spread: scores {scores} spread {spread:g} > {max_spread:g}"
        return _Outcome([], dropped + [_row(template, item, v, reason=reason) for v in parsed], "spread")
    chosen = min(parsed, key=lambda v: abs(v.score - mean))
    row = _row(template, item, chosen, mean_score=round(mean, 6), spread=spread, n_samples=len(parsed))
    return _Outcome([row], dropped, "kept", len(parsed) - 1)


def _read_verdicts(path: str, items: dict[str, Item]) -> tuple[list[Verdict], dict[str, Template]]:
    verdicts, templates = [], {}
    for number, row in iter_json_rows(path):
        try:
            v = from_row(Verdict, row, extra_to_meta=False)
        except RowError as e:
            raise InputError(str(e), path, number) from None
        if v.id not in items:
            raise InputError(f"verdict for id {v.id!r}, which is not among the items", path, number)
        if not v.template:
            raise InputError("verdict names no template (filter renders training prompts with it)", path, number)
        if v.template not in templates:
            templates[v.template] = get_template(v.template)
        template = templates[v.template]
        if v.template_hash and v.template_hash != template.text_hash:
            raise InputError(f"made with a {v.template} whose text differs from this installation's "
                             f"(hash {v.template_hash} vs {template.text_hash})", path, number)
        verdicts.append(v)
    if len({t.mode for t in templates.values()}) > 1:
        raise InputError("verdicts mix pairwise and pointwise templates; filter one mode at a time", path)
    return verdicts, templates


def judged_in_both_orders(config: FilterConfig, verdicts: list[Verdict]) -> bool:
    """Whether the pairwise verdicts were meant to hold both orders of every item (distill's default)
    or one on purpose (distill --no-swap). distill's manifest.json beside the verdicts says which; the
    --swap/--no-swap flag says it for verdicts from elsewhere. Anything ambiguous or contradictory is
    refused: keeping an unchecked order, or dropping every item, would be a silent wrong result."""
    path, manifest_path = config.verdicts, Path(config.verdicts).parent / "manifest.json"
    swapped = sum(v.order == "ba" for v in verdicts)
    swap = None
    manifest = read_json(manifest_path) if manifest_path.is_file() else None
    if isinstance(manifest, dict) and manifest.get("stage") == "distill":
        swap, written = (manifest.get("config") or {}).get("swap"), (manifest.get("counts") or {}).get("verdicts")
        if not isinstance(swap, bool):
            raise InputError("distill's manifest does not say whether both orders were judged (config.swap)",
                             str(manifest_path))
        if written != len(verdicts):
            raise InputError(f"distill's manifest.json beside it counts {written} verdicts, the file holds "
                             f"{len(verdicts)}: they come from different runs; rerun distill (cached replies are "
                             f"not paid again) to write both", path)
        if config.swap is not None and config.swap != swap:
            raise ConfigError(f"--{'' if config.swap else 'no-'}swap contradicts {manifest_path}, which says distill "
                              f"ran with --{'' if swap else 'no-'}swap; drop the flag")
    swap = config.swap if swap is None else swap
    if swap is None:
        if not swapped:
            raise InputError("every verdict is in order ab and no distill manifest.json beside the file says "
                             "whether that was on purpose: pass --no-swap if they were judged in one order only "
                             "(distill --no-swap), or --swap to drop every item whose second order is missing", path)
        swap = True  # a one-order run has no ba verdicts
    if not swap and swapped:
        raise InputError(f"judged in one order (--no-swap), yet {swapped} verdicts are in order ba", path)
    return swap


def split_by_question(questions: list[str], val_fraction: float, seed: int) -> list[bool]:
    """For each item (given by its question), whether it goes to validation. Whole questions move
    together (scikit-learn's GroupShuffleSplit), so no question is on both sides."""
    import numpy as np
    from sklearn.model_selection import GroupShuffleSplit

    groups = [q.strip() for q in questions]
    if val_fraction == 0 or len(set(groups)) < 2:
        return [False] * len(groups)
    splitter = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    _, val_index = next(splitter.split(np.zeros(len(groups)), groups=groups))
    in_val = [False] * len(groups)
    for i in val_index:
        in_val[i] = True
    return in_val


def filter_verdicts(config: FilterConfig) -> dict:
    """Write OUT/train.jsonl, val.jsonl, dropped.jsonl, filter_stats.json, manifest.json (and the
    OpenAI export); returns the stats."""
    items_path = config.items or str(Path(config.verdicts).parent / "items.jsonl")
    if not Path(items_path).exists():
        raise InputError("the items distill judged are needed to render training prompts; expected items.jsonl "
                         "beside the verdicts (written by `judgeforge distill`), or pass --items", items_path)
    items = {item.id: item for item in read_items(items_path)}
    verdicts, templates = _read_verdicts(config.verdicts, items)
    out = Path(config.out)
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OUTPUTS) if out.is_dir() else []
    if foreign:
        raise ConfigError(f"--out {out} holds {', '.join(foreign[:5])}, which filter did not write; filter replaces "
                          f"the folder as a whole, so choose a folder of its own")
    mode = next((t.mode for t in templates.values()), None)
    swap = judged_in_both_orders(config, verdicts) if mode == "pairwise" else None
    groups: dict[tuple, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        groups[(v.id, (v.meta or {}).get("variant"))].append(v)
    outcomes: dict[tuple, _Outcome] = {}
    for (item_id, variant), vs in groups.items():
        template, item = templates[vs[0].template], items[item_id]
        if template.mode == "pairwise":
            outcomes[(item_id, variant)] = _pairwise(template, item, vs, swap)
        else:
            originals = {(v.order, v.sample): v.score for v in groups.get((item_id, None), []) if v.parse_ok}
            outcomes[(item_id, variant)] = _pointwise(template, item, vs, config.max_spread, originals)
    kept = [(key, o) for key, o in outcomes.items() if o.kept]
    in_val = split_by_question([items[item_id].question for (item_id, _), _ in kept], config.val_fraction, config.seed)
    train = [row for (_, o), val in zip(kept, in_val) if not val for row in o.kept]
    val = [row for (_, o), val in zip(kept, in_val) if val for row in o.kept]
    dropped = [row for o in outcomes.values() for row in o.dropped]
    stats = _stats(config, items, verdicts, outcomes, kept, in_val, train, val, dropped)
    stats["swap"] = swap
    with staged_dir(out) as tmp:
        write_jsonl(tmp / "train.jsonl", train)
        write_jsonl(tmp / "val.jsonl", val)
        write_jsonl(tmp / "dropped.jsonl", dropped)
        if config.export == "openai":
            write_jsonl(tmp / "train_openai.jsonl", ({"messages": r.messages} for r in train))
            write_jsonl(tmp / "val_openai.jsonl", ({"messages": r.messages} for r in val))
        write_json(tmp / "filter_stats.json", stats)
        write_manifest(tmp, "filter", config=dataclasses.asdict(config),
                       inputs={"verdicts": config.verdicts, "items": items_path},
                       counts={"train": len(train), "val": len(val), "dropped": len(dropped)})
    return stats


def _stats(config, items, verdicts, outcomes, kept, in_val, train, val, dropped) -> dict:
    base = {key: o for key, o in outcomes.items() if key[1] is None}
    codes = Counter(o.code for o in base.values())
    per_category: dict[str, Counter] = defaultdict(Counter)
    for (item_id, _), o in base.items():
        per_category[items[item_id].category or "(none)"].update({"items": 1, o.code: 1})
    mode = get_template(verdicts[0].template).mode if verdicts else None
    teacher = None
    if mode == "pairwise":
        both = [o.labels for o in base.values() if o.labels and set(o.labels) == {"ab", "ba"}]
        teacher = consistency([b["ab"] for b in both], [b["ba"] for b in both], unparsed="drop")
    stats = {
        "verdicts_file": config.verdicts, "mode": mode, "verdicts": len(verdicts), "items": len(base),
        "kept_items": codes.pop("kept", 0), "dropped_items": sum(codes.values()), "drop_reasons": dict(codes),
        "rows": {"train": len(train), "val": len(val), "dropped": len(dropped),
                 "unused_samples": sum(o.unused for o in outcomes.values())},
        "questions": {side: len({items[i].question.strip() for ((i, _), _), v in zip(kept, in_val) if v == is_val})
                      for side, is_val in (("train", False), ("val", True))},
        "teacher": teacher,
        "per_category": {cat: dict(c) for cat, c in sorted(per_category.items())},
        "val_fraction": config.val_fraction, "seed": config.seed, "max_spread": config.max_spread,
    }
    rewrites = [o for key, o in outcomes.items() if key[1] == REWRITE_VARIANT]
    if rewrites:
        stats["reference_free"] = dict(Counter(o.code for o in rewrites))
    return stats

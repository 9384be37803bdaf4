"""A synthetic pairwise judging task whose rule a 135M model learns in minutes on CPU: the question
asks for a format (ALL CAPITALS, or a numbered list) and only the better answer follows it; the
other says the same thing without the format. Gold labels and answer positions are balanced, so a
judge that always answers "1" (or always "2") scores 0.5.

Writes OUT/train.jsonl and OUT/val.jsonl (TrainRows, both orders of each item, as `judgeforge
filter` would) and OUT/test.jsonl (held-out PairItems with their gold `winner`, the input of
`judgeforge score` and the --gold of `judgeforge eval`)::

    python -m train.synthetic --out examples/synthetic
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from judge.core.jsonl import write_jsonl
from judge.core.manifest import write_manifest
from judge.core.records import PairItem, TrainRow
from judge.templates import get_template

CATEGORIES = {
    "fruits": ["apple", "banana", "cherry", "mango", "pear", "plum", "grape", "kiwi", "peach", "lemon"],
    "colors": ["red", "blue", "green", "yellow", "purple", "orange", "white", "black", "pink", "brown"],
    "animals": ["dog", "cat", "horse", "tiger", "eagle", "dolphin", "rabbit", "fox", "owl", "bear"],
    "countries": ["France", "Japan", "Brazil", "Kenya", "Canada", "India", "Norway", "Chile", "Egypt", "Spain"],
    "sports": ["tennis", "football", "chess", "swimming", "cycling", "rowing", "golf", "hockey", "boxing", "judo"],
    "tools": ["hammer", "saw", "wrench", "drill", "chisel", "pliers", "ladder", "shovel", "rake", "axe"],
    "instruments": ["piano", "violin", "guitar", "flute", "drum", "cello", "harp", "trumpet", "organ", "banjo"],
    "vegetables": ["carrot", "potato", "onion", "pepper", "spinach", "leek", "pea", "radish", "celery", "kale"],
    "planets": ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"],
    "metals": ["iron", "copper", "silver", "gold", "zinc", "tin", "nickel", "lead", "cobalt", "titanium"],
}
ADJECTIVES = ["useful", "beautiful", "interesting", "popular", "simple", "famous", "common", "remarkable"]


def make_item(rng: random.Random, item_id: str, winner: str) -> PairItem:
    """One pair; `winner` says where the answer that follows the requested format goes."""
    category, words = rng.choice(sorted(CATEGORIES.items()))
    if rng.random() < 0.5:
        kind, k = "caps", rng.choice([1, 2])
        picked = rng.sample(words, k)
        question = rng.choice([f"Tell me about {' and '.join(picked)} in one sentence. Write your answer in ALL CAPITALS.",
                               f"Why do people like {picked[0]}? Answer in ALL CAPITAL LETTERS."])
        plain = f"{' and '.join(picked).capitalize()} {'is' if k == 1 else 'are'} {rng.choice(ADJECTIVES)} {category}."
        good = plain.upper()
    else:
        kind, k = "list", rng.choice([3, 4])
        picked = rng.sample(words, k)
        question = rng.choice([f"Name {k} {category}. Answer as a numbered list.",
                               f"List {k} {category}, as a numbered list please."])
        good = "\n".join(f"{i}. {w.capitalize()}" for i, w in enumerate(picked, start=1))
        plain = f"{', '.join(w.capitalize() for w in picked[:-1])} and {picked[-1].capitalize()}."
    answers = (good, plain) if winner == "1" else (plain, good)
    return PairItem(id=item_id, question=question, answer1=answers[0], answer2=answers[1], winner=winner,
                    category=kind)


def make_items(n: int, seed: int, prefix: str) -> list[PairItem]:
    """n items, half with the better answer first, in shuffled order."""
    rng = random.Random(seed)
    winners = ["1", "2"] * (n // 2) + ["1"] * (n % 2)
    rng.shuffle(winners)
    return [make_item(rng, f"{prefix}-{i:04d}", w) for i, w in enumerate(winners)]


def train_rows(items: list[PairItem], template_name: str = "pandalm") -> list[TrainRow]:
    """Both orders of each item; the target reply is the shown winner alone, the first line of a
    PandaLM reply (which its parser reads by itself). A reason after it ("### Reason: Response 2 is a
    numbered list...") made 21 of the reply's 22 tokens boilerplate: the loss averaged over them fell
    to ~0.04 while the verdict stayed at chance, and 50 steps of 8 rows were needed to learn the
    rule; with the verdict alone every step's loss is the verdict's."""
    template = get_template(template_name)
    if template.name != "pandalm":
        raise ValueError("the synthetic targets are written in pandalm's reply format")
    rows = []
    for item in items:
        for order in ("ab", "ba"):
            shown = item.winner if order == "ab" else {"1": "2", "2": "1"}[item.winner]
            messages = [*template.render(item, order).messages, {"role": "assistant", "content": shown}]
            rows.append(TrainRow(id=item.id, mode=template.mode, template=template.key, template_hash=template.text_hash,
                                 order=order, messages=messages, winner=item.winner, parse_ok=True,
                                 judge="synthetic-rule", category=item.category))
    return rows


def write_synthetic(out: str | Path, *, n_train: int = 160, n_val: int = 16, n_test: int = 100, seed: int = 0) -> dict:
    out = Path(out)
    splits = {"train": make_items(n_train, seed, "train"), "val": make_items(n_val, seed + 1, "val"),
              "test": make_items(n_test, seed + 2, "test")}
    counts = {"train": write_jsonl(out / "train.jsonl", train_rows(splits["train"])),
              "val": write_jsonl(out / "val.jsonl", train_rows(splits["val"])),
              "test": write_jsonl(out / "test.jsonl", splits["test"])}
    write_manifest(out, "synthetic", config={"n_train": n_train, "n_val": n_val, "n_test": n_test, "seed": seed,
                                             "template": get_template("pandalm").key}, counts=counts)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--train", type=int, default=160, help="training items (two rows each)")
    parser.add_argument("--val", type=int, default=16, help="validation items (two rows each)")
    parser.add_argument("--test", type=int, default=100, help="held-out test items with gold labels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = write_synthetic(args.out, n_train=args.train, n_val=args.val, n_test=args.test, seed=args.seed)
    print(f"wrote {counts['train']} train rows, {counts['val']} val rows, {counts['test']} test items to {args.out}")


if __name__ == "__main__":
    main()

"""`judgeforge filter`."""

from __future__ import annotations

import argparse


def print_summary(stats: dict, out: str) -> None:
    """Kept/dropped per category and the teacher's position bias, as a table."""
    from rich.console import Console
    from rich.table import Table

    codes = sorted({code for c in stats["per_category"].values() for code in c} - {"items", "kept"})
    table = Table(title=f"filter: {stats['kept_items']} of {stats['items']} items kept ({stats['mode']})")
    for column in ["category", "items", "kept", *codes]:
        table.add_column(column.replace("_", " "), justify="left" if column == "category" else "right")
    for category, counts in stats["per_category"].items():
        table.add_row(category, *(str(counts.get(c, 0)) for c in ["items", "kept", *codes]))
    console = Console()
    console.print(table)
    teacher = stats["teacher"]
    if teacher and teacher["n"]:
        console.print(f"teacher consistency {teacher['consistency']:.3f}, prefers first {teacher['prefer_first_rate']:.3f}, "
                      f"prefers second {teacher['prefer_second_rate']:.3f} (over {teacher['n']} items with both orders "
                      f"parsed)")
    rows = stats["rows"]
    console.print(f"{rows['train']} train rows ({stats['questions']['train']} questions), {rows['val']} val rows "
                  f"({stats['questions']['val']} questions), {rows['dropped']} dropped rows -> {out}/")


def cmd_filter(args) -> int:
    from ..filter import FilterConfig, filter_verdicts

    config = FilterConfig(verdicts=args.verdicts, out=args.out, val_fraction=args.val_fraction,
                          max_spread=args.max_spread, export=args.export, seed=args.seed, items=args.items,
                          swap=args.swap)
    print_summary(filter_verdicts(config), args.out)
    return 0


def register(verbs) -> None:
    p = verbs.add_parser("filter", help="keep swap-consistent teacher verdicts, split train/val by question",
                         description="Drop verdicts that flip when the answers are swapped or do not parse "
                                     "(dropped.jsonl says why), report the teacher's consistency and position "
                                     "bias, and write chat-format training rows split by question: OUT/train.jsonl, "
                                     "OUT/val.jsonl, OUT/dropped.jsonl, OUT/filter_stats.json.")
    p.add_argument("--verdicts", required=True, help="DIR/verdicts.jsonl from distill (items.jsonl is read beside it)")
    p.add_argument("--out", required=True, help="output folder (not the distill folder)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of questions held out (default 0.1)")
    p.add_argument("--max-spread", type=float, help="pointwise with --samples: drop items whose scores spread more")
    p.add_argument("--export", choices=["openai"], help="also write train_openai.jsonl/val_openai.jsonl ({\"messages\": [...]})")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default 0)")
    p.add_argument("--items", help="the judged items (default: items.jsonl beside --verdicts)")
    p.add_argument("--swap", action=argparse.BooleanOptionalAction, default=None,
                   help="pairwise: whether every item was meant to be judged in both orders (an item judged in one "
                        "is then dropped as 'one order only'); default: what distill's manifest.json beside the "
                        "verdicts says; needed for one-order verdicts from elsewhere (--no-swap)")
    p.set_defaults(func=cmd_filter)

"""`judgeforge filter`."""

from __future__ import annotations

from judge.cli.options import add_config_arguments, config_from


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
    from judge.distill.filter import FilterConfig, filter_verdicts

    config = config_from(FilterConfig, args)
    print_summary(filter_verdicts(config), config.out)
    return 0


def register(verbs) -> None:
    from judge.distill.filter import FilterConfig

    p = verbs.add_parser("filter", help="keep swap-consistent teacher verdicts, split train/val by question",
                         description="Drop verdicts that flip when the answers are swapped or do not parse "
                                     "(dropped.jsonl says why), report the teacher's consistency and position "
                                     "bias, and write chat-format training rows split by question: OUT/train.jsonl, "
                                     "OUT/val.jsonl, OUT/dropped.jsonl, OUT/filter_stats.json.")
    add_config_arguments(p, FilterConfig)
    p.set_defaults(func=cmd_filter)

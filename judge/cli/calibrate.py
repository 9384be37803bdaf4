"""`judgeforge calibrate`."""

from __future__ import annotations

from judge.cli.options import add_config_arguments, config_from


def cmd_calibrate(args) -> int:
    from judge.cascade.calibrate import CalibrateConfig, calibrate

    config = config_from(CalibrateConfig, args)
    cascade = calibrate(config.pred, config.gold, target=config.target_agreement, risk=config.risk, out=config.out,
                        gold_format=config.gold_format, plot=not config.no_plot)
    print_summary(cascade, config.out)
    return 0


def print_summary(cascade: dict, out: str) -> None:
    target = f"agreement >= {cascade['target_agreement']:g} with probability >= {1 - cascade['risk']:g}"
    if cascade["met"]:
        print(f"threshold {cascade['threshold']:g}: the local judge keeps {cascade['coverage']:.1%} of "
              f"{cascade['n']} items, agreement {cascade['agreement']:.4f} (lower bound "
              f"{cascade['agreement_lower_bound']:.4f}) meets {target}")
    else:
        print(f"no threshold meets {target} on these {cascade['n']} items: the cascade written escalates "
              f"everything to the teacher (threshold {cascade['threshold']:g})")
    print(f"wrote {out}" + (f" and {cascade['plot']}" if cascade.get("plot") else ""))


# ---- `score --cascade`: beside the verb that makes cascade files --------------------------------
def score_with_cascade(config, args) -> int:
    """`score` with CascadeConfig's settings given (flags or --config): `config` is the local judge's."""
    from judge.cascade.cascade import CascadeConfig, run_cascade
    from judge.cli.options import config_values
    from judge.core.errors import ConfigError

    given = config_values(CascadeConfig, args)
    if not given.get("cascade") or not given.get("teacher_model"):
        raise ConfigError("--cascade and --teacher-model go together (and the other --teacher-* flags and --prices "
                          "need them): calibrate with `judgeforge calibrate`, then pass both")
    cascade = config_from(CascadeConfig, args)
    summary = run_cascade(config, cascade)
    cost = "unknown (no price)" if summary["all_teacher_cost_usd"] is None else f"${summary['all_teacher_cost_usd']:.4f}"
    teacher = "unknown (no price)" if summary["teacher_cost_usd"] is None else f"${summary['teacher_cost_usd']:.4f}"
    print(f"wrote {summary['verdicts']} final verdicts to {config.out}: {summary['escalated_items']} of "
          f"{summary['items']} items ({summary['share_escalated']:.1%}) escalated to {cascade.teacher_model} "
          f"(threshold {summary['threshold']:g})")
    print(f"teacher: {summary['teacher_calls']} calls ({summary['teacher_calls_sent_now']} sent now), cost {teacher}; "
          f"everything to the teacher (estimated): {cost}")
    return 0


def print_escalation(judges: dict[str, dict]) -> None:
    """`eval` beside a cascade: what share of the items each judge sent to a teacher, and at what cost."""
    rows = {name: m["escalation"] for name, m in judges.items() if m.get("escalation")}
    if not any(e["share_escalated"] for e in rows.values()):
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="who decided: local judge or teacher")
    for column in ("judge", "escalated to the teacher", "teacher cost"):
        table.add_column(column, justify="left" if column == "judge" else "right")
    for name, e in rows.items():
        cost = "unknown" if e["teacher_cost_usd"] is None else f"${e['teacher_cost_usd']:.4f}"
        table.add_row(str(name), f"{e['share_escalated']:.1%}", cost)
    Console(width=max(Console().width, 110)).print(table)


def register(verbs) -> None:
    from judge.cascade.calibrate import CalibrateConfig

    p = verbs.add_parser("calibrate", help="choose the confidence threshold for a local judge + teacher cascade",
                         description="From a local judge's logprob predictions on a labelled calibration set, pick "
                                     "the lowest confidence threshold whose kept items agree with the gold labels "
                                     "at least --target-agreement with probability at least 1 - --risk (exact "
                                     "binomial bound, fixed-sequence testing from high to low thresholds), and "
                                     "write it to cascade.json for `score --cascade`, with a coverage/agreement plot.")
    add_config_arguments(p, CalibrateConfig)
    p.set_defaults(func=cmd_calibrate)

"""`judgeforge score`."""

from __future__ import annotations

from judge.cli.options import add_config_arguments, config_from, config_values


def cmd_score(args) -> int:
    from judge.cascade.cascade import CascadeConfig
    from judge.scoring.score import ScoreConfig, score

    from judge.cli.engine_args import engine_kwargs

    config = config_from(ScoreConfig, args, extra=engine_kwargs(args.engine_arg) if args.engine_arg else None)
    if config_values(CascadeConfig, args):  # the local judge, its unsure items to the teacher (judge.cascade.cascade)
        from judge.cli.calibrate import score_with_cascade

        return score_with_cascade(config, args)
    counts = score(config)
    print(f"wrote {counts['verdicts']} verdicts to {config.out} ({counts['judged_now']} judged now, "
          f"{counts['resumed']} resumed, {counts['parse_failures']} unparsed)")
    return 0


def register(verbs) -> None:
    p = verbs.add_parser("score", help="judge a dataset offline (vLLM, transformers, or an OpenAI-compatible server)",
                         description="Batch-judge items and write predictions.jsonl (Verdict records). Resumable: a "
                                     "rerun skips what is already judged (a finished run does nothing); a rerun "
                                     "whose input, template, adapter or flags changed is refused (--fresh starts "
                                     "over). A judge that stops answering ends the run with exit 1, keeping what "
                                     "was judged.")
    from judge.cascade.cascade import CascadeConfig
    from judge.scoring.score import ScoreConfig

    add_config_arguments(p, ScoreConfig, skip=("extra",))
    add_config_arguments(p, CascadeConfig, group="cascade: the local judge's unsure items to a teacher "
                                                 "(--cascade and --teacher-model go together)")
    p.add_argument("--engine-arg", action="append", metavar="KEY=VALUE",
                   help="passed to the backend's constructor: vllm.LLM (e.g. compilation_config=0, "
                        "gpu_memory_utilization=0.8, or vLLM's flag spelling --engine-arg=--enforce-eager) or "
                        "HFBackend (e.g. batch_size=16); repeatable; in --config: `extra: {KEY: VALUE}`")
    p.set_defaults(func=cmd_score)

"""`judgeforge data convert`, `judgeforge data pair` and `judgeforge data export`."""

from __future__ import annotations

from judge.cli.options import add_config_arguments, config_from


def cmd_convert(args) -> int:
    from judge.data.convert import ConvertConfig, convert
    from judge.data.tables import parse_assignments

    config = config_from(ConvertConfig, args)
    result = convert(config.source_format, config.input, config.out, fields=parse_assignments(config.field, "--field"),
                     labels=parse_assignments(config.label, "--label", split_last=True), seed=config.seed)
    what = f"{result['parsed']} parsed verdicts" if "parsed" in result else f"{result['labelled']} with gold labels"
    print(f"wrote {result['rows']} rows ({what}) to {config.out}")
    return 0


def cmd_pair(args) -> int:
    from judge.core.jsonl import write_jsonl
    from judge.data.pairing import PairConfig, pair_answers

    config = config_from(PairConfig, args)
    pairs = pair_answers(config.answers, per_question=config.per_question, seed=config.seed)
    write_jsonl(config.out, pairs)
    questions = len({p.question for p in pairs})
    print(f"wrote {len(pairs)} pairs over {questions} questions to {config.out}")
    return 0


def cmd_export(args) -> int:
    from judge.distill.export import ExportConfig, describe_left_out, export_preference

    config = config_from(ExportConfig, args)
    result = export_preference(config.input, config.out, items=config.items, fmt=config.format)
    print(f"wrote {result['rows']} preference rows to {config.out} (left out: {describe_left_out(result['left_out'])})")
    return 0


def register(verbs) -> None:
    from judge.data.convert import ConvertConfig
    from judge.data.pairing import PairConfig
    from judge.distill.export import ExportConfig

    data = verbs.add_parser("data", help="import datasets, build answer pairs, export preference data")
    actions = data.add_subparsers(dest="data_verb", metavar="ACTION", required=True)
    convert = actions.add_parser("convert", help="convert a public judge dataset or your own table to judgeforge JSONL",
                                 description="Convert PandaLM, JudgeLM, LLMBar, Prometheus, OpenAI-chat, JudgeBench "
                                             "(pairs, published judges' games) or EvalBiasBench data into "
                                             "items (with gold labels) or verdicts; or your own data: --from table "
                                             "(JSON, JSONL, CSV, Parquet or hf:NAME[:SPLIT], columns named with "
                                             "--field) or --from preference (prompt/chosen/rejected rows).")
    add_config_arguments(convert, ConvertConfig)
    convert.set_defaults(func=cmd_convert)
    pair = actions.add_parser("pair", help="pair several models' answers to the same questions",
                              description="Build PairItems from SingleItem files of several models answering the same "
                                          "questions (matched by question text; the model is the item's `model` or "
                                          "the file name). Which model is shown first is drawn at random.")
    add_config_arguments(pair, PairConfig)
    pair.set_defaults(func=cmd_pair)
    export = actions.add_parser("export", help="export judgements as preference data for reward-model or DPO training",
                                description="Turn filter's training rows, verdicts/predictions (with the items they "
                                            "judged) or gold-labelled pairs into prompt/chosen/rejected JSONL for trl's "
                                            "DPOTrainer and RewardTrainer. Ties, unparsed verdicts and items whose two "
                                            "orders disagree are left out and counted.")
    add_config_arguments(export, ExportConfig)
    export.set_defaults(func=cmd_export)

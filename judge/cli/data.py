"""`judgeforge data convert`, `judgeforge data pair` and `judgeforge data export`."""

from __future__ import annotations


def cmd_convert(args) -> int:
    from ..convert import convert
    from ..tables import parse_assignments

    result = convert(args.source_format, args.input, args.out, fields=parse_assignments(args.field, "--field"),
                     labels=parse_assignments(args.label, "--label", split_last=True), seed=args.seed)
    print(f"wrote {result['rows']} rows ({result['labelled']} with gold labels) to {args.out}")
    return 0


def cmd_pair(args) -> int:
    from ..jsonl import write_jsonl
    from ..pairing import pair_answers

    pairs = pair_answers(args.answers, per_question=args.per_question, seed=args.seed)
    write_jsonl(args.out, pairs)
    questions = len({p.question for p in pairs})
    print(f"wrote {len(pairs)} pairs over {questions} questions to {args.out}")
    return 0


def cmd_export(args) -> int:
    from ..export import describe_left_out, export_preference

    result = export_preference(args.input, args.out, items=args.items, fmt=args.format)
    print(f"wrote {result['rows']} preference rows to {args.out} (left out: {describe_left_out(result['left_out'])})")
    return 0


def register(verbs) -> None:
    from ..convert import IMPORTERS, WHOLE_TABLE_FORMATS
    from ..export import FORMATS
    from ..tables import RECORD_FIELDS

    data = verbs.add_parser("data", help="import datasets, build answer pairs, export preference data")
    actions = data.add_subparsers(dest="data_verb", metavar="ACTION", required=True)
    convert = actions.add_parser("convert", help="convert a public judge dataset or your own table to judgeforge JSONL",
                                 description="Convert PandaLM, JudgeLM, LLMBar, Prometheus or OpenAI-chat data into "
                                             "items (with gold labels) or verdicts; or your own data: --from table "
                                             "(JSON, JSONL, CSV, Parquet or hf:NAME[:SPLIT], columns named with "
                                             "--field) or --from preference (prompt/chosen/rejected rows).")
    convert.add_argument("--from", dest="source_format", required=True, choices=[*IMPORTERS, *WHOLE_TABLE_FORMATS],
                         help="the source format")
    convert.add_argument("input", metavar="IN", help="source file (JSON array or JSONL; table/preference also CSV, "
                                                     "TSV, Parquet or hf:NAME[:SPLIT])")
    convert.add_argument("--out", required=True, help="output JSONL")
    convert.add_argument("--field", action="append", metavar="FIELD=COLUMN",
                         help=f"table/preference: the column of a record field (repeatable; table fields: "
                              f"{', '.join(RECORD_FIELDS)}; preference: question, chosen, rejected, id, category); "
                              "a field not named is read from a column of its own name")
    convert.add_argument("--label", action="append", metavar="VALUE=WINNER",
                         help="table: map a gold code of the winner column to 1, 2 or tie (repeatable, e.g. "
                              "--label 0=1 --label 1=2 --label 2=tie); without it only 1, 2 and tie are accepted")
    convert.add_argument("--seed", type=int, help="preference: seed of the draw that puts the chosen answer first "
                                                  "or second (default 0; ids do not depend on it)")
    convert.set_defaults(func=cmd_convert)
    pair = actions.add_parser("pair", help="pair several models' answers to the same questions",
                              description="Build PairItems from SingleItem files of several models answering the same "
                                          "questions (matched by question text; the model is the item's `model` or "
                                          "the file name). Which model is shown first is drawn at random.")
    pair.add_argument("--answers", nargs="+", required=True, metavar="ANSWERS", help="SingleItem JSONL files")
    pair.add_argument("--out", required=True, help="output PairItem JSONL")
    pair.add_argument("--per-question", type=int, help="at most K pairs per question (default: every pair of models)")
    pair.add_argument("--seed", type=int, default=0, help="seed for the cap and the positions (default 0)")
    pair.set_defaults(func=cmd_pair)
    export = actions.add_parser("export", help="export judgements as preference data for reward-model or DPO training",
                                description="Turn filter's training rows, verdicts/predictions (with the items they "
                                            "judged) or gold-labelled pairs into prompt/chosen/rejected JSONL for trl's "
                                            "DPOTrainer and RewardTrainer. Ties, unparsed verdicts and items whose two "
                                            "orders disagree are left out and counted.")
    export.add_argument("--to", required=True, choices=["preference"], help="the target format")
    export.add_argument("--input", required=True,
                        help="train.jsonl/val.jsonl (filter), verdicts.jsonl (distill), predictions (score), or items")
    export.add_argument("--items", help="the items the verdicts judged (default: items.jsonl beside --input, or the "
                                        "one filter's manifest.json names)")
    export.add_argument("--format", default="conversational", choices=FORMATS,
                        help="conversational: chat messages, so the trainer applies the chat template (default); "
                             "standard: plain strings")
    export.add_argument("--out", required=True, help="output JSONL")
    export.set_defaults(func=cmd_export)

"""`judgeforge data convert` and `judgeforge data pair`."""

from __future__ import annotations


def cmd_convert(args) -> int:
    from ..convert import convert

    result = convert(args.source_format, args.input, args.out)
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


def register(verbs) -> None:
    from ..convert import IMPORTERS

    data = verbs.add_parser("data", help="import datasets and build answer pairs")
    actions = data.add_subparsers(dest="data_verb", metavar="ACTION", required=True)
    convert = actions.add_parser("convert", help="convert a public judge dataset to judgeforge JSONL",
                                 description="Convert PandaLM, JudgeLM, LLMBar, Prometheus or OpenAI-chat data "
                                             "into items (with gold labels) or verdicts.")
    convert.add_argument("--from", dest="source_format", required=True, choices=list(IMPORTERS), help="the source format")
    convert.add_argument("input", metavar="IN", help="source file (JSON array or JSONL)")
    convert.add_argument("--out", required=True, help="output JSONL")
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

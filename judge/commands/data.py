"""`judgeforge data convert` (and `data pair` once candidate pairing lands)."""

from __future__ import annotations


def cmd_convert(args) -> int:
    from ..convert import convert

    result = convert(args.source_format, args.input, args.out)
    print(f"wrote {result['rows']} rows ({result['labelled']} with gold labels) to {args.out}")
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

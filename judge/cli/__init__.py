"""`judgeforge`: a thin command line over the Python API. Each verb (one module of this package)
exposes `register(verbs)`, which adds its subparser(s), their flags generated from the stage's
config dataclass (`options.add_config_arguments`, with `--config FILE.yaml`), and binds a handler
that builds the config (`options.config_from`) and calls one function a user can import. This package is the only part of `judge` that imports
`train` and `serve`, and only inside the handlers: heavy libraries (torch, transformers, vllm) load
only in the verbs that need them, so `judgeforge --help`, `data convert` and `eval` start instantly.

Exit codes: 0 success, 2 bad usage or bad input (the message names file and line), 1 other failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from judge import __version__
from judge.core.errors import JudgeforgeError
from judge.core.manifest import mask_urls

# In the order `--help` lists them (the pipeline's order).
COMMAND_MODULES = ["data", "distill", "filter", "train", "serve", "score", "calibrate", "evaluate"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="judgeforge",
        description="Train and serve local LLM judges: distill a teacher, filter position bias, "
                    "LoRA-finetune, serve with vLLM, score and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"judgeforge {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"judge.cli.{name}").register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except JudgeforgeError as e:
        print(f"judgeforge: error: {mask_urls(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("judgeforge: interrupted", file=sys.stderr)
        return 130

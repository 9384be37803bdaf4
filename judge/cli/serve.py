"""`judgeforge serve`."""

from __future__ import annotations

import argparse

from judge.cli.options import add_config_arguments, config_from, config_values


def cmd_serve(args) -> int:
    import logging

    from serve.server import serve

    from judge.core.manifest import mask_log_handlers

    logging.basicConfig(level=logging.INFO, format="judgeforge: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    mask_log_handlers()  # --upstream's URL may hold a key
    serve(serve_config(args))
    return 0


def serve_config(args):
    """ServeConfig from defaults < --config < flags; the keys from the environment where none is given."""
    import dataclasses
    import os

    from judge.cli.engine_args import engine_flags
    from serve.config import ServeConfig
    from serve.judges import parse_adapters
    from serve.server import upstream_api_key

    # --adapter NAME=PATH, else the YAML's `adapters: {NAME: PATH}`: each folder checked the same way
    specs = args.adapter or [f"{name}={path}" for name, path in config_values(ServeConfig, args).get("adapters", {}).items()]
    vllm_args = engine_flags(args.engine_arg) if args.engine_arg else None
    config = config_from(ServeConfig, args, adapters=parse_adapters(specs) or None, vllm_args=vllm_args)
    api_key = config.api_key or os.environ.get("JUDGEFORGE_API_KEY")
    upstream_key = upstream_api_key(config.upstream_api_key, api_key) if config.upstream else None
    return dataclasses.replace(config, api_key=api_key, upstream_api_key=upstream_key)


def register(verbs) -> None:
    from serve.config import ServeConfig

    p = verbs.add_parser(
        "serve", help="serve a judge: vLLM's OpenAI-compatible server plus the judge API",
        description="Start vLLM (base model + LoRA adapters) on loopback and the judge API in front of it: "
                    "/v1/judge/pairwise, /v1/judge/pointwise, /v1/judge/batch, /v1/models, /health, and "
                    "/v1/chat/completions + /v1/completions forwarded to the engine. Docs at /docs.")
    add_config_arguments(p, ServeConfig, skip=("adapters", "vllm_args"))
    p.add_argument("--adapter", action="append", metavar="NAME=PATH",
                   help="a LoRA adapter served as judge NAME (repeat for several); its judgeforge.json gives the "
                        "template; in --config: `adapters: {NAME: PATH}`")
    p.add_argument("--engine-arg", action="append", metavar="KEY=VALUE",
                   help="passed to `vllm serve`: KEY=VALUE (e.g. max_num_seqs=64, enforce_eager=true) or vLLM's own "
                        "flag (--engine-arg=--enforce-eager, --engine-arg '--max-num-seqs 64'); repeatable; "
                        "in --config: `vllm_args: [--enforce-eager]`")
    p.add_argument("--vllm-arg", action="append", dest="engine_arg", help=argparse.SUPPRESS)  # the older spelling
    p.set_defaults(func=cmd_serve)

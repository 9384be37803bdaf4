"""`judgeforge serve`."""

from __future__ import annotations

import os
import shlex


def cmd_serve(args) -> int:
    import logging

    from serve.judges import parse_adapters
    from serve.server import ServeConfig, serve, upstream_api_key

    logging.basicConfig(level=logging.INFO, format="judgeforge: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    api_key = args.api_key or os.environ.get("JUDGEFORGE_API_KEY")
    config = ServeConfig(
        base=args.base, adapters=parse_adapters(args.adapter), merged=args.merged, template=args.template,
        upstream=args.upstream, upstream_api_key=upstream_api_key(args.upstream_api_key, api_key) if args.upstream else None,
        host=args.host, port=args.port, api_key=api_key,
        tensor_parallel_size=args.tensor_parallel_size, max_model_len=args.max_model_len,
        gpu_memory_utilization=args.gpu_memory_utilization,
        vllm_args=[part for arg in args.vllm_arg or [] for part in shlex.split(arg)],
        timeout=args.timeout, max_batch=args.max_batch, max_tokens=args.max_tokens,
        startup_timeout=args.startup_timeout, engine_log=args.engine_log, max_body_mb=args.max_body_mb,
        max_in_flight=args.max_in_flight,
    )
    serve(config)
    return 0


def register(verbs) -> None:
    p = verbs.add_parser(
        "serve", help="serve a judge: vLLM's OpenAI-compatible server plus the judge API",
        description="Start vLLM (base model + LoRA adapters) on loopback and the judge API in front of it: "
                    "/v1/judge/pairwise, /v1/judge/pointwise, /v1/judge/batch, /v1/models, /health, and "
                    "/v1/chat/completions + /v1/completions forwarded to the engine. Docs at /docs.")
    p.add_argument("--base", help="base model folder or hub id (with --upstream: the served model to judge with)")
    p.add_argument("--adapter", action="append", metavar="NAME=PATH",
                   help="a LoRA adapter served as judge NAME (repeat for several); its judgeforge.json gives the template")
    p.add_argument("--merged", action="store_true",
                   help="merge the one --adapter into --base and serve that (fast on CPU, where runtime LoRA is slow)")
    p.add_argument("--template", help="template for the base model (default: judgelm pairwise, prometheus-absolute pointwise)")
    p.add_argument("--upstream", metavar="URL", help="front a running OpenAI-compatible server instead of starting vLLM")
    p.add_argument("--upstream-api-key", help="the upstream's key (default: OPENAI_API_KEY, but only when --api-key "
                                              "guards this server)")
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address (default loopback; elsewhere, set --api-key: without one only requests whose "
                        "Host is this address or localhost are answered)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on every route but /health "
                                     "(default: JUDGEFORGE_API_KEY)")
    p.add_argument("--tensor-parallel-size", type=int, help="vLLM: GPUs per model")
    p.add_argument("--max-model-len", type=int, help="vLLM: context length (also the input length limit)")
    p.add_argument("--gpu-memory-utilization", type=float, help="vLLM: share of GPU memory to use")
    p.add_argument("--vllm-arg", action="append", metavar="ARG",
                   help="extra `vllm serve` flags, e.g. --vllm-arg=--enforce-eager or --vllm-arg '--max-num-seqs 64'")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per judge request before 504 (default 600)")
    p.add_argument("--max-batch", type=int, default=64, help="items per /v1/judge/batch request (default 64)")
    p.add_argument("--max-tokens", type=int, default=512, help="full-mode reply budget when a request sets none")
    p.add_argument("--max-body-mb", type=float, default=16.0, help="request body limit in MiB: 413 above (default 16)")
    p.add_argument("--max-in-flight", type=int, default=256,
                   help="POST requests worked on at once: 503 with Retry-After above (default 256)")
    p.add_argument("--startup-timeout", type=float, default=900.0, help="seconds to wait for vLLM to become healthy")
    p.add_argument("--engine-log", help="vLLM's log file (default: a temporary file, named at start)")
    p.set_defaults(func=cmd_serve)

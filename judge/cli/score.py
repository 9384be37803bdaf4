"""`judgeforge score`."""

from __future__ import annotations

import os


# Flags whose default lives in ScoreConfig alone: argparse leaves them None unless given.
CONFIG_DEFAULTS = ("mode", "max_tokens", "batch_size", "concurrency", "timeout", "max_retries", "tensor_parallel_size")


def score_config(args):
    from ..score import ScoreConfig

    given = {name: getattr(args, name) for name in CONFIG_DEFAULTS if getattr(args, name) is not None}
    return ScoreConfig(
        input=args.input, out=args.out, backend=args.backend, model=args.model, adapter=args.adapter,
        template=args.template, swap=args.swap, name=args.name, base_url=args.base_url,
        api_key=args.api_key or os.environ.get("OPENAI_API_KEY"), max_model_len=args.max_model_len, limit=args.limit,
        fresh=args.fresh, extra=parse_engine_args(args.engine_arg or []), ray_replicas=args.ray_replicas,
        ray_address=args.ray_address, **given,
    )


def cmd_score(args) -> int:
    from ..score import score

    config = score_config(args)
    from .calibrate import score_with_cascade, wants_cascade

    if wants_cascade(args):  # the local judge, its unsure items to the teacher (judge.cascade)
        return score_with_cascade(config, args)
    counts = score(config)
    print(f"wrote {counts['verdicts']} verdicts to {args.out} ({counts['judged_now']} judged now, "
          f"{counts['resumed']} resumed, {counts['parse_failures']} unparsed)")
    return 0


def parse_engine_args(pairs: list[str]) -> dict:
    """`KEY=VALUE` pairs for the backend's constructor (vllm.LLM / HFBackend), values read as YAML
    (`compilation_config=0`, `enforce_eager=true`, `dtype=bfloat16`)."""
    import yaml

    from ..errors import ConfigError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--engine-arg takes KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return out


def register(verbs) -> None:
    p = verbs.add_parser("score", help="judge a dataset offline (vLLM, transformers, or an OpenAI-compatible server)",
                         description="Batch-judge items and write predictions.jsonl (Verdict records). Resumable: a "
                                     "rerun skips what is already judged (a finished run does nothing); a rerun "
                                     "whose input, template, adapter or flags changed is refused (--fresh starts "
                                     "over). A judge that stops answering ends the run with exit 1, keeping what "
                                     "was judged.")
    p.add_argument("--input", required=True, help="items JSONL (PairItems or SingleItems)")
    p.add_argument("--backend", required=True, choices=["vllm", "hf", "openai"],
                   help="vllm: offline vllm.LLM; hf: transformers+peft; openai: any OpenAI-compatible endpoint")
    p.add_argument("--model", required=True, help="model path (vllm/hf) or served model name (openai)")
    p.add_argument("--adapter", help="LoRA adapter folder (its judgeforge.json gives the template)")
    p.add_argument("--template", help="template name (default: the adapter's, else judgelm / prometheus-absolute)")
    p.add_argument("--swap", action="store_true", help="judge both answer orders (pairwise)")
    p.add_argument("--mode", choices=["full", "verdict", "logprob"],
                   help="full: free text, parsed; verdict: structured output, always parses; "
                        "logprob: verdict-token probabilities / expected score")
    p.add_argument("--out", required=True, help="predictions JSONL")
    p.add_argument("--name", help="judge name recorded in the verdicts (default: adapter or model folder name)")
    p.add_argument("--max-tokens", type=int, help="generation budget in full mode")
    p.add_argument("--batch-size", type=int, help="items per backend call (and per resume checkpoint)")
    p.add_argument("--base-url", help="openai backend: the endpoint (default OPENAI_BASE_URL)")
    p.add_argument("--api-key", help="openai backend: the key (default OPENAI_API_KEY)")
    p.add_argument("--concurrency", type=int, help="openai backend: requests in flight")
    p.add_argument("--timeout", type=float, help="openai backend: seconds per attempt")
    p.add_argument("--max-retries", type=int,
                   help="openai backend: retries per request on 429 (after Retry-After), 5xx, timeouts and dropped "
                        "connections; then the run stops (exit 1), keeping what was judged")
    p.add_argument("--tensor-parallel-size", type=int, help="vllm backend: GPUs per model")
    p.add_argument("--max-model-len", type=int, help="vllm backend: context length")
    p.add_argument("--limit", type=int, help="score only the first N items")
    p.add_argument("--fresh", action="store_true",
                   help="start over: drop a partial run and overwrite --out instead of resuming")
    p.add_argument("--engine-arg", action="append", metavar="KEY=VALUE",
                   help="passed to the backend's constructor: vllm.LLM (e.g. compilation_config=0, "
                        "gpu_memory_utilization=0.8) or HFBackend (e.g. dtype=bfloat16, batch_size=16); repeatable")
    p.add_argument("--ray-replicas", type=int, metavar="N",
                   help="judge on N Ray actors, one backend each (pip install 'judgeforge[ray]'); same outputs, "
                        "resume and order as one process; a dead replica's batch is judged by its replacement")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="with --ray-replicas: join this Ray cluster (auto, HOST:PORT, ray://HOST:10001; default "
                        "RAY_ADDRESS); without it a local cluster is started for the run and stopped after it")
    from .calibrate import add_cascade_arguments

    add_cascade_arguments(p)
    p.set_defaults(func=cmd_score)

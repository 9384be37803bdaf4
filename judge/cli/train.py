"""`judgeforge train` and `judgeforge merge`."""

from __future__ import annotations

from judge.cli.options import add_config_arguments, config_from


def cmd_train(args) -> int:
    from train.config import load_config
    from train.trainer import train

    overrides = [*(args.set or []), *([f"dtype={args.dtype}"] if args.dtype else [])]
    summary = train(load_config(args.config, overrides), fresh=args.fresh)
    best = summary["best_metric"]
    note = f"; best {best['name']} {best['value']:.4f} at step {best['step']}" if best else ""
    print(f"adapter: {summary['adapter']} ({summary['steps']} steps{note})")
    return 0


def cmd_merge(args) -> int:
    from judge.backends.models import MergeConfig, merge

    config = config_from(MergeConfig, args)
    out = merge(config.base, config.adapter, config.out, dtype=config.dtype)
    print(f"merged model: {out}")
    return 0


def register(verbs) -> None:
    from judge.backends.dtype import DTYPES
    from judge.backends.models import MergeConfig

    tr = verbs.add_parser("train", help="LoRA/QLoRA-finetune a judge from a YAML config",
                          description="Fine-tune a judge on train.jsonl/val.jsonl from `judgeforge filter`. "
                                      "Resumes from the last complete checkpoint in output_dir when the config and "
                                      "data are those it was trained with (otherwise refuses; --fresh starts over). "
                                      "Multi-GPU/multi-node: "
                                      "accelerate launch --config_file configs/accelerate/X.yaml -m judge.cli train ...")
    tr.add_argument("--config", required=True, help="configs/train/NAME.yaml")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a config key (dotted keys for nested sections, e.g. lora.r=8); repeatable")
    tr.add_argument("--dtype", choices=DTYPES, help="the base weights' dtype (and 4-bit compute dtype), as --set "
                                                   "dtype=X; auto (the config's default): the config's bf16/fp16 when "
                                                   "it sets one, else bfloat16 where the device computes it natively, "
                                                   "else float32")
    tr.add_argument("--fresh", action="store_true",
                    help="start over: delete output_dir's checkpoints and log instead of resuming them")
    tr.set_defaults(func=cmd_train)
    mg = verbs.add_parser("merge", help="merge a LoRA adapter into its base model",
                          description="Write a plain model folder (weights + tokenizer + judgeforge.json) that "
                                      "vLLM serves without runtime LoRA.")
    add_config_arguments(mg, MergeConfig)
    mg.set_defaults(func=cmd_merge)

"""`judgeforge train` and `judgeforge merge`."""

from __future__ import annotations


def cmd_train(args) -> int:
    from train.config import load_config
    from train.trainer import train

    summary = train(load_config(args.config, args.set or []), fresh=args.fresh)
    best = summary["best_metric"]
    note = f"; best {best['name']} {best['value']:.4f} at step {best['step']}" if best else ""
    print(f"adapter: {summary['adapter']} ({summary['steps']} steps{note})")
    return 0


def cmd_merge(args) -> int:
    from judge.models import merge

    out = merge(args.base, args.adapter, args.out, dtype=args.dtype)
    print(f"merged model: {out}")
    return 0


def register(verbs) -> None:
    tr = verbs.add_parser("train", help="LoRA/QLoRA-finetune a judge from a YAML config",
                          description="Fine-tune a judge on train.jsonl/val.jsonl from `judgeforge filter`. "
                                      "Resumes from the last complete checkpoint in output_dir when the config and "
                                      "data are those it was trained with (otherwise refuses; --fresh starts over). "
                                      "Multi-GPU/multi-node: "
                                      "accelerate launch --config_file configs/accelerate/X.yaml -m judge.cli train ...")
    tr.add_argument("--config", required=True, help="configs/train/NAME.yaml")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a config key (dotted keys for nested sections, e.g. lora.r=8); repeatable")
    tr.add_argument("--fresh", action="store_true",
                    help="start over: delete output_dir's checkpoints and log instead of resuming them")
    tr.set_defaults(func=cmd_train)
    mg = verbs.add_parser("merge", help="merge a LoRA adapter into its base model",
                          description="Write a plain model folder (weights + tokenizer + judgeforge.json) that "
                                      "vLLM serves without runtime LoRA.")
    mg.add_argument("--base", required=True, help="base model folder")
    mg.add_argument("--adapter", required=True, help="adapter folder written by `judgeforge train`")
    mg.add_argument("--out", required=True, help="output folder")
    mg.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                    help="merge and save in this dtype (float32: exact; bfloat16: half the size)")
    mg.set_defaults(func=cmd_merge)

"""Run by test_ddp under `accelerate launch`: trains with `train.trainer.train` and has every rank
save what it ended with (its distributed setup and LoRA weights) to OUT/rank{N}.pt."""

import sys

import torch
from transformers import TrainerCallback


class DumpRank(TrainerCallback):
    def __init__(self, out: str):
        self.out = out

    def on_train_end(self, args, state, control, model=None, **kwargs):
        from accelerate import PartialState

        ps = PartialState()
        lora = {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if "lora_" in k}
        torch.save({"distributed_type": ps.distributed_type.value, "world_size": ps.num_processes,
                    "rank": ps.process_index, "backend": ps.backend, "lora": lora}, f"{self.out}/rank{ps.process_index}.pt")


if __name__ == "__main__":
    from train.config import load_config
    from train.trainer import train

    out, overrides = sys.argv[1], sys.argv[2:]
    train(load_config(None, overrides), callbacks=[DumpRank(out)])

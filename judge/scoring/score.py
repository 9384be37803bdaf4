"""`judgeforge score`: judge a whole dataset offline and write predictions.jsonl (Verdict records).

Three backends behind one interface: `vllm` (offline vllm.LLM), `hf` (transformers + peft), `openai`
(any OpenAI-compatible endpoint, `judgeforge serve` included).

Resumable, and never mixing two judges: verdicts are appended to `OUT.partial` batch by batch
(fsynced) under a resume state `OUT.partial.json` (written atomically) that records what the verdicts
depend on: the input file's content, the template's text, the adapter's files, the model and the
flags that change a verdict. A rerun with the same state judges only what is missing; the final
file is written atomically in item order, and its manifest keeps the state, so a rerun of a finished
run does no work. A rerun whose input, template, adapter or flags changed is refused (`fresh` starts
over). A fresh run leaves the old OUT untouched until it replaces it; its resume state says it is
fresh, so an interrupted fresh run is resumed by a rerun with or without --fresh (the old verdicts
are never mixed in). One run per output at a time (`OUT.lock`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from judge.backends.base import Backend, BackendError
from judge.backends.dtype import DTYPES
from judge.backends.factory import make_backend
from judge.core.configfile import option
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import AppendLog, iter_json_rows, read_items, read_json, write_json, write_jsonl
from judge.core.manifest import file_sha256, folder_fingerprint, mask_urls, write_manifest
from judge.core.records import Verdict, from_row, mode_of
from judge.core.runlock import RunLock
from judge.scoring.judging import MODES, iter_verdicts, orders_for, params_for
from judge.templates import Template

BACKENDS = ("vllm", "hf", "openai")
BIG_MODEL_FILE = 64 << 20  # model files above this are fingerprinted by size and mtime, not read


@dataclass
class ScoreConfig:
    input: str = option(help="items JSONL (PairItems or SingleItems)")
    out: str = option(help="predictions JSONL")
    backend: str = option(help="vllm: offline vllm.LLM; hf: transformers+peft; openai: any OpenAI-compatible endpoint",
                          choices=BACKENDS)
    model: str = option(help="model path (vllm/hf) or served model name (openai)")
    adapter: str | None = option(None, help="LoRA adapter folder (its judgeforge.json gives the template)")
    template: str | None = option(None, help="template name (default: the adapter's, else judgelm / prometheus-absolute)")
    swap: bool = option(False, help="judge both answer orders (pairwise): twice the calls, and consistency and position bias "
                                      "in eval; off here as scoring is often done once per item (distill's default is on, "
                                      "for filter)")
    mode: str = option("full", choices=MODES, help="full: free text, parsed; verdict: structured output, always "
                                                   "parses; logprob: verdict-token probabilities / expected score")
    max_tokens: int = option(512, help="generation budget in full mode")
    batch_size: int = option(256, help="items per backend call (and per resume checkpoint)")
    name: str | None = option(None, help="judge name recorded in the verdicts (default: adapter or model folder name)")
    base_url: str | None = option(None, help="openai backend: the endpoint (default OPENAI_BASE_URL)")
    api_key: str | None = option(None, help="openai backend: the key (default OPENAI_API_KEY)")
    concurrency: int = option(16, help="openai backend: requests in flight; 16 keeps a local vLLM server's batches full "
                                          "(distill's 8 is for a hosted teacher's rate limits)")
    timeout: float = option(600.0, help="openai backend: seconds per attempt; 600, as a local server may queue the "
                                              "request behind whole batches (distill's 120 is for a hosted teacher)")
    max_retries: int = option(6, help="openai backend: retries per request on 429 (after Retry-After), 5xx, timeouts "
                                      "and dropped connections; then the run stops (exit 1), keeping what was judged")
    dtype: str = option("auto", choices=DTYPES, help=(
        "vllm/hf backends: the model's dtype; auto: bfloat16 where the device computes it natively (CUDA compute "
        "capability 8.0+, CPUs with avx512_bf16/amx_bf16), else float32"))
    load_in_4bit: bool = option(False, help="hf backend: judge on the base quantized to 4-bit nf4 as QLoRA trained it "
                                            "(default: a QLoRA adapter goes on the full-precision base)")
    tensor_parallel_size: int = option(1, help="vllm backend: GPUs per model")
    max_model_len: int | None = option(None, help="vllm backend: context length")
    limit: int | None = option(None, help="score only the first N items")
    fresh: bool = option(False, help="start over: judge every item again; the old --out stays as it is until the new run "
                                         "replaces it, and an interrupted fresh run resumes on a rerun")
    extra: dict = option(default_factory=dict, help="the backend's constructor arguments: vllm.LLM (e.g. "
                                                    "compilation_config: 0) or HFBackend (e.g. dtype: bfloat16)")
    ray_replicas: int | None = option(None, metavar="N", help=(
        "judge on N Ray actors, one backend each (pip install 'judgeforge[ray]'); same outputs, resume and order "
        "as one process; a dead replica's batch is judged by its replacement"))
    ray_address: str | None = option(None, metavar="ADDR", help=(
        "with --ray-replicas: join this Ray cluster (auto, HOST:PORT, ray://HOST:10001; default RAY_ADDRESS); "
        "without it a local cluster is started for the run and stopped after it"))

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.timeout <= 0:
            raise ConfigError(f"--timeout must be positive, got {self.timeout}")
        if self.max_retries < 0:
            raise ConfigError(f"--max-retries must be 0 or more, got {self.max_retries}")
        if self.ray_replicas is not None and self.ray_replicas < 1:
            raise ConfigError(f"--ray-replicas must be 1 or more, got {self.ray_replicas}")
        if self.load_in_4bit and self.backend != "hf":
            raise ConfigError("--load-in-4bit is for --backend hf (vLLM serves a QLoRA adapter on the full base, or "
                              "its merged model)")
        if self.ray_address and not self.ray_replicas:
            raise ConfigError("--ray-address joins a Ray cluster for --ray-replicas: give --ray-replicas N too")


def resolve_template(config: ScoreConfig, items: list) -> Template:
    """--template, else the adapter's own template (judgeforge.json, required: an adapter made
    elsewhere needs --template), else the default for the mode (`adapters.choose_template`)."""
    from judge.backends.adapters import choose_template, read_adapter_info

    mode = mode_of(items[0])
    info = read_adapter_info(config.adapter) if config.adapter and not config.template else None
    return choose_template(mode, explicit=config.template, info=info, context=f" but {config.input} holds {mode} items")


# What a verdict depends on besides the item: a resumed run must match on all of it. The api key,
# limits, batch size, concurrency, timeouts, retries and paths do not change a verdict.
_SAME_VERDICTS = ("backend", "mode", "swap", "max_tokens", "name", "base_url", "tensor_parallel_size",
                  "max_model_len", "extra", "dtype", "load_in_4bit")
_WHAT = {"input_sha256": "the input file's content", "template": "the template", "template_hash": "the template's text",
         "model": "the model", "adapter": "the adapter's files"}


def resume_state(config: ScoreConfig, template: Template) -> dict:
    """The resume state: contents by hash (input, template, adapter and local model files), flags by value."""
    local = config.backend != "openai"
    return {
        "input_sha256": file_sha256(config.input), "template": template.key, "template_hash": template.text_hash,
        "model": folder_fingerprint(config.model, big=BIG_MODEL_FILE) if local else config.model,
        "adapter": folder_fingerprint(config.adapter) if config.adapter else None,
        # the state is written to disk: a key inside --base-url is masked (it changes no verdict)
        **{k: mask_urls(v) if k == "base_url" and v else v for k, v in asdict(config).items() if k in _SAME_VERDICTS},
    }


# Who the judge is, as a cascade's calibration holds only for it: not its name (every trained
# adapter is called `adapter`), but what makes its verdicts and their confidence.
FINGERPRINT = ("backend", "model", "adapter", "template", "template_hash", "mode")


def judge_fingerprint(state: dict) -> dict:
    """The judge's fingerprint out of a resume state (score's manifest keeps it under `resume`)."""
    return {k: state.get(k) for k in FINGERPRINT}


def changed_settings(recorded: dict, current: dict) -> list[str]:
    """What differs between two resume states (or fingerprints), in words."""
    return [_WHAT.get(k, f"--{k.replace('_', '-')}") for k in current if recorded.get(k) != current[k]]


def _check_state(recorded: dict | None, state: dict, what: str) -> None:
    """Refuse to add to verdicts judged under another state, naming what changed."""
    if recorded is None:
        raise ConfigError(f"{what} has no record of how it was judged; rerun with --fresh to judge again from the "
                          f"start, or choose another --out")
    changed = changed_settings(recorded, state)
    if changed:
        raise ConfigError(f"{what} was judged with other settings (changed: {', '.join(changed)}); rerun with --fresh "
                          f"to judge again from the start, or choose another --out")


def _read_verdicts(rows) -> dict[tuple[str, str], Verdict]:
    verdicts = (from_row(Verdict, row, extra_to_meta=False) for row in rows)
    return {(v.id, v.order): v for v in verdicts}


def _manifest_path(out: Path) -> Path:
    return out.parent / f"{out.stem}.manifest.json"  # several prediction files may share a folder


def score(config: ScoreConfig, backend: Backend | None = None, *, progress: bool = True) -> dict:
    """Judge every item of `config.input` (both orders with `swap`); returns the run's counts.
    `backend` overrides the one `config` names (tests pass a fake). Raises BackendError (exit 1)
    when the judge stops answering, after keeping every verdict that came back."""
    items = read_items(config.input)
    if config.limit:
        items = items[: config.limit]
    if not items:
        raise InputError("no items to score", config.input)
    template = resolve_template(config, items)
    params = params_for(template, config.mode, max_tokens=config.max_tokens)
    out = Path(config.out)
    with RunLock(out.with_name(out.name + ".lock"), what=f"score --out {out}"):
        return _score(config, backend, items, template, params, out, progress)


def _score(config: ScoreConfig, backend: Backend | None, items: list, template: Template, params, out: Path,
           progress: bool) -> dict:
    log = AppendLog(out.with_name(out.name + ".partial"))
    state_path = out.with_name(out.name + ".partial.json")
    state = resume_state(config, template)
    partial = read_json(state_path) if state_path.exists() else None
    # An interrupted --fresh run under these settings is resumed, with or without --fresh again: its
    # partial is the new work; any other partial is what --fresh throws away.
    fresh_partial = bool(partial and partial.get("fresh")) and all(partial.get(k) == v for k, v in state.items())
    if config.fresh and not fresh_partial:
        log.remove()
        state_path.unlink(missing_ok=True)
        partial = None
    fresh = config.fresh or bool(partial and partial.get("fresh"))
    kept: dict[tuple[str, str], Verdict] = {}
    if out.exists() and not fresh:  # a fresh run leaves the old output as it is until it replaces it, unread
        manifest = _manifest_path(out)
        _check_state(read_json(manifest).get("resume") if manifest.exists() else None, state, str(out))
        kept.update(_read_verdicts(row for _, row in iter_json_rows(out)))
    if partial is not None:
        _check_state(partial, state, f"the partial run {log.path}")
        kept.update(_read_verdicts(log.rows()))
    elif log.path.exists():
        _check_state(None, state, f"the partial run {log.path}")
    orders = orders_for(config.swap, template.mode)
    wanted = [(i.id, o) for i in items for o in orders]
    pending = [key for key in wanted if key not in kept]
    if not pending and out.exists() and not fresh and not state_path.exists() and len(kept) == len(wanted):
        return _counts(items, orders, [kept[k] for k in wanted], judged=0, elapsed=0.0)  # finished: nothing to do
    started, judged, executor = time.monotonic(), 0, {"executor": "process"}
    if pending:
        write_json(state_path, {**state, "fresh": True} if fresh else state)
        if config.ray_replicas:  # the same judging on N Ray actors; the log, state and order stay here
            from judge.scoring.ray import RayReplicas

            owned, backend = True, RayReplicas(config, template, params, replicas=config.ray_replicas,
                                               address=config.ray_address, backend=backend).start()
        else:
            owned = backend is None
            backend = backend or make_backend(config)
        from tqdm import tqdm

        if getattr(backend, "dtype", None) is not None:  # the one dtype rule's choice (judge.backends.dtype)
            print(f"score: {backend.dtype}", file=sys.stderr)
        try:
            with tqdm(total=len(wanted), initial=len(wanted) - len(pending), unit="call", desc=f"score {backend.name}",
                      disable=not progress, dynamic_ncols=True) as bar:
                batches = (backend.iter_verdicts(items, done=set(kept), progress=bar) if config.ray_replicas else
                           iter_verdicts(items, template, backend, mode=config.mode, swap=config.swap,
                                         batch_size=config.batch_size, params=params, done=set(kept), progress=bar))
                for batch in batches:
                    log.append(batch)
                    kept.update(((v.id, v.order), v) for v in batch)
                    judged += len(batch)
        except BackendError as e:
            missing = sum(key not in kept for key in wanted)
            raise BackendError(f"{e}. {len(wanted) - missing} of {len(wanted)} verdicts are kept in {log.path}: rerun "
                               f"the same command to judge the other {missing}") from None
        finally:
            log.close()
            if owned and hasattr(backend, "close"):
                backend.close()
        if config.ray_replicas:
            executor = backend.describe()  # replicas, replacements, the cluster's resources
    ordered = [kept[k] for k in wanted]
    write_jsonl(out, ordered)
    counts = _counts(items, orders, ordered, judged=judged, elapsed=time.monotonic() - started)
    write_manifest(out.parent, "score", filename=_manifest_path(out).name,
                   config={**asdict(config), "api_key": None, "template": template.key,
                           "template_hash": template.text_hash},
                   inputs={"items": config.input, **({"adapter": config.adapter} if config.adapter else {})},
                   counts=counts, resume=state, executor=executor,
                   dtype=backend.dtype.as_dict() if getattr(backend, "dtype", None) is not None else None)
    log.remove()
    state_path.unlink(missing_ok=True)
    return counts


def _counts(items: list, orders: tuple, verdicts: list[Verdict], *, judged: int, elapsed: float) -> dict:
    return {
        "items": len(items), "verdicts": len(verdicts), "judged_now": judged, "resumed": len(verdicts) - judged,
        "parse_failures": sum(not v.parse_ok for v in verdicts), "seconds": round(elapsed, 3),
        "items_per_second": round(judged / (len(orders) * elapsed), 3) if judged and elapsed else None,
        "prompt_tokens": sum((v.usage or {}).get("prompt_tokens", 0) for v in verdicts),
        "completion_tokens": sum((v.usage or {}).get("completion_tokens", 0) for v in verdicts),
    }

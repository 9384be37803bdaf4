"""`judgeforge serve` as a function: start the engine (or use `--upstream`), find the judges and
the context length, then run the judge API with uvicorn until interrupted, and stop the engine
on the way out (also on SIGTERM). If the engine dies, the server stops and `serve` raises
`EngineExited` (exit 1), so a supervisor restarts it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import signal
from contextlib import ExitStack
from pathlib import Path

import httpx

from judge.backends.dtype import choose_dtype
from judge.backends.vllm import vllm_device
from judge.core.errors import ConfigError
from judge.core.manifest import mask_log_handlers, mask_urls

from serve.config import ServeConfig
from serve.engine import EngineConfig, EngineProcess
from serve.errors import EngineExited
from serve.judges import Judge, build_judges, default_templates
from serve.service import Limits
from serve.upstream import Upstream, api_url

log = logging.getLogger("judgeforge.serve")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def upstream_api_key(given: str | None, api_key: str | None, environ=os.environ) -> str | None:
    """The key sent to `--upstream`: `--upstream-api-key`, else OPENAI_API_KEY, but the latter only
    when the judge API has a key of its own: an open judge API would hand anyone who reaches it
    the use of a paid key that was merely lying in the environment."""
    if given or not environ.get("OPENAI_API_KEY"):
        return given
    if api_key:
        return environ["OPENAI_API_KEY"]
    log.warning("OPENAI_API_KEY is not sent to the upstream because this judge API has no --api-key; "
                "set --api-key (or pass --upstream-api-key explicitly)")
    return None


def served_name(base: str) -> str:
    """A local folder is served under its folder name; a hub id as it is."""
    return Path(base).name if Path(base).exists() else base


def discover(url: str, api_key: str | None) -> list[dict]:
    """The upstream's model list (vLLM adds each model's `max_model_len`)."""
    try:
        response = httpx.get(api_url(url) + "/models", headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
                             timeout=30.0)
        response.raise_for_status()
    except httpx.HTTPError as e:
        raise ConfigError(f"cannot list the models of {mask_urls(url)}: {mask_urls(str(e))}") from None
    return response.json().get("data", [])


def length_check_tokenizer(source: str | None):
    """The judge's tokenizer for the length check, read from its files without transformers' model
    stack (so this process never imports torch); without one, too-long inputs reach the engine."""
    from judge.backends.tokenizer_files import load_tokenizer_files

    try:
        return load_tokenizer_files(source) if source else None
    except ConfigError as e:
        log.warning("inputs are not length-checked before the engine: %s", e)
        return None


def plan_engine(config: ServeConfig) -> tuple[EngineConfig, list[Judge]]:
    """What vLLM is started with and the judges it then serves. Merged, the one adapter becomes a
    plain model served under the adapter's name, still with the adapter's template."""
    judges = build_judges(served_name(config.base), config.adapters, config.template)
    adapters, base, name = config.adapters, config.base, judges[0].name
    if config.merged:
        judges = [dataclasses.replace(judges[1], parent=None)]
        (name, adapter), = adapters.items()
        base, adapters = str(merged_model(config.base, adapter)), {}
    choice = choose_dtype(config.dtype, vllm_device())  # reads /proc/cpuinfo or nvidia-smi: no torch here
    log.info("vLLM %s", choice)
    return EngineConfig(base, name, adapters, config.tensor_parallel_size, config.max_model_len,
                        config.gpu_memory_utilization, config.vllm_args, dtype=choice.dtype), judges


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def serve(config: ServeConfig) -> None:
    import uvicorn

    from serve.app import create_app
    from serve.reward import RewardSettings

    if config.host not in LOOPBACK and not config.api_key:
        log.warning("binding %s without --api-key: anyone who can reach this port can use the judge", config.host)
    # uvicorn installs its own handlers while it runs; until then SIGTERM must still stop the engine.
    signal.signal(signal.SIGTERM, _raise_exit)
    with ExitStack() as stack:
        if config.upstream:
            url, key, alive, source = config.upstream, config.upstream_api_key, None, config.base
            models = discover(url, key)
            judges = (build_judges(config.base, config.adapters, config.template) if config.base
                      else [Judge(m["id"], default_templates(config.template)) for m in models])
        else:
            engine_config, judges = plan_engine(config)
            engine = stack.enter_context(EngineProcess(engine_config, log_path=config.engine_log,
                                                       startup_timeout=config.startup_timeout))
            log.info("vLLM is up on %s (log: %s)", engine.url, engine.log_path)
            url, key, alive, source = engine.url, engine.api_key, engine.alive, engine_config.base
            models = discover(url, key)
        context = config.max_model_len or next((m["max_model_len"] for m in models if m.get("max_model_len")), None)
        limits = Limits(config.timeout, config.max_batch, config.max_tokens, context,
                        max_body=int(config.max_body_mb * 2**20), max_in_flight=config.max_in_flight,
                        body_timeout=config.body_timeout)
        engine_exited = []

        def stop_serving() -> None:
            engine_exited.append(True)
            server.should_exit = True  # uvicorn stops listening, lets in-flight requests end (503), returns

        app = create_app(Upstream(url, key, timeout=config.timeout, alive=alive), judges, api_key=config.api_key,
                         tokenizer=length_check_tokenizer(source) if context else None, limits=limits, host=config.host,
                         on_engine_exit=stop_serving,
                         reward=RewardSettings(config.reward_mode, config.reward_kind, config.reward_judge,
                                               config.reward_template, config.reward_unparsed))
        server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, timeout_graceful_shutdown=30,
                                               log_level=os.environ.get("JUDGEFORGE_LOG_LEVEL", "info")))
        mask_log_handlers("uvicorn", "uvicorn.access")  # uvicorn's own handlers, made by its Config
        server.run()
        if engine_exited:
            raise EngineExited(f"the vLLM engine exited while serving (code {engine.process.returncode})"
                               f"{engine.failure_report(20)}")


def merged_model(base: str, adapter: str) -> Path:
    """The adapter merged into the base (`judge.backends.models.merge`, in the base's own dtype), made
    once and cached under $JUDGEFORGE_CACHE (default ~/.cache/judgeforge), keyed by the base and the
    weights. The merge runs in a child process: torch is loaded there and freed with it, never in the
    judge API; merge writes its folder whole or not at all, so an interrupted one is redone, never half-used."""
    from judge.backends.models import MERGE_DTYPES, merge_in_child_process
    from judge.core.manifest import file_sha256

    weights = next(Path(adapter).glob("adapter_model.*"), None)
    if weights is None:
        raise ConfigError(f"{adapter} holds no adapter_model.safetensors/.bin to merge")
    key = hashlib.sha256(f"{Path(base).resolve() if Path(base).exists() else base}\n{file_sha256(weights)}".encode())
    out = Path(os.environ.get("JUDGEFORGE_CACHE", Path.home() / ".cache" / "judgeforge")) / "merged" / \
        f"{Path(adapter).name}-{key.hexdigest()[:12]}"
    if (out / "config.json").exists():
        return out
    dtype = saved_dtype(base)
    log.info("merging %s into %s -> %s", adapter, base, out)
    return merge_in_child_process(base, adapter, str(out), dtype=dtype if dtype in MERGE_DTYPES else "float32")


def saved_dtype(base: str) -> str | None:
    """The dtype the base's checkpoint was saved in, from its config.json ("dtype"; "torch_dtype"
    before transformers 5)."""
    if Path(base).is_dir():
        path = Path(base) / "config.json"
    else:
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(base, "config.json"))
        except Exception as e:  # huggingface_hub raises several kinds (offline, not found, network)
            raise ConfigError(f"cannot read the config of {base}: {e}") from None
    config = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return config.get("dtype") or config.get("torch_dtype")

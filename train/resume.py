"""Resume only the run that was started. OUTPUT_DIR/run.json records what a run trains: its config
(less the fields that do not change the result) and the content hashes of its data. A rerun resumes
from the last complete checkpoint only when both match, and otherwise says what changed (`--fresh`
starts over). A checkpoint that a crash left half-written is skipped and removed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from judge.core.errors import ConfigError
from judge.core.jsonl import write_json
from judge.core.manifest import file_sha256

from train.config import TrainConfig

RUN_FILE = "run.json"
# A rerun may change these without changing what is trained: where the run lives, how it reports,
# how many checkpoints it keeps, the data's paths (their contents are hashed).
RESUME_IRRELEVANT = frozenset({
    "output_dir", "train_file", "val_file", "logging_strategy", "logging_steps", "logging_first_step",
    "log_on_each_node", "log_level", "log_level_replica", "disable_tqdm", "report_to", "run_name", "project",
    "trackio_space_id", "trackio_bucket_id", "trackio_static_space_id", "push_to_hub", "hub_token",
    "hub_private_repo", "hub_model_id", "hub_strategy", "hub_always_push", "hub_revision", "save_total_limit",
    "dataloader_num_workers", "dataloader_persistent_workers", "dataloader_prefetch_factor", "dataloader_pin_memory",
    "skip_memory_metrics", "ddp_timeout", "resume_from_checkpoint", "local_rank",
})
# What run.json's files are (cleared by --fresh besides the checkpoints).
RUN_OUTPUTS = ("train_log.jsonl", "train_log.png", RUN_FILE)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def run_signature(config: TrainConfig) -> dict:
    """What the run trains: settings, process count, and the data files' sha256."""
    settings = {k: v for k, v in config.to_dict().items() if k not in RESUME_IRRELEVANT}
    return json.loads(json.dumps({
        "config": settings, "processes": config.world_size,
        "data": {"train_file": file_sha256(config.train_file),
                 "val_file": file_sha256(config.val_file) if config.val_file else None},
    }, default=str))


def changes(saved: dict, current: dict) -> list[str]:
    """What differs between two signatures, in words ("learning_rate 0.001 -> 0.0002")."""
    said = []
    for key in sorted(set(saved.get("config", {})) | set(current["config"])):
        before, after = saved.get("config", {}).get(key, "(unset)"), current["config"].get(key, "(unset)")
        if before != after:
            said.append(f"{key} {before} -> {after}")
    if saved.get("processes") != current["processes"]:
        said.append(f"processes {saved.get('processes')} -> {current['processes']}")
    for name, digest in current["data"].items():
        before = saved.get("data", {}).get(name)
        if before != digest:
            said.append(f"{name} content (sha256 {str(before)[:12]} -> {str(digest)[:12]})")
    return said


def checkpoint_problem(path: Path) -> str | None:
    """Why checkpoint-N is not complete (None when it is). The Trainer writes trainer_state.json
    after the weights, optimizer and RNG state; the adapter weights are checked to be whole."""
    step = int(_CHECKPOINT.match(path.name).group(1))
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no trainer_state.json"
    except (OSError, ValueError):
        return "trainer_state.json is torn"
    if not isinstance(state, dict) or state.get("global_step") != step:
        return f"trainer_state.json is not for step {step}"
    weights = path / "adapter_model.safetensors"
    if weights.exists():
        from safetensors import safe_open

        try:
            with safe_open(str(weights), framework="pt") as handle:
                handle.keys()
        except Exception as e:  # safetensors raises its own error types for a torn file
            return f"adapter_model.safetensors is unreadable ({e})"
    elif not (path / "adapter_model.bin").exists() and not any(path.glob("pytorch_model_fsdp*")):
        return "no adapter weights"
    return None


def find_checkpoints(output_dir: Path) -> tuple[Path | None, dict[Path, str]]:
    """(the last complete checkpoint, {incomplete checkpoint: why})."""
    if not output_dir.is_dir():
        return None, {}
    found = sorted((p for p in output_dir.iterdir() if _CHECKPOINT.match(p.name) and p.is_dir()),
                   key=lambda p: int(_CHECKPOINT.match(p.name).group(1)))
    broken = {p: why for p in found if (why := checkpoint_problem(p))}
    complete = [p for p in found if p not in broken]
    return (complete[-1] if complete else None), broken


def prepare_resume(config: TrainConfig, *, fresh: bool, main: bool) -> tuple[str | None, dict[str, str]]:
    """The checkpoint to resume from (None: start), and the incomplete checkpoints skipped. Refuses
    (ConfigError) to resume checkpoints made with another config or other data. Only the `main`
    process removes files (--fresh, incomplete checkpoints) and writes run.json."""
    out = Path(config.output_dir)
    current = run_signature(config)
    if fresh:
        if main:
            for path in out.glob("checkpoint-*"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            for name in RUN_OUTPUTS:
                (out / name).unlink(missing_ok=True)
        resume, broken = None, {}
    else:
        resume, broken = find_checkpoints(out)
    if resume is not None:
        try:
            saved = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            raise ConfigError(f"{out} holds checkpoints but no readable {RUN_FILE} saying which config and data made "
                              f"them; pass --fresh to start over (deletes its checkpoints)") from None
        said = changes(saved, current)
        if said:
            raise ConfigError(f"{out} holds a run with another config or data ({'; '.join(said)}): rerun with the "
                              f"same ones to resume it, pass --fresh to start over (deletes its checkpoints), or "
                              f"choose another output_dir")
    if main:
        for path, why in broken.items():
            print(f"skipping {path.name}: incomplete ({why}), removed")
            shutil.rmtree(path)
        if resume is None:
            write_json(out / RUN_FILE, current)
    return (str(resume) if resume else None), {p.name: why for p, why in broken.items()}

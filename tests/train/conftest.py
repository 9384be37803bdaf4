import pytest


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """A small synthetic pairwise set (train/val TrainRows, test items with gold)."""
    from train.synthetic import write_synthetic

    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic(out, n_train=12, n_val=4, n_test=4)
    return out


@pytest.fixture(scope="session")
def overrides_for(tiny_llama_path, synthetic_data):
    """overrides_for(output_dir): --set overrides for a seconds-long run of the tiny Llama on the synthetic rows."""
    return lambda out: _overrides(tiny_llama_path, synthetic_data, out)


def _overrides(model, data, out) -> list[str]:
    return [f"base_model={model}", "template=pandalm@1", f"train_file={data / 'train.jsonl'}",
            f"val_file={data / 'val.jsonl'}", f"output_dir={out}", "max_steps=4", "eval_steps=2", "save_steps=2",
            "logging_steps=1", "per_device_train_batch_size=4", "learning_rate=1e-3", "lora.r=4", "lora.alpha=8",
            "disable_tqdm=true", "max_length=512"]


@pytest.fixture
def tiny_overrides(overrides_for, tmp_path):
    return overrides_for(tmp_path / "run")

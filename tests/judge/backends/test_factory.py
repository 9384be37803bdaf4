"""make_backend: the backend a score run names, and the judge's name in its verdicts."""

import pytest

from judge.backends.factory import make_backend
from judge.core.errors import ConfigError
from judge.scoring.score import ScoreConfig


def config(**kwargs) -> ScoreConfig:
    return ScoreConfig(**{"input": "i.jsonl", "out": "o.jsonl", "backend": "openai", "model": "models/base-7b",
                          "base_url": "http://127.0.0.1:9/v1", **kwargs})


@pytest.mark.parametrize("kwargs,name,served", [
    ({}, "base-7b", "models/base-7b"),
    ({"adapter": "runs/x/my-judge"}, "my-judge", "my-judge"),  # a served adapter is asked for by its name
    ({"adapter": "runs/x/my-judge", "name": "judge-v2"}, "judge-v2", "my-judge"),
])
def test_the_judge_is_named_by_name_else_adapter_else_model(kwargs, name, served):
    backend = make_backend(config(**kwargs))
    assert (backend.name, backend.model) == (name, served)


def test_dtype_given_twice_differently_is_refused_before_loading():
    with pytest.raises(ConfigError, match="--dtype float32 and --engine-arg dtype=bfloat16 disagree"):
        make_backend(config(backend="hf", dtype="float32", extra={"dtype": "bfloat16"}))

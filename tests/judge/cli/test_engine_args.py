"""`--engine-arg` (judge.cli.engine_args): one flag and both spellings in score and serve."""

import pytest

from judge.cli.engine_args import engine_flags, engine_kwargs
from judge.core.errors import ConfigError


def test_both_spellings_give_score_the_same_keywords():
    pairs = engine_kwargs(["max_num_seqs=64", "enforce_eager=true", "enable_prefix_caching=false",
                           "compilation_config={level: 0}"])
    flags = engine_kwargs(["--max-num-seqs=64", "--enforce-eager", "--no-enable-prefix-caching",
                           "--compilation-config '{\"level\": 0}'"])
    assert pairs == flags == {"max_num_seqs": 64, "enforce_eager": True, "enable_prefix_caching": False,
                              "compilation_config": {"level": 0}}


def test_serve_gets_vllm_flags_from_pairs_and_its_own_flags_as_written():
    assert engine_flags(["max_num_seqs=64", "enforce_eager=true", "enable_prefix_caching=false",
                         "compilation_config={level: 0}", "-O0", "--max-loras 2"]) == [
        "--max-num-seqs", "64", "--enforce-eager", "--no-enable-prefix-caching",
        "--compilation-config", '{"level": 0}', "-O0", "--max-loras", "2"]


@pytest.mark.parametrize("value,message", [("max_num_seqs", "KEY=VALUE"), ("=3", "KEY=VALUE"), ("max_num_seqs=", "KEY=VALUE"),
                                           ("-O0", "no keyword spelling")])
def test_what_cannot_be_read_is_refused_with_the_value(value, message):
    with pytest.raises(ConfigError, match=message):
        engine_kwargs([value])

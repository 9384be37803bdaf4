"""Flags generated from the config dataclasses (judge.cli.options) and `--config FILE.yaml`: the
documented flags of every converted verb, help on each, defaults from the dataclass alone,
dataclass defaults < YAML < flags, and bad YAML refused with exit 2 naming the file and the key."""

import dataclasses
import json

import pytest

from judge.cli import build_parser, main
from judge.cli.options import config_from
from judge.testing.fake_openai import FakeOpenAI

# verb -> its flags (the CLI contract: DESIGN.md and the verbs' own extensions), --config and -h included
FLAGS = {
    ("score",): {
        "--input", "--out", "--backend", "--model", "--adapter", "--template", "--swap", "--mode", "--max-tokens",
        "--batch-size", "--name", "--base-url", "--api-key", "--concurrency", "--timeout", "--max-retries",
        "--tensor-parallel-size", "--max-model-len", "--limit", "--fresh", "--engine-arg", "--ray-replicas",
        "--ray-address", "--cascade", "--teacher-model", "--teacher-base-url", "--teacher-template",
        "--teacher-concurrency", "--prices"},
}
FLAGS = {verb: flags | {"-h", "--help", "--config"} for verb, flags in FLAGS.items()}


def subparser(verb: tuple[str, ...]):
    parser = build_parser()
    for name in verb:
        parser = parser._subparsers._group_actions[0].choices[name]
    return parser


@pytest.mark.parametrize("verb", list(FLAGS), ids=" ".join)
def test_generated_flags_are_the_documented_ones_each_with_help(verb):
    actions = subparser(verb)._actions
    assert {option for a in actions for option in a.option_strings} == FLAGS[verb]
    assert all(a.help for a in actions), [a.dest for a in actions if not a.help]


SCORE_REQUIRED = ["score", "--input", "i.jsonl", "--backend", "openai", "--model", "m", "--out", "o.jsonl"]


def test_flags_not_given_take_the_dataclass_defaults():
    from judge.score import ScoreConfig

    config = config_from(ScoreConfig, build_parser().parse_args(SCORE_REQUIRED))
    assert config == ScoreConfig(input="i.jsonl", out="o.jsonl", backend="openai", model="m")
    given = config_from(ScoreConfig, build_parser().parse_args([*SCORE_REQUIRED, "--batch-size", "7", "--swap"]))
    assert (given.batch_size, given.swap, given.concurrency) == (7, True, ScoreConfig.concurrency)


def test_help_quotes_the_dataclass_default(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    assert "(default 256)" in " ".join(capsys.readouterr().out.split())


def write_yaml(tmp_path, text: str) -> str:
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_overrides_defaults_and_flags_override_yaml(tmp_path):
    from judge.score import ScoreConfig

    path = write_yaml(tmp_path, "batch_size: 7\nmax_tokens: 64\nmode: verdict\nextra: {dtype: bfloat16}\n")
    args = build_parser().parse_args([*SCORE_REQUIRED, "--config", path, "--batch-size", "9"])
    config = config_from(ScoreConfig, args)
    assert (config.batch_size, config.max_tokens, config.mode, config.extra) == (9, 64, "verdict", {"dtype": "bfloat16"})


def test_required_fields_may_come_from_the_yaml_alone(tmp_path):
    from judge.score import ScoreConfig

    path = write_yaml(tmp_path, "input: i.jsonl\nout: o.jsonl\nbackend: hf\nmodel: m\n")
    config = config_from(ScoreConfig, build_parser().parse_args(["score", "--config", path]))
    assert (config.input, config.out, config.backend, config.model) == ("i.jsonl", "o.jsonl", "hf", "m")


@pytest.mark.parametrize("text,expected", [
    ("max_token: 64\n", "unknown key 'max_token'; did you mean max_tokens, "),
    ("max_token: 64\n", "valid keys: adapter, api_key, backend"),
    ("batch_size: many\n", "batch_size expects int, got 'many'"),
    ("mode: fast\n", "mode must be one of full, verdict, logprob, got 'fast'"),
    ("- a list\n", "expected a mapping of config keys"),
    ("mode: [\n", "malformed YAML"),
])
def test_bad_yaml_exits_2_naming_the_file_and_the_key(tmp_path, capsys, text, expected):
    path = write_yaml(tmp_path, text)
    assert main([*SCORE_REQUIRED, "--config", path]) == 2
    err = capsys.readouterr().err
    assert f"{path}" in err and expected in err, err


def test_a_missing_required_setting_names_the_flag_and_the_yaml_key(tmp_path, capsys):
    assert main(["score", "--input", "i.jsonl", "--backend", "hf", "--model", "m"]) == 2
    assert "missing --out (or `out:` in a --config FILE.yaml)" in capsys.readouterr().err
    path = write_yaml(tmp_path, "backend: hf\n")
    assert main(["score", "--config", path, "--input", "i.jsonl", "--out", "o.jsonl"]) == 2
    assert f"missing --model (or `model:` in {path})" in capsys.readouterr().err


def test_every_config_field_has_help_and_choices_are_kept():
    from judge.cascade import CascadeConfig
    from judge.score import ScoreConfig

    for cls in (ScoreConfig, CascadeConfig):
        assert all(f.metadata.get("help") for f in dataclasses.fields(cls)), cls
    assert subparser(("score",))._option_string_actions["--backend"].choices == ["vllm", "hf", "openai"]


# ---- one --config run per converted verb ------------------------------------------------------
def test_score_runs_from_a_config_file(tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"id": str(i), "question": "q", "answer1": "a", "answer2": "b"}) + "\n"
                             for i in range(3)))
    out = tmp_path / "pred.jsonl"
    with FakeOpenAI() as fake:
        path = write_yaml(tmp_path, f"input: {items}\nout: {out}\nbackend: openai\nmodel: judge\n"
                                    f"base_url: {fake.base_url}\ntemplate: judgelm\nswap: true\n")
        assert main(["score", "--config", path, "--max-retries", "0"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and {r["order"] for r in rows} == {"ab", "ba"}  # swap came from the YAML
    assert f"wrote 6 verdicts to {out}" in capsys.readouterr().out

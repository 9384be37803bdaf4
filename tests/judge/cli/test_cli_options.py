"""Flags generated from the config dataclasses (judge.cli.options) and `--config FILE.yaml`: the
documented flags of every converted verb, help on each, defaults from the dataclass alone,
dataclass defaults < YAML < flags, and bad YAML refused with exit 2 naming the file and the key.

Covers: judge/cli/options.py, judge/cli/serve.py."""

import argparse
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
        "--tensor-parallel-size", "--max-model-len", "--limit", "--fresh", "--engine-arg", "--ray-replicas", "--dtype",
        "--load-in-4bit",
        "--ray-address", "--cascade", "--teacher-model", "--teacher-base-url", "--teacher-template",
        "--teacher-concurrency", "--prices"},
    ("filter",): {"--input", "--out", "--val-fraction", "--max-spread", "--export", "--seed", "--items", "--swap",
                  "--no-swap"},
    ("calibrate",): {"--pred", "--gold", "--gold-format", "--target-agreement", "--risk", "--out", "--no-plots"},
    ("data", "convert"): {"--from", "--input", "--out", "--field", "--label", "--seed"},
    ("data", "pair"): {"--answers", "--out", "--per-question", "--seed"},
    ("data", "export"): {"--to", "--input", "--items", "--format", "--out"},
    ("merge",): {"--model", "--adapter", "--out", "--dtype"},
    ("serve",): {
        "--model", "--adapter", "--merged", "--template", "--upstream", "--upstream-api-key", "--host", "--port",
        "--api-key", "--dtype", "--tensor-parallel-size", "--max-model-len", "--gpu-memory-utilization", "--engine-arg",
        "--timeout", "--max-batch", "--max-tokens", "--max-body-mb", "--max-in-flight", "--body-timeout",
        "--startup-timeout", "--engine-log", "--reward-mode", "--reward-kind", "--reward-judge", "--reward-template",
        "--reward-unparsed"},
}
FLAGS = {verb: flags | {"-h", "--help", "--config"} for verb, flags in FLAGS.items()}
# older spellings, still accepted and hidden from --help: one name per idea across verbs
ALIASES = {("filter",): {"--verdicts": "--input"}, ("calibrate",): {"--no-plot": "--no-plots"},
           ("merge",): {"--base": "--model"}, ("serve",): {"--base": "--model", "--vllm-arg": "--engine-arg"}}


def subparser(verb: tuple[str, ...]):
    parser = build_parser()
    for name in verb:
        parser = parser._subparsers._group_actions[0].choices[name]
    return parser


@pytest.mark.parametrize("verb", list(FLAGS), ids=" ".join)
def test_generated_flags_are_the_documented_ones_each_with_help(verb):
    actions = subparser(verb)._actions
    shown = [a for a in actions if a.help != argparse.SUPPRESS]
    assert {option for a in shown for option in a.option_strings} == FLAGS[verb]
    assert all(a.help for a in actions), [a.dest for a in actions if not a.help]
    hidden = {option: a.dest for a in actions if a.help == argparse.SUPPRESS for option in a.option_strings}
    canonical = {option: a.dest for a in shown for option in a.option_strings}
    assert {old: canonical[new] for old, new in ALIASES.get(verb, {}).items()} == hidden  # same setting, old name


@pytest.mark.parametrize("old,new", [
    (["filter", "--verdicts", "v.jsonl", "--out", "o"], ["filter", "--input", "v.jsonl", "--out", "o"]),
    (["merge", "--base", "m", "--adapter", "a", "--out", "o"], ["merge", "--model", "m", "--adapter", "a", "--out", "o"]),
    (["calibrate", "--pred", "p", "--gold", "g", "--target-agreement", "0.9", "--out", "o", "--no-plot"],
     ["calibrate", "--pred", "p", "--gold", "g", "--target-agreement", "0.9", "--out", "o", "--no-plots"]),
    (["serve", "--base", "m", "--vllm-arg=--enforce-eager", "--vllm-arg", "--max-num-seqs 4"],
     ["serve", "--model", "m", "--engine-arg", "enforce_eager=true", "--engine-arg", "max_num_seqs=4"]),
    (["data", "convert", "IN", "--from", "pandalm", "--out", "o"], ["data", "convert", "--input", "IN", "--from", "pandalm",
                                                                     "--out", "o"]),
], ids=["filter", "merge", "calibrate", "serve", "data convert"])
def test_an_older_spelling_builds_the_same_config(old, new):
    def config(argv):
        args = build_parser().parse_args(argv)
        if argv[0] == "serve":
            from judge.cli.serve import serve_config

            return serve_config(args)
        (cls,) = args.config_fields
        return config_from(cls, args)

    assert config(old) == config(new)


def test_two_spellings_of_one_setting_in_a_yaml_are_refused(tmp_path, capsys):
    path = write_yaml(tmp_path, "base: a\nmodel: b\n")
    assert main(["serve", "--config", path]) == 2
    assert "'base' and 'model' set the same setting (base); keep one" in capsys.readouterr().err


def test_a_yaml_key_may_be_the_flag_s_name(tmp_path):
    """`model:` for serve's field `base` (its flag is --model), `base:` as before, `teacher_model:` for distill's."""
    from judge.cli.serve import serve_config
    from judge.distill.config import TeacherConfig

    for key in ("model", "base"):
        path = write_yaml(tmp_path, f"{key}: m\n")
        assert serve_config(build_parser().parse_args(["serve", "--config", path])).base == "m"
    path = write_yaml(tmp_path, "teacher_model: gpt-4o\n")
    args = build_parser().parse_args(["distill", "--config", path, "--input", "i", "--template", "judgelm", "--out", "o"])
    assert config_from(TeacherConfig, args).model == "gpt-4o"


SCORE_REQUIRED = ["score", "--input", "i.jsonl", "--backend", "openai", "--model", "m", "--out", "o.jsonl"]


def test_flags_not_given_take_the_dataclass_defaults():
    from judge.scoring.score import ScoreConfig

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
    from judge.scoring.score import ScoreConfig

    path = write_yaml(tmp_path, "batch_size: 7\nmax_tokens: 64\nmode: verdict\nextra: {dtype: bfloat16}\n")
    args = build_parser().parse_args([*SCORE_REQUIRED, "--config", path, "--batch-size", "9"])
    config = config_from(ScoreConfig, args)
    assert (config.batch_size, config.max_tokens, config.mode, config.extra) == (9, 64, "verdict", {"dtype": "bfloat16"})


def test_required_fields_may_come_from_the_yaml_alone(tmp_path):
    from judge.scoring.score import ScoreConfig

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


def config_classes():
    from judge.backends.models import MergeConfig
    from judge.cascade.calibrate import CalibrateConfig
    from judge.cascade.cascade import CascadeConfig
    from judge.data.convert import ConvertConfig
    from judge.data.pairing import PairConfig
    from judge.distill.export import ExportConfig
    from judge.distill.filter import FilterConfig
    from judge.scoring.score import ScoreConfig
    from serve.config import ServeConfig

    return [ScoreConfig, CascadeConfig, FilterConfig, CalibrateConfig, ConvertConfig, PairConfig, ExportConfig,
            MergeConfig, ServeConfig]


@pytest.mark.parametrize("cls", config_classes(), ids=lambda cls: cls.__name__)
def test_every_config_field_has_help(cls):
    assert all(f.metadata.get("help") for f in dataclasses.fields(cls)), cls


@pytest.mark.parametrize("verb,flag,default", [
    (("score",), "--backend", None), (("score",), "--mode", "full"), (("filter",), "--export", None),
    (("data", "export"), "--format", "conversational"), (("merge",), "--dtype", "auto"),
    (("calibrate",), "--gold-format", "jsonl"),
])
def test_choices_are_the_fields_and_the_default_is_among_them(verb, flag, default):
    choices = subparser(verb)._option_string_actions[flag].choices
    assert choices and (default is None or default in choices)


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


def test_filter_runs_from_a_config_file(tmp_path, capsys):
    from judge.core.jsonl import write_jsonl
    from judge.core.records import PairItem, Verdict
    from judge.templates import get_template

    judgelm = get_template("judgelm")
    items = [PairItem(id=f"p{i}", question=f"Q{i}", answer1="a", answer2="b") for i in range(4)]
    verdicts = [Verdict(id=item.id, order=order, winner="1", raw=raw, parse_ok=True, judge="t", template=judgelm.key,
                        template_hash=judgelm.text_hash) for item in items for order, raw in (("ab", "8 3\nok"),
                                                                                            ("ba", "3 8\nok"))]
    write_jsonl(tmp_path / "items.jsonl", items)
    write_jsonl(tmp_path / "verdicts.jsonl", verdicts)
    path = write_yaml(tmp_path, f"verdicts: {tmp_path / 'verdicts.jsonl'}\nout: {tmp_path / 'data'}\nval_fraction: 0.5\n"
                                f"seed: 3\nswap: true\n")
    assert main(["filter", "--config", path, "--val-fraction", "0.25"]) == 0
    stats = json.loads((tmp_path / "data" / "filter_stats.json").read_text())
    assert stats["kept_items"] == 4 and stats["questions"] == {"train": 3, "val": 1}  # the flag's 0.25, not 0.5


def test_calibrate_runs_from_a_config_file(tmp_path):
    from judge.core.jsonl import write_jsonl
    from judge.core.records import PairItem, Verdict
    from judge.templates import get_template

    pandalm = get_template("pandalm")
    write_jsonl(tmp_path / "gold.jsonl", [PairItem(id=f"q{i}", question="?", answer1="a", answer2="b", winner="1")
                                          for i in range(40)])
    write_jsonl(tmp_path / "pred.jsonl", [
        Verdict(id=f"q{i}", order=order, winner="1", raw="1", parse_ok=True, judge="local", template=pandalm.key,
                template_hash=pandalm.text_hash, logprobs={"probs": {"1": 0.98, "2": 0.02}})
        for i in range(40) for order in ("ab", "ba")])
    path = write_yaml(tmp_path, f"pred: {tmp_path / 'pred.jsonl'}\ngold: {tmp_path / 'gold.jsonl'}\n"
                                f"target_agreement: 0.9\nrisk: 0.2\nno_plot: true\n")
    assert main(["calibrate", "--config", path, "--out", str(tmp_path / "cascade.json")]) == 0
    cascade = json.loads((tmp_path / "cascade.json").read_text())
    assert (cascade["target_agreement"], cascade["risk"], cascade["met"]) == (0.9, 0.2, True)
    assert not (tmp_path / "cascade.png").exists()


def test_data_verbs_run_from_a_config_file(tmp_path):
    source = tmp_path / "judgelm.jsonl"
    source.write_text("".join(json.dumps({"question_id": i, "question_body": "q", "answer1_body": "a",
                                          "answer2_body": "b", "score": [8, 3]}) + "\n" for i in range(3)))
    convert = write_yaml(tmp_path, f"source_format: judgelm\ninput: {source}\nout: {tmp_path / 'items.jsonl'}\n")
    assert main(["data", "convert", "--config", convert]) == 0
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert len(items) == 3 and {i["winner"] for i in items} == {"1"}
    export = tmp_path / "export.yaml"
    export.write_text(f"to: preference\ninput: {tmp_path / 'items.jsonl'}\nformat: standard\n")
    assert main(["data", "export", "--config", str(export), "--out", str(tmp_path / "pref.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "pref.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(isinstance(r["prompt"], str) for r in rows)  # standard: plain strings
    for name in ("m1", "m2"):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps({"id": "1", "question": "q", "answer": name,
                                                            "model": name}) + "\n")
    pair = tmp_path / "pair.yaml"
    pair.write_text(f"answers: [{tmp_path / 'm1.jsonl'}, {tmp_path / 'm2.jsonl'}]\nout: {tmp_path / 'pairs.jsonl'}\n")
    assert main(["data", "pair", "--config", str(pair)]) == 0
    assert len((tmp_path / "pairs.jsonl").read_text().splitlines()) == 1


def test_merge_runs_from_a_config_file(tiny_llama_path, tmp_path, capsys):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_path),
                          LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    path = write_yaml(tmp_path, f"base: {tiny_llama_path}\nadapter: {tmp_path / 'adapter'}\nout: {tmp_path / 'x'}\n"
                                "dtype: bfloat16\n")
    assert main(["merge", "--config", path, "--out", str(tmp_path / "merged")]) == 0  # the flag's --out
    assert f"merged model: {tmp_path / 'merged'}" in capsys.readouterr().out and not (tmp_path / "x").exists()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert next(merged.parameters()).dtype == torch.bfloat16  # the YAML's dtype


def test_serve_checks_adapters_from_a_config_file_as_it_does_flags(tmp_path, capsys):
    path = write_yaml(tmp_path, f"base: m\nadapters: {{judge: {tmp_path / 'nowhere'}}}\n")
    assert main(["serve", "--config", path]) == 2
    assert "is not a PEFT adapter folder" in capsys.readouterr().err
    path = write_yaml(tmp_path, "base: m\nupstream: http://127.0.0.1:9/v1\nvllm_args: [--enforce-eager]\n")
    assert main(["serve", "--config", path]) == 2
    assert "with --upstream there is none" in capsys.readouterr().err


def test_serve_settings_merge_yaml_and_flags(tmp_path):
    from judge.cli.serve import serve_config

    path = write_yaml(tmp_path, "base: m\nport: 9001\nmax_batch: 8\nvllm_args: [--enforce-eager]\n")
    args = build_parser().parse_args(["serve", "--config", path, "--max-batch", "16", "--vllm-arg", "--max-num-seqs 4"])
    config = serve_config(args)
    assert (config.base, config.port, config.max_batch, config.vllm_args) == ("m", 9001, 16, ["--max-num-seqs", "4"])


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_float_flag_refuses_what_is_not_a_number(value, capsys):
    """`--max-cost nan` would admit every request (`spent > nan` is never true): refused, nothing sent."""
    with pytest.raises(SystemExit) as e:
        main(["distill", "--input", "i.jsonl", "--template", "judgelm", "--teacher-model", "gpt-4o", "--out", "o",
              f"--max-cost={value}", "--dry-run"])
    assert e.value.code == 2 and "--max-cost: invalid finite_float value" in capsys.readouterr().err

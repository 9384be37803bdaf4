"""`judgeforge eval`'s flags, generated from EvalConfig: the same flag names, defaults and meanings
as before (--pred repeated, one file each), settings from `--config FILE.yaml` under the flags,
and a run through the CLI giving the numbers of the API."""

import json

import pytest

from judge.cli import build_parser, main
from judge.cli.options import config_from
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, Verdict
from judge.eval.evaluate import EvalConfig, evaluate

FLAGS = {"-h", "--help", "--config", "--pred", "--gold", "--out", "--pred-format", "--gold-format", "--items",
         "--unparsed", "--threshold", "--bootstrap", "--seed", "--no-plots", "--no-html", "--protocol", "--card",
         "--card-include"}


def parse(*argv) -> EvalConfig:
    return config_from(EvalConfig, build_parser().parse_args(["eval", *argv]))


def test_the_flags_are_eval_s_documented_ones_each_with_help():
    parser = build_parser()._subparsers._group_actions[0].choices["eval"]
    assert {option for a in parser._actions for option in a.option_strings} == FLAGS
    assert all(a.help for a in parser._actions)


def test_defaults_come_from_evalconfig_and_pred_repeats():
    config = parse("--pred", "a.jsonl", "--pred", "b.jsonl", "--gold", "g.jsonl", "--out", "e")
    assert config == EvalConfig(pred=["a.jsonl", "b.jsonl"], gold="g.jsonl", out="e")
    assert (config.pred_format, config.gold_format, config.items, config.unparsed, config.threshold, config.bootstrap,
            config.seed, config.no_plots) == ("jsonl", "jsonl", None, "tie", 0.0, 1000, 0, False)
    given = parse("--pred", "a.jsonl", "--gold", "g.jsonl", "--out", "e", "--unparsed", "wrong", "--threshold", "0.5",
                  "--bootstrap", "0", "--seed", "3", "--no-plots", "--gold-format", "pandalm", "--items", "i.jsonl")
    assert (given.unparsed, given.threshold, given.bootstrap, given.seed, given.no_plots, given.gold_format,
            given.items) == ("wrong", 0.5, 0, 3, True, "pandalm", "i.jsonl")


def test_pred_takes_one_file_per_flag_as_before(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["eval", "--pred", "a.jsonl", "b.jsonl", "--gold", "g.jsonl", "--out", "e"])
    assert e.value.code == 2 and "unrecognized arguments: b.jsonl" in capsys.readouterr().err


def test_settings_from_yaml_under_the_flags(tmp_path, capsys):
    path = tmp_path / "eval.yaml"
    path.write_text("pred: [a.jsonl, b.jsonl]\ngold: g.jsonl\nout: e\nbootstrap: 50\nunparsed: drop\n")
    config = parse("--config", str(path), "--bootstrap", "7")
    assert (config.pred, config.gold, config.bootstrap, config.unparsed) == (["a.jsonl", "b.jsonl"], "g.jsonl", 7, "drop")
    path.write_text("unparsed: never\n")
    assert main(["eval", "--config", str(path), "--pred", "a", "--gold", "g", "--out", "e"]) == 2
    assert "unparsed must be one of tie, drop, wrong, got 'never'" in capsys.readouterr().err


def test_a_missing_gold_names_the_flag(capsys):
    assert main(["eval", "--pred", "a.jsonl", "--out", "e"]) == 2
    assert "missing --gold (or `gold:` in a --config FILE.yaml)" in capsys.readouterr().err


def test_the_cli_writes_the_numbers_of_the_api(tmp_path):
    items = [PairItem(id=str(k), question="q", answer1="a", answer2="bb", winner="12"[k % 2]) for k in range(8)]
    write_jsonl(tmp_path / "gold.jsonl", items)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id=i.id, winner="1", raw="1", parse_ok=True, judge="j") for i in items])
    argv = ["eval", "--pred", str(tmp_path / "pred.jsonl"), "--gold", str(tmp_path / "gold.jsonl"),
            "--out", str(tmp_path / "e"), "--bootstrap", "20", "--seed", "4", "--no-plots"]
    assert main(argv) == 0
    written = json.loads((tmp_path / "e" / "metrics.json").read_text())
    expected = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "gold.jsonl"), None, n_resamples=20, seed=4)
    assert written["accuracy"] == expected["accuracy"] == 0.5 and written["ci95"] == expected["ci95"]
    assert not list((tmp_path / "e").glob("*.png"))

"""The cascade end to end over loopback: a local judge (a small fake of an OpenAI-compatible server
that returns verdict-token logprobs) confident and right on most items and a coin flip on the rest,
and an always-right teacher (judge.testing.fake_openai).

Covers: judge/testing/logprob_judge.py."""

import dataclasses
import json

import pytest

from judge.cascade.calibrate import ESCALATE_ALL, calibrate
from judge.cascade.cascade import CascadeConfig, output_paths, run_cascade
from judge.core.errors import ConfigError
from judge.core.jsonl import read_jsonl
from judge.core.records import Verdict, from_row
from judge.scoring.score import ScoreConfig, score
from judge.testing.cascade_scenario import local_belief, make_items, teacher_reply
from judge.testing.fake_openai import FakeOpenAI
from judge.testing.logprob_judge import LogprobJudge

TEACHER = "teacher-model"


@pytest.fixture(scope="module")
def judges():
    with LogprobJudge(local_belief) as local, FakeOpenAI(reply=teacher_reply, models=(TEACHER,)) as teacher:
        yield local, teacher


def local_config(local, items, out, **overrides) -> ScoreConfig:
    settings = dict(input=str(items), out=str(out), backend="openai", model="local-judge", base_url=local.base_url,
                    template="pandalm", swap=True, mode="logprob", concurrency=8)
    return ScoreConfig(**{**settings, **overrides})


def cascade_config(cascade, teacher, tmp_path) -> CascadeConfig:
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"{TEACHER}: {{input: 10.0, output: 30.0}}\n")
    return CascadeConfig(cascade=str(cascade), teacher_model=TEACHER, teacher_base_url=teacher.base_url,
                         prices=str(prices))


def read_verdicts(path):
    return read_jsonl(path, lambda row: from_row(Verdict, row, extra_to_meta=False))


@pytest.fixture(scope="module")
def calibration(judges, tmp_path_factory):
    """The local judge's logprob predictions on a labelled calibration set of 160 items (40 hard)."""
    local, _ = judges
    folder = tmp_path_factory.mktemp("calibration")
    make_items(folder / "items.jsonl", "c", 160, seed=1)
    score(local_config(local, folder / "items.jsonl", folder / "pred.jsonl"), progress=False)
    return folder


def test_the_cascade_meets_the_target_on_a_fresh_set_escalating_only_the_unsure(judges, calibration, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    local, teacher = judges
    cascade = calibrate(str(calibration / "pred.jsonl"), str(calibration / "items.jsonl"), target=0.97, risk=0.1,
                        out=str(tmp_path / "cascade.json"))
    assert cascade["met"] and 0.5 < cascade["threshold"] < 0.9

    hard = make_items(tmp_path / "test.jsonl", "t", 160, seed=2)  # a fresh test set
    gold = {item["id"]: item["winner"] for item in map(json.loads, open(tmp_path / "test.jsonl"))}
    settings = cascade_config(tmp_path / "cascade.json", teacher, tmp_path)
    before = teacher.stats()["ok"]
    summary = run_cascade(local_config(local, tmp_path / "test.jsonl", tmp_path / "pred.jsonl"), settings,
                          progress=False)

    final = read_verdicts(tmp_path / "pred.jsonl")
    assert [(v.id, v.order) for v in final][:2] == [("t0", "ab"), ("t0", "ba")] and len(final) == 320
    escalated = {v.id for v in final if v.meta["cascade"]["decided_by"] == "teacher"}
    assert escalated <= hard and len(escalated) >= 0.8 * len(hard)  # (close to) only the unsure items
    agreement = sum(v.winner == gold[v.id] for v in final) / len(final)
    assert agreement >= 0.97
    for v in final:  # each decision names the judge that made it
        assert v.judge == (TEACHER if v.id in escalated else "local-judge")
        if v.id in escalated:
            assert v.meta["cascade"]["local"]["judge"] == "local-judge"
    assert teacher.stats()["ok"] - before == 2 * len(escalated)  # the teacher saw nothing else
    assert len(read_verdicts(output_paths(tmp_path / "pred.jsonl")[0])) == 320  # every local verdict kept
    assert summary["escalated_items"] == len(escalated) and summary["share_escalated"] == len(escalated) / 160
    assert summary["teacher_calls"] == 2 * len(escalated)
    assert 0 < summary["teacher_cost_usd"] < summary["all_teacher_cost_usd"]
    manifest = json.loads((tmp_path / "pred.manifest.json").read_text())
    assert manifest["cascade"]["share_escalated"] == summary["share_escalated"]
    assert manifest["counts"]["all_teacher_cost_usd"] == summary["all_teacher_cost_usd"]

    # a rerun judges nothing twice: neither the local judge nor the teacher is asked again
    local_before, teacher_before = local.requests, teacher.stats()["requests"]
    again = run_cascade(local_config(local, tmp_path / "test.jsonl", tmp_path / "pred.jsonl"), settings,
                        progress=False)
    assert (local.requests, teacher.stats()["requests"]) == (local_before, teacher_before)
    assert again["teacher_calls_sent_now"] == 0 and again["local"]["judged_now"] == 0
    assert read_verdicts(tmp_path / "pred.jsonl") == final


def test_an_unreachable_target_escalates_everything(judges, calibration, tmp_path, monkeypatch):
    """0.99 at risk 0.1 needs more than 160 items even with a perfect record (0.1^(1/160) = 0.986)."""
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    local, teacher = judges
    cascade = calibrate(str(calibration / "pred.jsonl"), str(calibration / "items.jsonl"), target=0.99, risk=0.1,
                        out=str(tmp_path / "cascade.json"), plot=False)
    assert not cascade["met"] and cascade["threshold"] == ESCALATE_ALL
    make_items(tmp_path / "test.jsonl", "u", 20, seed=3)
    summary = run_cascade(local_config(local, tmp_path / "test.jsonl", tmp_path / "pred.jsonl"),
                          cascade_config(tmp_path / "cascade.json", teacher, tmp_path), progress=False)
    assert summary["share_escalated"] == 1.0 and summary["teacher_calls"] == 40
    assert summary["teacher_cost_usd"] == pytest.approx(summary["all_teacher_cost_usd"])
    assert all(v.judge == TEACHER for v in read_verdicts(tmp_path / "pred.jsonl"))


@pytest.mark.parametrize("overrides,message", [
    ({"template": "judgelm"}, "calibrated for template pandalm@1"),
    ({"swap": False}, "calibrated with --swap"),
    ({"mode": "verdict"}, "--mode logprob"),
    ({"name": "another-judge"}, "calibrated for judge 'local-judge'"),
])
def test_a_cascade_for_another_judge_or_template_is_refused(judges, calibration, tmp_path, overrides, message):
    local, teacher = judges
    calibrate(str(calibration / "pred.jsonl"), str(calibration / "items.jsonl"), target=0.9, risk=0.1,
              out=str(tmp_path / "cascade.json"), plot=False)
    make_items(tmp_path / "test.jsonl", "r", 6, seed=4)
    teacher_before = teacher.stats()["requests"]
    with pytest.raises(ConfigError, match=message):
        run_cascade(local_config(local, tmp_path / "test.jsonl", tmp_path / "pred.jsonl", **overrides),
                    cascade_config(tmp_path / "cascade.json", teacher, tmp_path), progress=False)
    assert teacher.stats()["requests"] == teacher_before  # refused before any teacher call
    assert not (tmp_path / "pred.jsonl").exists()


def test_a_teacher_template_of_the_other_mode_is_refused_before_any_call(judges, calibration, tmp_path):
    local, teacher = judges
    calibrate(str(calibration / "pred.jsonl"), str(calibration / "items.jsonl"), target=0.9, risk=0.1,
              out=str(tmp_path / "cascade.json"), plot=False)
    make_items(tmp_path / "test.jsonl", "r", 6, seed=4)
    teacher_before = teacher.stats()["requests"]
    settings = cascade_config(tmp_path / "cascade.json", teacher, tmp_path)
    with pytest.raises(ConfigError, match="template prometheus-absolute is pointwise, the local judge's pandalm"):
        run_cascade(local_config(local, tmp_path / "test.jsonl", tmp_path / "pred.jsonl"),
                    dataclasses.replace(settings, teacher_template="prometheus-absolute"), progress=False)
    assert teacher.stats()["requests"] == teacher_before


def test_escalation_goes_through_distills_retrying_cached_client(judges, calibration, tmp_path, monkeypatch):
    """A teacher answering 15% of requests 429 and 10% 500: every escalated call is answered once,
    the retries are counted, and the final file holds a teacher verdict for each."""
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    local, _ = judges
    calibrate(str(calibration / "pred.jsonl"), str(calibration / "items.jsonl"), target=0.99, risk=0.1,
              out=str(tmp_path / "cascade.json"), plot=False)  # escalates everything
    make_items(tmp_path / "test.jsonl", "f", 10, seed=5)
    with FakeOpenAI(reply=teacher_reply, rate_limit_rate=0.15, error_rate=0.10, retry_after=0.01, seed=3) as flaky:
        settings = cascade_config(tmp_path / "cascade.json", flaky, tmp_path)
        summary = run_cascade(local_config(local, tmp_path / "test.jsonl", tmp_path / "pred.jsonl"), settings,
                              progress=False)
        stats = flaky.stats()
    assert stats["rate_limited"] + stats["server_errors"] > 0 and sum(summary["teacher"]["retries"].values()) > 0
    assert stats["distinct_ok"] == 20 and stats["repeated_ok"] == 0 and summary["teacher_calls"] == 20
    final = read_verdicts(tmp_path / "pred.jsonl")
    assert len(final) == 20 and all(v.judge == TEACHER and v.parse_ok for v in final)


def test_the_commands(judges, calibration, tmp_path, monkeypatch, capsys):
    from judge.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "test")
    local, teacher = judges
    assert main(["calibrate", "--pred", str(calibration / "pred.jsonl"), "--gold", str(calibration / "items.jsonl"),
                 "--target-agreement", "0.97", "--risk", "0.1", "--out", str(tmp_path / "cascade.json")]) == 0
    make_items(tmp_path / "test.jsonl", "k", 12, seed=6)
    (tmp_path / "prices.yaml").write_text(f"{TEACHER}: {{input: 10.0, output: 30.0}}\n")
    argv = ["score", "--input", str(tmp_path / "test.jsonl"), "--backend", "openai", "--model", "local-judge",
            "--base-url", local.base_url, "--template", "pandalm", "--swap", "--mode", "logprob",
            "--out", str(tmp_path / "pred.jsonl")]
    cascade = ["--cascade", str(tmp_path / "cascade.json"), "--teacher-model", TEACHER,
               "--teacher-base-url", teacher.base_url, "--prices", str(tmp_path / "prices.yaml")]
    capsys.readouterr()
    assert main(argv + cascade) == 0
    printed = capsys.readouterr().out
    assert f"wrote 24 final verdicts to {tmp_path / 'pred.jsonl'}" in printed and "escalated to teacher-model" in printed
    assert "everything to the teacher (estimated): $" in printed
    assert len(read_verdicts(tmp_path / "pred.jsonl")) == 24
    # a teacher without a cascade, or a cascade without a teacher: refused, exit 2
    assert main(argv + ["--teacher-model", TEACHER, "--fresh"]) == 2
    assert main(argv + ["--cascade", str(tmp_path / "cascade.json")]) == 2
    assert "--cascade and --teacher-model go together" in capsys.readouterr().err


def test_eval_puts_local_cascade_and_teacher_side_by_side(judges, calibration, tmp_path, monkeypatch, capsys):
    from judge.cli import main
    from judge.distill import DistillConfig, TeacherConfig, distill

    monkeypatch.setenv("OPENAI_API_KEY", "test")
    local, teacher = judges
    calibrate(str(calibration / "pred.jsonl"), str(calibration / "items.jsonl"), target=0.97, risk=0.1,
              out=str(tmp_path / "cascade.json"), plot=False)
    make_items(tmp_path / "test.jsonl", "e", 40, seed=7)
    settings = cascade_config(tmp_path / "cascade.json", teacher, tmp_path)
    summary = run_cascade(local_config(local, tmp_path / "test.jsonl", tmp_path / "pred.jsonl"), settings,
                          progress=False)
    alone = distill(DistillConfig(input=str(tmp_path / "test.jsonl"), template="pandalm", out=str(tmp_path / "teacher"),
                                  teacher=TeacherConfig(model=TEACHER, base_url=teacher.base_url),
                                  prices=settings.prices, progress=False))
    preds = [tmp_path / "pred.local.jsonl", tmp_path / "pred.jsonl", tmp_path / "teacher" / "verdicts.jsonl"]
    capsys.readouterr()
    assert main(["eval", *[a for p in preds for a in ("--pred", str(p))], "--gold", str(tmp_path / "test.jsonl"),
                 "--out", str(tmp_path / "eval"), "--bootstrap", "10"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    by_file = {m["predictions"]: m for m in metrics["judges"].values()}
    assert by_file[str(preds[0])]["escalation"] == {"share_escalated": 0.0, "teacher_cost_usd": 0.0}
    assert by_file[str(preds[1])]["escalation"] == {"share_escalated": summary["share_escalated"],
                                                    "teacher_cost_usd": summary["teacher_cost_usd"]}
    assert by_file[str(preds[2])]["escalation"] == {"share_escalated": 1.0, "teacher_cost_usd": alone["cost_usd"]}
    assert 0 < summary["share_escalated"] < 1
    assert by_file[str(preds[1])]["accuracy"] > by_file[str(preds[0])]["accuracy"]
    printed = capsys.readouterr().out
    assert "escalated to the teacher" in printed and f"{summary['share_escalated']:.1%}" in printed


def test_a_cascade_calibrated_on_one_judge_is_refused_for_another_of_the_same_name(judges, tmp_path, monkeypatch,
                                                                                   capsys):
    """Every trained adapter is called `adapter`: a threshold calibrated on one must not be applied to
    another (a sure-and-wrong judge would escalate nothing). The cascade records the judge's
    fingerprint (model, adapter files, backend, template, mode) and refuses any other before a call."""
    from judge.cascade.calibrate import calibrate
    from judge.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "test")
    local, teacher = judges
    right, wrong = tmp_path / "right" / "adapter", tmp_path / "wrong" / "adapter"
    for folder, weights in ((right, "trained on the right labels"), (wrong, "trained on flipped labels")):
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_text(weights)
    make_items(tmp_path / "cal.jsonl", "c", 40, seed=1)
    score(local_config(local, tmp_path / "cal.jsonl", tmp_path / "cal-pred.jsonl", adapter=str(right)), progress=False)
    cascade = calibrate(str(tmp_path / "cal-pred.jsonl"), str(tmp_path / "cal.jsonl"), target=0.9, risk=0.1,
                        out=str(tmp_path / "cascade.json"), plot=False)
    assert cascade["judge"] == "adapter" and cascade["fingerprint"]["backend"] == "openai"
    make_items(tmp_path / "test.jsonl", "w", 6, seed=4)
    (tmp_path / "prices.yaml").write_text(f"{TEACHER}: {{input: 10.0, output: 30.0}}\n")
    argv = ["score", "--input", str(tmp_path / "test.jsonl"), "--backend", "openai", "--model", "local-judge",
            "--base-url", local.base_url, "--template", "pandalm", "--swap", "--mode", "logprob",
            "--out", str(tmp_path / "pred.jsonl"), "--cascade", str(tmp_path / "cascade.json"),
            "--teacher-model", TEACHER, "--teacher-base-url", teacher.base_url, "--prices", str(tmp_path / "prices.yaml")]
    before = local.requests, teacher.stats()["requests"]
    capsys.readouterr()
    assert main([*argv, "--adapter", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "cascade.json was calibrated for another judge (changed: the adapter's files)" in err
    assert "judgeforge calibrate" in err and "--name" not in err and "Traceback" not in err
    assert (local.requests, teacher.stats()["requests"]) == before  # refused before any call
    assert main([*argv, "--adapter", str(right)]) == 0  # the judge it was calibrated on
    # a cascade calibrated on predictions with no record of their judge (no score manifest) is refused too
    (tmp_path / "cal-pred.manifest.json").unlink()
    calibrate(str(tmp_path / "cal-pred.jsonl"), str(tmp_path / "cal.jsonl"), target=0.9, risk=0.1,
              out=str(tmp_path / "cascade.json"), plot=False)
    assert main([*argv, "--adapter", str(right), "--fresh"]) == 2
    assert "no record of the judge it was calibrated on" in capsys.readouterr().err

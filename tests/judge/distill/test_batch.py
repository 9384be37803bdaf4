"""distill --batch against the fake Batch API (judge.testing.fake_openai): the same verdicts as a live
run, error rows retried and counted, expired batches keep their rows, files split under the limits,
batch prices in the stats and the dry run.

Covers: judge/distill/batch_duplicates.py, judge/distill/batch_ledger.py, judge/testing/fake_batches.py."""

import json

import pytest

from judge.cli import main
from judge.core.errors import ConfigError, TeacherError
from judge.distill import distill, estimate
from judge.distill.batch import BatchLedger
from judge.testing.fake_openai import FakeOpenAI

from test_distill import config, items, prefers_good, verdicts  # noqa: F401  (items is a fixture)

CALLS = 12  # 6 pairs in both orders


def batch_config(fake, items, out, **kwargs):
    return config(fake, items, out, batch=True, batch_poll=0.05, **kwargs)


def test_a_batch_run_gives_the_same_verdicts_as_a_live_run_at_half_the_price(items, tmp_path):
    with FakeOpenAI(reply=prefers_good, batch_delay=0.3) as fake:
        live = distill(config(fake, items, tmp_path / "live"))
        batch = distill(batch_config(fake, items, tmp_path / "batch"))
        served = fake.stats()
        rerun = distill(config(fake, items, tmp_path / "batch"))  # a live rerun of the batch folder
        assert fake.stats()["requests"] == served["requests"]  # it found everything cached
    assert (tmp_path / "batch" / "verdicts.jsonl").read_text() == (tmp_path / "live" / "verdicts.jsonl").read_text()
    assert served["ok"] == CALLS and served["batch_ok"] == CALLS and served["batches_created"] == 1
    assert batch["this_run"]["sent"] == 0 and batch["this_run"]["batch"]["submitted"] == CALLS
    assert batch["calls"]["by_batch"] == CALLS and live["calls"]["by_batch"] == 0
    assert batch["cost_usd"] == pytest.approx(live["cost_usd"] / 2, abs=1e-6)
    assert rerun["this_run"]["sent"] == 0 and rerun["cost_usd"] == batch["cost_usd"]
    assert [b["status"] for b in batch["batches"]] == ["completed"]
    manifest = json.loads((tmp_path / "batch" / "manifest.json").read_text())
    assert manifest["counts"]["by_batch"] == CALLS and manifest["batches"] == [batch["batches"][0]["batch_id"]]


def test_error_rows_are_retried_live_and_counted(items, tmp_path):
    with FakeOpenAI(reply=prefers_good, batch_error_rate=0.4, seed=3) as fake:
        stats = distill(batch_config(fake, items, tmp_path / "run"))
        served = fake.stats()
    failed = served["batch_errors"]
    assert 0 < failed < CALLS  # the seed makes some rows fail, not all
    report = stats["this_run"]["batch"]
    assert report["error_rows"] == {"http_500": failed} and report["retried_live"] == failed
    assert stats["this_run"]["sent"] == failed == served["ok"] and report["unresolved"] == 0
    assert stats["verdicts"] == CALLS and stats["calls"]["by_batch"] == CALLS - failed
    assert served["repeated_ok"] == 0


def test_error_rows_can_go_to_one_follow_up_batch(items, tmp_path):
    with FakeOpenAI(reply=prefers_good, batch_error_rate=0.4, seed=3) as fake:
        stats = distill(batch_config(fake, items, tmp_path / "run", batch_retry="batch"))
        served = fake.stats()
    report = stats["this_run"]["batch"]
    first = stats["batches"][0]["error_rows"]
    assert served["ok"] == 0 and served["batches_created"] == report["batches_created"] == 2
    assert report["retried_batch"] == first and sum(report["error_rows"].values()) == served["batch_errors"]
    # what failed twice is counted as unresolved and missing, not dropped: a rerun asks again
    assert report["unresolved"] == stats["calls"]["missing"] == CALLS - served["batch_ok"]
    assert stats["verdicts"] == served["batch_ok"]


def test_an_expired_batch_keeps_its_completed_rows(items, tmp_path):
    with FakeOpenAI(reply=prefers_good, batch_delay=0.2, batch_expire_fraction=0.5) as fake:
        stats = distill(batch_config(fake, items, tmp_path / "run"))
        served = fake.stats()
    report = stats["this_run"]["batch"]
    assert [b["status"] for b in stats["batches"]] == ["expired"]
    assert served["batch_ok"] == CALLS // 2 == stats["calls"]["by_batch"]  # kept from the expired batch
    assert report["error_rows"] == {"batch_expired": CALLS // 2} and report["retried_live"] == served["ok"] == CALLS // 2
    assert stats["verdicts"] == CALLS and served["repeated_ok"] == 0


def test_a_job_over_the_per_file_limit_is_split(items, tmp_path):
    with FakeOpenAI(reply=prefers_good, batch_max_requests=5) as fake:
        stats = distill(batch_config(fake, items, tmp_path / "split", batch_max_requests=5))
        assert [b["requests"] for b in stats["batches"]] == [5, 5, 2]
        assert stats["verdicts"] == CALLS and fake.stats()["batch_ok"] == CALLS
        # the same job in one file is refused by the server's limit: the split above is what made it pass;
        # the refusal stops the run with the provider's reason, and nothing is sent live instead
        with pytest.raises(TeacherError, match="failed validation .*more than the limit of 5"):
            distill(batch_config(fake, items, tmp_path / "one"))
        assert fake.stats()["ok"] == 0
    unsplit = json.loads((tmp_path / "one" / "stats.json").read_text())
    assert [b["status"] for b in unsplit["batches"]] == ["failed"] and unsplit["verdicts"] == 0
    assert unsplit["this_run"]["stopped"].startswith("TeacherError") and unsplit["calls"]["missing"] == CALLS
    by_bytes = estimate(batch_config(fake, items, tmp_path / "bytes", batch_max_bytes=3000))
    assert by_bytes["batch_files"] > 1


def test_a_live_run_refuses_while_batches_are_open(items, tmp_path):
    out = tmp_path / "run"
    with FakeOpenAI(reply=prefers_good) as fake:
        out.mkdir()
        ledger = BatchLedger(out / "cache.sqlite")  # what a killed --batch run leaves: an uploaded file, open
        ledger.add_file("file-elsewhere", "gpt-4o-mini", {"k": {"messages": []}})
        ledger.close()
        with pytest.raises(ConfigError, match="still open: rerun with --batch"):
            distill(config(fake, items, out))
        assert fake.stats()["requests"] == 0


def test_dry_run_shows_live_and_batch_estimates(items, tmp_path, capsys):
    with FakeOpenAI() as fake:
        args = ["distill", "--input", str(items), "--mode", "pairwise", "--template", "judgelm", "--teacher-model",
                "gpt-4o", "--teacher-base-url", fake.base_url, "--out", str(tmp_path / "run"), "--dry-run", "--batch"]
        assert main(args) == 0
        assert fake.stats()["requests"] == 0 and fake.stats()["files_uploaded"] == 0
    text = capsys.readouterr().out
    plan = estimate(batch_config(fake, items, tmp_path / "run", model="gpt-4o"))
    assert plan["batch_cost_usd"] == pytest.approx(plan["cost_usd"] / 2) and plan["batch_files"] == 1
    assert f"estimated cost: ${plan['cost_usd']:.4f}" in text and "(live)" in text
    assert f"estimated batch cost: ${plan['batch_cost_usd']:.4f}" in text and "1 input file(s)" in text


def test_cli_batch_run_prints_what_the_batches_did(items, tmp_path, capsys):
    with FakeOpenAI(reply=prefers_good, batch_error_rate=0.4, seed=3) as fake:
        args = ["distill", "--input", str(items), "--mode", "pairwise", "--template", "judgelm", "--teacher-model",
                "gpt-4o", "--teacher-base-url", fake.base_url, "--out", str(tmp_path / "run"), "--batch",
                "--batch-poll", "0.05", "--no-progress"]
        assert main(args) == 0
        failed = fake.stats()["batch_errors"]
    text = capsys.readouterr().out
    assert f"batch: {CALLS} requests submitted in 1 new batch(es)" in text
    assert f"error rows: http_500 {failed}; retried live {failed}" in text and "unresolved 0" in text
    assert f"{CALLS - failed} of the replies by batch" in text


def test_a_batch_created_but_not_recorded_is_found_instead_of_created_again(items, tmp_path):
    """A kill between batches.create and recording its id: the rerun finds the batch by its input file."""
    import openai

    from judge.backends.openai import request_body
    from judge.distill import make_plan
    from judge.distill.batch import input_lines

    out = tmp_path / "run"
    out.mkdir()
    with FakeOpenAI(reply=prefers_good, batch_delay=0.2) as fake:
        plan = make_plan(batch_config(fake, items, out))
        client = openai.OpenAI(base_url=fake.base_url, api_key="unused")
        uploaded = client.files.create(file=("in.jsonl", b"".join(input_lines(plan, plan.calls))), purpose="batch")
        ledger = BatchLedger(out / "cache.sqlite")
        ledger.add_file(uploaded.id, plan.model, {c.key: request_body(c.request, plan.model) for c in plan.calls})
        ledger.close()
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        stats = distill(batch_config(fake, items, out))
        served = fake.stats()
    assert served["batches_created"] == 1 and served["batch_ok"] == CALLS and served["ok"] == 0
    assert stats["this_run"]["batch"]["reattached"] == 1 and stats["verdicts"] == CALLS


def test_rewrite_turns_go_in_a_second_batch_once_their_first_turns_are_answered(tmp_path):
    from judge.core.jsonl import write_jsonl
    from judge.core.records import SingleItem
    from test_distill import grader

    path = tmp_path / "single.jsonl"
    write_jsonl(path, [SingleItem(id="a", question="2+2?", answer="4", reference="4"),
                       SingleItem(id="b", question="3+3?", answer="6")])
    with FakeOpenAI(reply=grader) as fake:
        stats = distill(batch_config(fake, path, tmp_path / "run", template="prometheus-absolute",
                                     reference_free_rewrite=True))
        served = fake.stats()
    assert [b["requests"] for b in stats["batches"]] == [2, 1] and served["ok"] == 0
    assert stats["rewrites"] == {"due": 1, "answered": 1} and stats["calls"]["by_batch"] == 3
    assert [(v.id, v.meta.get("variant")) for v in verdicts(tmp_path / "run")] == [
        ("a", None), ("a", "reference-free"), ("b", None)]


def test_max_cost_admits_into_a_batch_only_what_fits(items, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("teacher: {input: 2000, output: 2000}\n")  # batch: half, about $0.25 a call worst case
    with FakeOpenAI(reply=prefers_good) as fake:
        from judge.core.errors import BudgetExceeded

        with pytest.raises(BudgetExceeded):
            distill(batch_config(fake, items, tmp_path / "run", model="teacher", prices=str(prices), max_cost=1.2,
                                 max_tokens=64))
        stats = json.loads((tmp_path / "run" / "stats.json").read_text())
        assert 0 < stats["cost_usd"] <= 1.2 and 0 < stats["verdicts"] < CALLS and fake.stats()["ok"] == 0
        done = distill(batch_config(fake, items, tmp_path / "run", model="teacher", prices=str(prices), max_cost=100,
                                    max_tokens=64))
        assert done["verdicts"] == CALLS and fake.stats()["repeated_ok"] == 0


def test_a_create_answered_500_after_creating_is_looked_up_not_created_again(items, tmp_path):
    """The provider creates the batch but its reply is lost (500): the run finds it by its input file
    instead of creating (and paying for) a second one, records it, and counts its spend as this run's."""
    with FakeOpenAI(reply=prefers_good, batch_delay=0.2, batch_create_errors=1) as fake:
        stats = distill(batch_config(fake, items, tmp_path / "run"))
        served = fake.stats()
    assert served["batches_created"] == 1 and served["batch_ok"] == CALLS and served["ok"] == 0
    report = stats["this_run"]["batch"]
    assert report["batches_created"] == 1 and report["found_after_error"] == 1
    assert report["batch_ids"] == ["batch_fake_1"] == [b["batch_id"] for b in stats["batches"]]
    assert stats["batches"][0]["status"] == "completed" and stats["verdicts"] == CALLS
    assert stats["cost_usd"] > 0 and report["cost_usd"] == pytest.approx(stats["cost_usd"])
    assert stats["this_run"]["cost_usd"] == pytest.approx(stats["cost_usd"])  # batch spend is this run's spend


def test_dry_run_does_not_price_again_what_open_batches_cover(items, tmp_path, capsys):
    from judge.backends.openai import request_body
    from judge.distill import make_plan

    out = tmp_path / "run"
    out.mkdir()
    with FakeOpenAI(reply=prefers_good) as fake:
        settings = batch_config(fake, items, out)
        before = estimate(settings)
        plan = make_plan(settings)
        ledger = BatchLedger(out / "cache.sqlite")  # a batch of an earlier run, still running, holds 5 requests
        ledger.add_file("file-open", plan.model, {c.key: request_body(c.request, plan.model) for c in plan.calls[:5]})
        ledger.close()
        after = estimate(settings)
        args = ["distill", "--input", str(items), "--mode", "pairwise", "--template", "judgelm", "--teacher-model",
                "gpt-4o-mini", "--teacher-base-url", fake.base_url, "--out", str(out), "--dry-run", "--batch"]
        assert main(args) == 0
    assert (before["calls_to_send"], before["calls_in_open_batches"]) == (CALLS, 0)
    assert (after["calls_to_send"], after["calls_in_open_batches"]) == (CALLS - 5, 5)
    assert after["batch_cost_usd"] == pytest.approx(before["batch_cost_usd"] * (CALLS - 5) / CALLS, rel=0.05)
    assert "5 requests are already in open batches (collected by the next --batch run, not priced again)" in \
        capsys.readouterr().out


def test_a_second_batch_for_the_same_file_is_cancelled_recorded_and_costed(items, tmp_path):
    """The lost create's batch does not show in batches.list yet when the run looks (a lagging
    listing), so the run creates another: at collection it finds both, cancels the one it does not
    use if still running, and records it in stats.json with its cost. Nothing billed goes unrecorded."""
    with FakeOpenAI(reply=prefers_good, batch_delay=0.5, batch_create_errors=1, batch_list_lag=0.3) as fake:
        stats = distill(batch_config(fake, items, tmp_path / "run"))
        served = fake.stats()
    assert served["batches_created"] == 2 and served["batch_ok"] == 2 * CALLS  # the provider ran (and billed) both
    (row,) = stats["batches"]
    assert row["batch_id"] == "batch_fake_2" and row["status"] == "completed"
    (duplicate,) = row["duplicates"]
    assert duplicate["batch_id"] == "batch_fake_1" and duplicate["status"] == "completed"
    single = duplicate["cost_usd"]
    assert single > 0 and stats["cost_usd"] == pytest.approx(2 * single, abs=1e-6)
    report = stats["this_run"]["batch"]
    assert report["duplicates"] == 1 and report["batch_ids"] == ["batch_fake_2", "batch_fake_1"]
    assert stats["this_run"]["cost_usd"] == pytest.approx(stats["cost_usd"]) and stats["verdicts"] == CALLS

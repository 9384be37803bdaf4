"""`score --ray-replicas` (judge.scoring.ray): the same verdicts, resume and manifest as one process, a dead
replica replaced, a killed driver resumed, and no Ray process left behind. One Ray cluster serves the
in-process tests of this module; the command-line runs start (and must stop) their own.

Covers: judge/scoring/ray.py."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest
import ray

from judge.backends.base import BackendError, FakeBackend
from judge.core.errors import ConfigError
from judge.core.jsonl import AppendLog, read_json, read_jsonl, write_jsonl
from judge.core.records import PairItem, Verdict, from_row
from judge.scoring.ray import start_local_cluster
from judge.scoring.score import ScoreConfig, score
from judge.templates import get_template

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # replicas get this module's fakes by value

TEMPLATE = get_template("judgelm")
PAIRS = [PairItem(id=f"q{i}", question=f"Question number {i}?", answer1=f"answer {i}", answer2="no") for i in range(20)]
WANTED = [(item.id, order) for item in PAIRS for order in ("ab", "ba")]
KEY_OF_PROMPT = {hashlib.sha1(TEMPLATE.render(item, order).text.encode()).hexdigest(): (item.id, order)
                 for item in PAIRS for order in ("ab", "ba")}


def counting_reply(calls_path, *, die_on=None, marker=None, delay=0.0):
    """A judge reply that appends each call's prompt hash to `calls_path` (one line, atomic across
    processes), and kills its replica (os._exit) on the prompt containing `die_on`: once if `marker`
    names a file to create, else every time."""

    def reply(request):
        text = request.prompt.text
        with open(calls_path, "a") as handle:
            handle.write(hashlib.sha1(text.encode()).hexdigest() + "\n")
        if die_on and die_on in text:
            if marker is None:
                os._exit(1)
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                os._exit(1)
            except FileExistsError:
                pass
        time.sleep(delay)
        return "8 6"

    return reply


def calls(path) -> list[tuple[str, str]]:
    return [KEY_OF_PROMPT[line] for line in path.read_text().split()] if path.exists() else []


def config_for(tmp_path, **kwargs) -> ScoreConfig:
    write_jsonl(tmp_path / "items.jsonl", PAIRS)
    return ScoreConfig(**{"input": str(tmp_path / "items.jsonl"), "out": str(tmp_path / "pred.jsonl"), "backend": "hf",
                          "model": "fake", "template": "judgelm", "swap": True, "batch_size": 4, "ray_replicas": 2,
                          **kwargs})


def ray_daemons() -> set[int]:
    """This machine's Ray cluster daemons (every cluster has one raylet and one gcs_server)."""
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in ("raylet", "gcs_server")}


def listening_on(pids: set[int]) -> set[str]:
    """The addresses the processes `pids` listen on."""
    return {c.laddr.ip for pid in pids for c in psutil.Process(pid).net_connections("inet")
            if c.status == psutil.CONN_LISTEN}


def wait_gone(pids: set[int], seconds: float = 30) -> set[int]:
    deadline = time.monotonic() + seconds
    while (alive := {pid for pid in pids if psutil.pid_exists(pid)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.fixture(scope="module")
def ray_cluster():
    folder = tempfile.mkdtemp(prefix="rt-")  # short: Ray's socket paths live in it
    start_local_cluster(2, folder, include_dashboard=False, log_to_driver=False, configure_logging=False)
    assert [node["NodeManagerAddress"] for node in ray.nodes()] == ["127.0.0.1"]
    yield
    ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


def test_ray_flags_are_checked_before_anything_starts(tmp_path):
    with pytest.raises(ConfigError, match="--ray-replicas must be 1 or more"):
        config_for(tmp_path, ray_replicas=0)
    with pytest.raises(ConfigError, match="give --ray-replicas N too"):
        config_for(tmp_path, ray_replicas=None, ray_address="auto")


def test_a_replica_killed_mid_batch_is_replaced_and_the_run_completes(ray_cluster, tmp_path):
    # q7 is the third call of the fourth batch (q6 ab, q6 ba, q7 ab, q7 ba): the replica dies mid-batch, once
    reply = counting_reply(tmp_path / "calls", die_on="number 7?", marker=str(tmp_path / "died"))
    counts = score(config_for(tmp_path), FakeBackend(reply), progress=False)
    assert (tmp_path / "died").exists()
    verdicts = read_jsonl(tmp_path / "pred.jsonl", lambda r: from_row(Verdict, r, extra_to_meta=False))
    assert [(v.id, v.order) for v in verdicts] == WANTED  # item order, each verdict once
    assert all(v.parse_ok and v.winner in ("1", "2") for v in verdicts)
    assert counts["judged_now"] == 40
    done = calls(tmp_path / "calls")
    assert set(done) == set(WANTED) and done.count(("q7", "ab")) == 2  # its batch was judged again, elsewhere
    manifest = read_json(tmp_path / "pred.manifest.json")
    assert manifest["executor"]["executor"] == "ray" and manifest["executor"]["replicas"] == 2
    assert manifest["executor"]["replicas_replaced"] == 1 and manifest["executor"]["cluster_resources"]["CPU"] == 2
    assert manifest["config"]["ray_replicas"] == 2


def test_a_batch_that_kills_every_replica_stops_the_run_keeping_the_rest(ray_cluster, tmp_path):
    reply = counting_reply(tmp_path / "calls", die_on="number 7?")
    with pytest.raises(BackendError, match="killed 3 Ray replicas") as failure:
        score(config_for(tmp_path), FakeBackend(reply), progress=False)
    kept = {(row["id"], row["order"]) for row in AppendLog(tmp_path / "pred.jsonl.partial").rows()}
    assert ("q7", "ab") not in kept and ("q0", "ab") in kept
    assert f"{len(kept)} of 40 verdicts are kept" in str(failure.value)
    assert not (tmp_path / "pred.jsonl").exists()


class DiesOnArrival(FakeBackend):
    """A backend whose replica dies as it receives it (as one that runs out of memory loading a model)."""

    def __setstate__(self, state):
        os._exit(1)


def test_replicas_that_keep_dying_while_loading_stop_the_run(ray_cluster, tmp_path):
    with pytest.raises(BackendError, match="keep dying while loading the backend"):
        score(config_for(tmp_path), DiesOnArrival(), progress=False)


def test_a_replica_that_cannot_build_its_backend_raises_the_backends_own_error(ray_cluster, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        score(config_for(tmp_path, model=str(tmp_path / "no-such-model"), ray_replicas=1), progress=False)


DRIVER = """
import sys, time
from judge.backends.base import FakeBackend
from judge.scoring.score import ScoreConfig, score

def reply(request, calls=sys.argv[2]):  # bound here: in a Ray worker sys.argv holds Ray's own flags
    with open(calls, "a") as handle:
        handle.write(__import__("hashlib").sha1(request.prompt.text.encode()).hexdigest() + "\\n")
    time.sleep(0.2)
    return "8 6"

score(ScoreConfig(input=sys.argv[1] + "/items.jsonl", out=sys.argv[1] + "/pred.jsonl", backend="hf", model="fake",
                  template="judgelm", swap=True, batch_size=4, ray_replicas=2), FakeBackend(reply), progress=False)
"""


def test_killing_the_driver_loses_only_batches_in_flight_and_a_rerun_judges_the_rest(ray_cluster, tmp_path):
    write_jsonl(tmp_path / "items.jsonl", PAIRS)
    (tmp_path / "driver.py").write_text(DRIVER)
    before = ray_daemons()
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path), str(tmp_path / "calls1")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / "pred.jsonl.partial"
    deadline = time.monotonic() + 240
    while driver.poll() is None and time.monotonic() < deadline:
        if partial.exists() and len(partial.read_bytes().split(b"\n")) > 8:  # two batches logged
            break
        time.sleep(0.05)
    assert driver.poll() is None, "the driver finished before it could be killed"
    started = ray_daemons() - before
    assert started and listening_on(started) <= {"127.0.0.1", "::ffff:127.0.0.1"}  # a run's own cluster: loopback only
    # the killed driver cannot remove its cluster's temp folder (its Ray logs): the test does
    folders = {folder for pid in started
               for folder in re.findall(r"(/[^\s=]*?/jf-ray-[^/\s]+)", " ".join(psutil.Process(pid).cmdline()))}
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert started and not wait_gone(started), "the killed driver's Ray cluster outlived it"
    assert folders
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)

    logged = {(row["id"], row["order"]) for row in AppendLog(partial).rows()}
    judged = set(calls(tmp_path / "calls1"))
    assert logged <= judged  # the replicas' calls were counted
    lost = judged - logged
    assert 8 <= len(logged) < 40 and len(lost) <= 2 * 4  # at most one batch per replica was in flight

    counts = score(config_for(tmp_path), FakeBackend(counting_reply(tmp_path / "calls2")), progress=False)
    rerun = calls(tmp_path / "calls2")
    assert sorted(rerun) == sorted(set(WANTED) - logged)  # nothing logged is judged again, nothing is missing
    assert counts["judged_now"] == 40 - len(logged) and counts["resumed"] == len(logged)
    verdicts = read_jsonl(tmp_path / "pred.jsonl", lambda r: from_row(Verdict, r, extra_to_meta=False))
    assert [(v.id, v.order) for v in verdicts] == WANTED


JOINER = """
import sys
from judge.backends.base import FakeBackend
from judge.scoring.score import ScoreConfig, score

score(ScoreConfig(input=sys.argv[1] + "/items.jsonl", out=sys.argv[1] + "/pred.jsonl", backend="hf", model="fake",
                  template="judgelm", swap=True, batch_size=4, ray_replicas=2, ray_address=sys.argv[2]),
      FakeBackend(lambda request: "8 6"), progress=False)
"""


def test_a_run_with_an_address_joins_that_cluster_and_leaves_it_running(ray_cluster, tmp_path):
    write_jsonl(tmp_path / "items.jsonl", PAIRS)
    (tmp_path / "joiner.py").write_text(JOINER)
    address = ray.get_runtime_context().gcs_address
    before = ray_daemons()
    result = subprocess.run([sys.executable, str(tmp_path / "joiner.py"), str(tmp_path), address],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ray_daemons() == before  # no cluster of its own was started, and ours was not stopped
    assert ray.get(ray.put("still up")) == "still up"
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU") == 2  # its replicas are gone, their CPUs free
    executor = read_json(tmp_path / "pred.manifest.json")["executor"]
    assert executor["cluster"] == address and executor["cluster_resources"]["CPU"] == 2
    assert len(read_jsonl(tmp_path / "pred.jsonl", lambda r: r)) == 40


def arithmetic_pairs(n: int) -> list[PairItem]:
    """Pairs where one answer is right: SmolLM2's verdicts then differ from pair to pair."""
    out = []
    for i in range(n):
        a, b = 3 + i, 11 + 2 * i
        right, wrong = f"{a} + {b} = {a + b}.", f"{a} + {b} = {a + b + 1 + i % 3}."
        out.append(PairItem(id=f"m{i}", question=f"What is {a} + {b}?",
                            answer1=right if i % 2 else wrong, answer2=wrong if i % 2 else right))
    return out


@pytest.mark.integration
def test_two_hf_replicas_judge_as_one_process_and_leave_no_ray_process(tmp_path, smollm2_path):
    write_jsonl(tmp_path / "items.jsonl", arithmetic_pairs(40))
    # pandalm: the shortest builtin pairwise prompt (116 tokens here), so 2 cores stay quick (dtype: the auto rule)
    common = {"input": str(tmp_path / "items.jsonl"), "backend": "hf", "model": str(smollm2_path), "swap": True,
              "template": "pandalm", "mode": "verdict", "batch_size": 8}
    score(ScoreConfig(out=str(tmp_path / "one.jsonl"), **common), progress=False)

    before = ray_daemons()
    command = [sys.executable, "-m", "judge.cli", "score", "--input", common["input"], "--backend", "hf",
               "--model", str(smollm2_path), "--template", "pandalm", "--swap", "--mode", "verdict", "--batch-size", "8",
               "--ray-replicas", "2", "--out", str(tmp_path / "ray.jsonl")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote 80 verdicts" in result.stdout
    assert not wait_gone(ray_daemons() - before), "a Ray process outlived the run"

    def verdicts(name):
        rows = read_jsonl(tmp_path / name, lambda r: from_row(Verdict, r, extra_to_meta=False))
        return [(v.id, v.order, v.winner, v.scores, v.raw, v.parse_ok) for v in rows]

    one, on_ray = verdicts("one.jsonl"), verdicts("ray.jsonl")
    assert len(one) == 80 and on_ray == one
    assert len({row[4] for row in one}) > 1  # the replies differ from pair to pair: not a constant compared
    executor = json.loads((tmp_path / "ray.manifest.json").read_text())["executor"]
    assert executor["executor"] == "ray" and executor["replicas"] == 2 and executor["cluster"] == "local"
    assert executor["replica_resources"] == {"num_cpus": max(len(os.sched_getaffinity(0)), 2) // 2, "num_gpus": 0}
    assert read_json(tmp_path / "one.manifest.json")["executor"] == {"executor": "process"}


@pytest.mark.integration
def test_two_vllm_replicas_judge_as_one_process(tmp_path, smollm2_path):
    """vLLM inside Ray actors on the CPU: each replica starts its own engine (~5 GiB with a 1 GiB KV
    cache) and judges its batches; the verdicts are one process's."""
    write_jsonl(tmp_path / "items.jsonl", arithmetic_pairs(4))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": "", "VLLM_CPU_KVCACHE_SPACE": "1"}
    command = [sys.executable, "-m", "judge.cli", "score", "--input", str(tmp_path / "items.jsonl"), "--backend",
               "vllm", "--model", str(smollm2_path), "--template", "pandalm", "--swap", "--mode", "verdict",
               "--batch-size", "4", "--max-model-len", "1024", "--engine-arg", "compilation_config=0"]
    for out, extra in (("one.jsonl", []), ("ray.jsonl", ["--ray-replicas", "2"])):
        result = subprocess.run([*command, "--out", str(tmp_path / out), *extra], capture_output=True, text=True,
                                timeout=900, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "wrote 8 verdicts" in result.stdout

    def verdicts(name):
        rows = read_jsonl(tmp_path / name, lambda r: from_row(Verdict, r, extra_to_meta=False))
        return [(v.id, v.order, v.winner, v.raw, v.parse_ok) for v in rows]

    one = verdicts("one.jsonl")
    assert len(one) == 8 and all(row[4] for row in one) and verdicts("ray.jsonl") == one
    manifest = read_json(tmp_path / "ray.manifest.json")
    assert manifest["executor"]["executor"] == "ray" and manifest["executor"]["replicas"] == 2
    assert manifest["dtype"] == read_json(tmp_path / "one.manifest.json")["dtype"]  # chosen alike on each replica

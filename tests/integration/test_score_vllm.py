"""`score` with the offline vLLM backend on the real SmolLM2 (one engine for the module)."""

import json
import os

import pytest

from judge.backends.encoding import encode_prompt
from judge.core.jsonl import read_jsonl, write_jsonl
from judge.core.records import PairItem, SingleItem, Verdict, from_row
from judge.scoring.score import ScoreConfig, make_backend, score
from judge.templates import get_template

pytestmark = pytest.mark.integration

PAIRS = [PairItem(id=f"p{i}", question=q, answer1=a, answer2=b) for i, (q, a, b) in enumerate([
    ("What is the capital of France?", "Paris.", "Berlin."),
    ("Name a primary colour.", "Red.", "Banana."),
    ("How many legs does a spider have?", "Eight.", "Six."),
    ("Translate 'gracias' to English.", "Thank you.", "Goodbye."),
    ("What is 3 times 4?", "12", "7"),
    ("Spell 'cat' backwards.", "tac", "cta"),
])]


@pytest.fixture(scope="module")
def engine(smollm2_path):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # compilation_config=0: no torch.compile warm-up, which costs a CPU start about a minute and
    # changes nothing these tests check (the demo's offline score does the same); the dtype is the auto rule's
    backend = make_backend(ScoreConfig(input="-", out="-", backend="vllm", model=str(smollm2_path), max_model_len=2048,
                                       extra={"compilation_config": 0}))
    yield backend
    backend.close()


def verdicts(path):
    return read_jsonl(path, lambda r: from_row(Verdict, r, extra_to_meta=False))


@pytest.fixture
def pairs_file(tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    return str(tmp_path / "pairs.jsonl")


def test_verdict_mode_always_parses_both_orders(engine, pairs_file, tmp_path, smollm2_path):
    config = ScoreConfig(input=pairs_file, out=str(tmp_path / "v.jsonl"), backend="vllm", model=str(smollm2_path),
                         template="pandalm", mode="verdict", swap=True)
    counts = score(config, engine, progress=False)
    out = verdicts(tmp_path / "v.jsonl")
    assert len(out) == 12 and counts["parse_failures"] == 0
    assert all(v.winner in ("1", "2", "tie") and v.judge == "SmolLM2-135M-Instruct" for v in out)
    pandalm = {p.id: p for p in PAIRS}  # the engine saw exactly the ids training tokenizes (encode_prompt)
    assert all(v.usage["prompt_tokens"] == len(encode_prompt(engine.tokenizer, get_template("pandalm").render(
        pandalm[v.id], v.order))) for v in out)
    manifest = json.loads((tmp_path / "v.manifest.json").read_text())
    assert manifest["config"]["template"] == "pandalm@1"


def test_logprob_mode_gives_probabilities(engine, pairs_file, tmp_path, smollm2_path):
    config = ScoreConfig(input=pairs_file, out=str(tmp_path / "l.jsonl"), backend="vllm", model=str(smollm2_path),
                         template="judgelm", mode="logprob")
    score(config, engine, progress=False)
    for v in verdicts(tmp_path / "l.jsonl"):
        assert v.parse_ok
        probs = v.logprobs["probs"]
        assert set(probs) == {"1", "2", "tie"} and sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert all(1 <= s <= 10 for s in v.logprobs["expected_scores"])


def test_full_mode_records_raw_text_and_parse_failures(engine, tmp_path, smollm2_path):
    path = tmp_path / "single.jsonl"
    write_jsonl(path, [SingleItem(id="s1", question="What is 2+2?", answer="4", score=5.0),
                       SingleItem(id="s2", question="What is 2+2?", answer="5", score=1.0)])
    config = ScoreConfig(input=str(path), out=str(tmp_path / "f.jsonl"), backend="vllm", model=str(smollm2_path),
                         mode="full", max_tokens=64)
    score(config, engine, progress=False)
    out = verdicts(tmp_path / "f.jsonl")
    assert [v.id for v in out] == ["s1", "s2"] and all(v.raw for v in out)
    assert all(v.parse_ok == (v.error is None) for v in out)  # a failure is recorded with its reason


def test_too_long_prompt_is_a_recorded_failure(engine, tmp_path, smollm2_path):
    path = tmp_path / "long.jsonl"
    write_jsonl(path, [PairItem(id="long", question="Q", answer1="word " * 5000, answer2="b"), PAIRS[0]])
    config = ScoreConfig(input=str(path), out=str(tmp_path / "o.jsonl"), backend="vllm", model=str(smollm2_path),
                         template="pandalm", mode="verdict")
    score(config, engine, progress=False)
    long, ok = verdicts(tmp_path / "o.jsonl")
    assert not long.parse_ok and "context" in long.error
    assert ok.parse_ok

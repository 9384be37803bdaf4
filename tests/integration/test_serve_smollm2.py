"""`judgeforge serve` for real: SmolLM2 under vLLM on CPU with a LoRA adapter, ONE server for the
whole module (started and stopped here), exercised over HTTP with JudgeClient, httpx and openai."""

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from judge.backends.adapters import AdapterInfo, write_adapter_info
from judge.client import JudgeAPIError, JudgeClient
from judge.core.records import PairItem
from judge.templates import get_template
from serve.engine import ChildServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "integration-key"
ADAPTER = "lora-judge"
QA = [
    ("What is the capital of France?", "Paris is the capital of France.", "The capital of France is Berlin."),
    ("How many legs does a spider have?", "Six.", "Spiders have eight legs."),
    ("What is 12 times 12?", "144", "124"),
    ("Name a mammal that can fly.", "The bat.", "The penguin."),
    ("What gas do plants absorb from the air?", "Oxygen.", "Carbon dioxide, which they use for photosynthesis."),
    ("Translate 'merci' into English.", "Thank you.", "Please."),
    ("Who wrote 'Romeo and Juliet'?", "William Shakespeare.", "Charles Dickens wrote it in 1850."),
    ("What is the boiling point of water at sea level in Celsius?", "100 degrees.", "90 degrees."),
    ("Give a synonym for 'happy'.", "Joyful.", "Angry."),
    ("What is the largest planet in the solar system?", "Mars.", "Jupiter is the largest planet."),
    ("Write a haiku about rain.", "Soft rain on the roof / whispers to the sleeping town / puddles hold the sky.", "Rain."),
    ("What is the square root of 81?", "9", "8"),
    ("Which ocean is the largest?", "The Pacific Ocean.", "The Indian Ocean."),
    ("What does CPU stand for?", "Central Processing Unit.", "Computer Power Utility."),
    ("Is the sun a star?", "No, it is a planet.", "Yes, the Sun is a G-type main-sequence star."),
    ("How many continents are there?", "Seven.", "Five."),
    ("What color do you get by mixing blue and yellow?", "Green.", "Purple."),
    ("Summarize: 'The cat sat on the mat and slept all afternoon.'", "A cat napped on a mat.", "Dogs like to run."),
    ("What is the chemical symbol for gold?", "Ag", "Au"),
    ("Name the author of 'Pride and Prejudice'.", "Jane Austen.", "Emily Bronte."),
]
ITEMS = [PairItem(id=f"q{i}", question=q, answer1=a, answer2=b) for i, (q, a, b) in enumerate(QA)]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, smollm2_path) -> Path:
    """A LoRA on SmolLM2 with random non-zero weights (B scaled so that, unlike the base, which says
    "1" to nearly everything, its PandaLM verdicts mix "1" and "Tie"), saved as `train` saves one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32)
    lora = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))
    with torch.no_grad():
        for name, weight in lora.named_parameters():
            if "lora_B" in name:
                weight.mul_(3.0)
    path = tmp_path_factory.mktemp("adapter") / ADAPTER
    lora.save_pretrained(path)
    AutoTokenizer.from_pretrained(smollm2_path).save_pretrained(path)
    pandalm = get_template("pandalm")
    write_adapter_info(path, AdapterInfo(template=pandalm.key, template_hash=pandalm.text_hash, mode=pandalm.mode,
                                         base_model=str(smollm2_path), lora={"r": 8, "alpha": 16}))
    return path


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def server(smollm2_path, adapter, logs):
    """`judgeforge serve` in a subprocess (vLLM with the adapter loaded serves base and adapter)."""
    port = free_port()
    command = [sys.executable, "-m", "judge.cli", "serve", "--model", str(smollm2_path), "--adapter",
               f"{ADAPTER}={adapter}", "--port", str(port), "--api-key", KEY, "--max-model-len", "4096",
               "--max-batch", "32", "--engine-log", str(logs / "engine.log"),
               "--engine-arg", "dtype=float32"]  # float32 in both engines compared below (vLLM, transformers): closest numerics
    # Out of the box: no KV cache size in the environment (the Makefile exports one for the other
    # tests), so judgeforge must choose one that vLLM's CPU memory check accepts.
    env = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": None}
    with ChildServer(command, f"http://127.0.0.1:{port}/health", log_path=logs / "serve.log", startup_timeout=600,
                     env=env, name="judgeforge serve") as child:
        assert "VLLM_CPU_KVCACHE_SPACE" not in child.env
        yield f"http://127.0.0.1:{port}"


def test_started_without_a_kv_cache_size_in_the_environment(server, logs):
    log = (logs / "serve.log").read_text()
    assert "vLLM CPU KV cache:" in log and "GiB free on NUMA node" in log


@pytest.fixture
def judge(server):
    with JudgeClient(server, api_key=KEY) as client:
        yield client


def test_health_and_the_judges(judge):
    assert judge.health()["status"] == "ok"
    models = {m["id"]: m for m in judge.models()}
    assert models["SmolLM2-135M-Instruct"]["templates"]["pairwise"] == "judgelm@1"
    assert models[ADAPTER]["templates"]["pairwise"] == "pandalm@1" and models[ADAPTER]["max_model_len"] == 4096


def test_401_without_the_key(server):
    response = httpx.post(server + "/v1/judge/pairwise", json={"question": "q", "answer1": "a", "answer2": "b"})
    assert response.status_code == 401 and response.json()["error"]["code"] == 401
    assert httpx.post(server + "/v1/chat/completions", json={}).status_code == 401


def test_pairwise_with_swap_returns_both_orders_and_consistency(judge):
    item = ITEMS[0]
    verdict = judge.pairwise(item.question, item.answer1, item.answer2, swap=True, mode="verdict")
    assert [v["order"] for v in verdict["verdicts"]] == ["ab", "ba"]
    assert all(v["parse_ok"] and v["winner"] in ("1", "2", "tie") for v in verdict["verdicts"])
    assert verdict["consistent"] == (verdict["verdicts"][0]["winner"] == verdict["verdicts"][1]["winner"])
    assert verdict["winner"] in ("1", "2", "tie") and verdict["usage"]["prompt_tokens"] > 100


def test_422_for_a_missing_answer2_and_400_for_malformed_json(server):
    headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
    missing = httpx.post(server + "/v1/judge/pairwise", json={"question": "q", "answer1": "a"}, headers=headers)
    assert missing.status_code == 422 and missing.json()["error"]["param"] == "answer2"
    broken = httpx.post(server + "/v1/judge/pairwise", content=b'{"question": "q", "answer1": ', headers=headers)
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]["message"]


def test_413_for_a_60000_word_answer(judge):
    with pytest.raises(JudgeAPIError) as refused:
        judge.pairwise("Summarise this.", "word " * 60_000, "A short answer.")
    assert refused.value.status == 413 and "4096" in refused.value.message


def test_pointwise_score(judge):
    graded = judge.pointwise("What is 12 times 12?", "144", mode="verdict")
    assert graded["parse_ok"] and graded["score"] in (1.0, 2.0, 3.0, 4.0, 5.0)
    expected = judge.pointwise("What is 12 times 12?", "144", mode="logprob")
    assert 1.0 <= expected["score"] <= 5.0 and expected["logprobs"]["expected_score"] == expected["score"]


def test_verdict_mode_parses_20_varied_items(judge):
    items = [{"id": i.id, "question": i.question, "answer1": i.answer1, "answer2": i.answer2, "mode": "verdict"}
             for i in ITEMS]
    results = judge.batch(items)
    assert [r["id"] for r in results] == [i.id for i in ITEMS]
    assert sum(r["parse_ok"] for r in results) == 20
    assert all(r["winner"] in ("1", "2", "tie") for r in results)


def test_32_requests_at_concurrency_16_without_failure(judge):
    # Every one of the 16 client slots sends twice; pandalm, the shortest builtin prompt, since the
    # prompt's length adds time and nothing to what this checks (the default template is judged above).
    def one(k: int) -> dict:
        q, a, b = QA[k % len(QA)]
        return judge.pairwise(f"{q} (request {k})", a, b, mode="verdict", template="pandalm")  # distinct prompts

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(32)))
    assert len(results) == 32 and all(r["parse_ok"] and r["template"] == "pandalm@1" for r in results)


def test_openai_clients_use_the_same_address(server):
    import openai

    client = openai.OpenAI(base_url=server + "/v1", api_key=KEY)
    stream = client.chat.completions.create(model="SmolLM2-135M-Instruct", max_tokens=8, stream=True,
                                            messages=[{"role": "user", "content": "Say hello."}])
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.strip()
    completion = client.completions.create(model="SmolLM2-135M-Instruct", prompt="The capital of France is",
                                           max_tokens=3, temperature=0)
    assert completion.usage.completion_tokens == 3


def test_served_adapter_matches_transformers_peft_offline(judge, smollm2_path, adapter):
    """DESIGN.md's check for a shipped adapter: the same greedy verdicts through the judge API (vLLM
    with the LoRA loaded) as with transformers + peft, on 20 items in verdict mode."""
    from judge.backends.hf import HFBackend
    from judge.scoring.judging import judge_items

    def verdicts(**choice) -> list[dict]:
        return judge.batch([{"question": i.question, "answer1": i.answer1, "answer2": i.answer2, "mode": "verdict",
                             **choice} for i in ITEMS])

    served = verdicts(judge=ADAPTER)
    assert {r["template"] for r in served} == {"pandalm@1"}  # the adapter's own template, from judgeforge.json
    offline = judge_items(ITEMS, get_template("pandalm"), HFBackend(str(smollm2_path), adapter=str(adapter),
                                                                    dtype="float32"), mode="verdict")
    assert [r["winner"] for r in served] == [v.winner for v in offline]
    base = verdicts(template="pandalm")  # the base model, same template
    assert [r["winner"] for r in served] != [r["winner"] for r in base]  # the adapter really changes the judge

"""JudgeReward against a fake OpenAI-compatible grader on 127.0.0.1: grades become exact rewards
(full and logprob mode), chat-message prompts, the reference column, pairwise and group kinds,
no grade -> None, a judge that is down raises; and one real GRPOTrainer step on a tiny model
whose logged reward mean is the fake judge's grades.

Covers: judge/reward/plan.py."""

import asyncio
import logging
import socket

import pytest
from reward_replies import grade_reply, marked, scores_reply

from judge.backends.base import BackendError, FakeBackend
from judge.backends.retry import RetryPolicy
from judge.core.errors import ConfigError
from judge.reward import AsyncJudgeReward, JudgeReward
from judge.testing.fake_openai import FakeOpenAI
from judge.testing.logprob_judge import LogprobJudge

# What the fake grader believes about each answer (the word after "###Response to evaluate:").
GRADES = {"sure5": {"5": 1.0}, "half23": {"2": 0.5, "3": 0.5}, "four": {"4": 0.9, "1": 0.1}}
EXPECTED = {"sure5": 1.0, "half23": 0.375, "four": pytest.approx((4 * 0.9 + 0.1 - 1) / 4)}


def prometheus(user: str, body: dict):
    answer = marked(user, "###Response to evaluate:")
    if answer not in GRADES:
        return [("I cannot grade this.", None)]
    feedback = "" if (body.get("structured_outputs") or {}).get("regex") else "Feedback. "
    return grade_reply(GRADES[answer], feedback)


@pytest.fixture
def grader():
    with LogprobJudge(reply=prometheus) as judge:
        yield judge


def reward(judge, **kwargs) -> JudgeReward:
    return JudgeReward("judge", base_url=judge.base_url, api_key="k", retry=RetryPolicy(max_retries=0), **kwargs)


ANSWERS = ["sure5", "half23", "four"]


def test_logprob_mode_rewards_the_expected_grade(grader):
    rewards = reward(grader)(prompts=["Q1?", "Q2?", "Q3?"], completions=ANSWERS)
    assert rewards == [EXPECTED[a] for a in ANSWERS]
    assert all(b["logprobs"] and b["structured_outputs"] == {"regex": r"\[RESULT\] [1-5]"} for b in grader.bodies)


def test_full_mode_rewards_the_parsed_grade(grader):
    rewards = reward(grader, mode="full")(prompts=["Q1?", "Q2?", "Q3?"], completions=ANSWERS)
    assert rewards == [1.0, 0.25, 0.75]  # grades 5, 2 (the first most likely), 4 -> (k - 1) / 4


def test_conversational_prompts_and_completions(grader):
    prompts = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]]
    completions = [[{"role": "assistant", "content": "sure5"}]]
    assert reward(grader)(prompts=prompts, completions=completions) == [1.0]
    user = grader.bodies[-1]["messages"][-1]["content"]
    assert "System: Be brief.\n\nUser: What is 2+2?" in user and "###Response to evaluate:\nsure5" in user
    assert "'role'" not in user


def test_a_reference_column_selects_the_reference_template(grader):
    judge = reward(grader, reference_key="answer")
    judge(prompts=["Q1?", "Q2?"], completions=["sure5", "four"], answer=["Four.", None])
    users = [b["messages"][-1]["content"] for b in grader.bodies]  # in arrival order: the calls are concurrent
    (with_ref,) = [u for u in users if marked(u, "###Response to evaluate:") == "sure5"]
    (without,) = [u for u in users if marked(u, "###Response to evaluate:") == "four"]
    assert "###Reference Answer (Score 5):\nFour." in with_ref and "Reference Answer" not in without


def test_no_grade_is_none_counted_and_logged(grader, caplog):
    metrics = []
    judge = reward(grader, mode="full")
    with caplog.at_level(logging.WARNING, logger="judgeforge.reward"):
        rewards = judge(prompts=["Q?"] * 3, completions=["sure5", "gibberish", "four"],
                        log_metric=lambda name, value: metrics.append((name, value)))
    assert rewards == [1.0, None, 0.75]
    assert (judge.judged, judge.unparsed) == (3, 1) and metrics == [("judge_pointwise/unparsed", 1.0)]
    assert "no grade for 1 of 3 completions (indices [1]" in caplog.text


def test_a_judge_that_is_down_raises():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    judge = JudgeReward("judge", base_url=url, template="prometheus-absolute",
                        retry=RetryPolicy(max_retries=1, backoff=0.01), timeout=5)
    with pytest.raises(BackendError):
        judge(prompts=["Q?"], completions=["sure5"])
    with pytest.raises(BackendError, match="cannot reach the judge"):  # asking it for its template
        JudgeReward("judge", base_url=url)


def test_a_judge_that_refuses_the_key_raises_instead_of_using_the_default_template():
    """A 401 on GET /v1/models is a wrong key, not "no templates listed": every reward call would
    fail the same way, so the reward function refuses to start and says which key to give."""
    with FakeOpenAI(models=("judge",), api_key="right") as server:
        with pytest.raises(BackendError, match=r"refused the key \(HTTP 401\).*api_key="):
            JudgeReward("judge", base_url=server.base_url, api_key="wrong")
        assert JudgeReward("judge", base_url=server.base_url, api_key="right").template.name  # the default, listed none


@pytest.mark.parametrize("status,default", [(404, True), (500, False), (503, False)])
def test_only_a_server_without_a_model_list_leaves_the_default_template(monkeypatch, status, default):
    """404: the server has no /models (nothing to read); a 5xx is a failing server, whose own template
    might differ from the default: refused rather than guessed."""
    import httpx

    monkeypatch.setattr(httpx, "get", lambda url, **kw: httpx.Response(status, request=httpx.Request("GET", url)))
    if default:
        assert JudgeReward("judge", base_url="http://127.0.0.1:9/v1").template.name == "prometheus-absolute"
    else:
        with pytest.raises(BackendError, match=f"answered HTTP {status} when its template was read"):
            JudgeReward("judge", base_url="http://127.0.0.1:9/v1")


def test_a_page_that_is_no_model_list_is_not_taken_for_no_template(monkeypatch):
    import httpx

    monkeypatch.setattr(httpx, "get", lambda url, **kw: httpx.Response(200, text="<html>login</html>",
                                                                       request=httpx.Request("GET", url)))
    with pytest.raises(BackendError, match="not a model list"):
        JudgeReward("judge", base_url="http://127.0.0.1:9/v1")


def test_the_template_a_judgeforge_server_lists_for_the_judge_is_used():
    with LogprobJudge(reply=prometheus, templates={"pointwise": "rag-relevancy@1", "pairwise": "pandalm@1"}) as fake:
        assert reward(fake).template.key == "rag-relevancy@1"
        assert reward(fake, kind="group").template.key == "pandalm@1"
        assert reward(fake, template="prometheus-absolute").template.key == "prometheus-absolute@1"
    with LogprobJudge(reply=prometheus) as fake:  # a server that lists no templates (vLLM): the defaults
        assert reward(fake).template.key == "prometheus-absolute@1"


def judgelm(user: str, body: dict):
    """JudgeLM score pairs from the answers' names: `rN` scores N; `coin` is 8 or 7 (even odds)."""
    def dist(label):
        word = marked(user, f"[The Start of Assistant {label}'s Answer]")
        return {"8": 0.5, "7": 0.5} if word == "coin" else {word.lstrip("r"): 1.0}
    return scores_reply(dist(1), dist(2))


def test_pairwise_against_the_reference_is_p_win_plus_half_tie():
    with LogprobJudge(reply=judgelm) as fake:
        judge = reward(fake, kind="pairwise")
        # coin vs a reference scoring 7: P(win) 0.5, P(tie) 0.5 -> 0.75; r9 vs r7 wins; r3 loses
        rewards = judge(prompts=["Q?"] * 3, completions=["coin", "r9", "r3"], reference=["r7"] * 3)
        assert rewards == [0.75, 1.0, 0.0]
        assert "[The Start of Assistant 2's Answer]\nr7" in fake.bodies[0]["messages"][-1]["content"]
        with pytest.raises(ConfigError, match="completions 1 have none"):
            judge(prompts=["Q?"] * 2, completions=["r9", "r3"], reference=["r7", ""])


def test_pairwise_swap_averages_both_orders():
    first_always = lambda user, body: scores_reply({"9": 1.0}, {"2": 1.0})  # noqa: E731 (a position-biased judge)
    with LogprobJudge(reply=first_always) as fake:
        assert reward(fake, kind="pairwise", swap=True)(prompts=["Q?"], completions=["x"], reference=["y"]) == [0.5]
        assert len(fake.bodies) == 2


def test_group_rewards_are_win_rates_within_each_prompt():
    with LogprobJudge(reply=judgelm) as fake:
        judge = reward(fake, kind="group", mode="full")
        rewards = judge(prompts=["A?", "A?", "B?", "A?", "B?"], completions=["r9", "r5", "r4", "r1", "r4"])
        assert rewards == [1.0, 0.5, 0.5, 0.0, 0.5]
        assert len(fake.bodies) == 3 + 1  # every pair of a group once: 3 in A, 1 in B
        assert judge(prompts=["A?", "B?"], completions=["r9", "r5"]) == [None, None]  # nobody to compare with


def test_async_variant_is_async_for_trl_and_gives_the_same_rewards(grader):
    from trl.trainer.utils import get_callable_name, is_async_callable

    judge = AsyncJudgeReward("judge", base_url=grader.base_url, retry=RetryPolicy(max_retries=0))
    sync = reward(grader)
    assert is_async_callable(judge) and not is_async_callable(sync)
    assert get_callable_name(judge) == get_callable_name(sync) == "judge_pointwise"
    for _ in range(2):  # a second event loop gets a client of its own
        assert asyncio.run(judge(prompts=["Q"] * 3, completions=ANSWERS)) == [EXPECTED[a] for a in ANSWERS]


def test_an_in_process_backend():
    backend = FakeBackend(lambda request: "Fine. [RESULT] 3")
    judge = AsyncJudgeReward(backend=backend, mode="full", name="local")
    assert JudgeReward(backend=backend, mode="full")(prompts=["Q"], completions=["A"]) == [0.5]
    assert asyncio.run(judge(prompts=["Q"], completions=["A"])) == [0.5] and judge.__name__ == "local"


def test_grpo_trainer_step_logs_the_judges_rewards(tiny_llama_path, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    by_prompt = {"Name a colour.": {"5": 1.0}, "Name a fruit.": {"2": 0.5, "3": 0.5}}  # rewards 1.0 and 0.375

    def grade_by_prompt(user, body):
        question = next(q for q in by_prompt if q in user)
        return grade_reply(by_prompt[question])

    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": q}]} for q in by_prompt])
    config = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, max_steps=1, logging_steps=1,
                        per_device_train_batch_size=4, num_generations=2, max_completion_length=6,
                        report_to=[], save_strategy="no", seed=0, dataloader_num_workers=0)
    with LogprobJudge(reply=grade_by_prompt) as fake:
        judge = AsyncJudgeReward("judge", base_url=fake.base_url, retry=RetryPolicy(max_retries=0))
        trainer = GRPOTrainer(model=str(tiny_llama_path), reward_funcs=[judge], args=config, train_dataset=dataset)
        trainer.train()
        assert len(fake.bodies) == 4  # 2 prompts x 2 generations, each judged once
    logged = next(entry for entry in trainer.state.log_history if "reward" in entry)
    assert logged["rewards/judge_pointwise/mean"] == pytest.approx((1.0 + 1.0 + 0.375 + 0.375) / 4)
    assert logged["reward"] == pytest.approx(0.6875)

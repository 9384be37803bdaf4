"""POST /get_reward against the fake engine: OpenRLHF's exact payload (openrlhf 0.11.2,
utils/agent.py `_fetch_rewards_via_http`: query, prompts, labels) with and without labels, the
pairwise kind, the error cases (lengths, a query that does not start with its prompt, no grade),
auth and size bounds, and the --reward-* flags.

Covers: serve/reward.py."""

import re

import pytest
from fake_engine import KEY, FakeEngine, make_client

from judge.cli import build_parser
from serve.reward import RewardSettings
from serve.service import Limits

AUTH = {"Authorization": f"Bearer {KEY}"}
PROMPTS = ["<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n", "Name a fruit.\n"]


def grader(body: dict) -> str:
    """Grades the answer by its name (`gradeK`); `pairwise`: the candidate scores 9 when it says so.
    Each reply in the format the request's structured output (or the prompt) asks for."""
    user = body["messages"][-1]["content"]
    regex = (body.get("structured_outputs") or {}).get("regex")
    if "[The Start of Assistant 1's Answer]" in user:
        first = re.search(r"Assistant 1's Answer\]\n(\S+)", user).group(1)
        return "9 2" if first == "better" else "2 9\nThe reference is better."
    grade = re.search(r"###Response to evaluate:\n\s*grade(\d)", user)
    if grade is None:
        return "I will not grade that."
    return f"[RESULT] {grade.group(1)}" if regex else f"Fine. [RESULT] {grade.group(1)}"


def client(engine, **kwargs):
    made = make_client(engine, **kwargs)
    made.headers.update(AUTH)
    return made


@pytest.fixture
def engine():
    return FakeEngine(reply=grader)


def payload(completions, labels=None, prompts=PROMPTS):
    """As OpenRLHF builds it: labels always present (None where the dataset has none)."""
    return {"query": [p + c for p, c in zip(prompts, completions)], "prompts": list(prompts),
            "labels": labels if labels is not None else [None] * len(completions)}


def test_openrlhf_payload_without_labels_gets_one_reward_per_query(engine):
    with client(engine) as api:
        answer = api.post("/get_reward", json=payload([" grade5<|im_end|>", "grade1"]))
    assert answer.status_code == 200, answer.text
    # logprob mode on the fake engine: every digit 80% itself, 20% "1": grade 5 -> 4.2, grade 1 -> 1
    near = lambda *values: pytest.approx(list(values), abs=1e-3)  # noqa: E731 (the fake's logprobs are rounded)
    assert answer.json() == {"rewards": near(0.8, 0.0), "scores": near(0.8, 0.0),
                             "extra_logs": {"judge_grade": near(4.2, 1.0), "judge_unparsed": [0.0, 0.0]}}
    users = [b["messages"][-1]["content"] for b in engine.bodies]  # sent concurrently: in any order
    for prompt, completion in zip(PROMPTS, [" grade5<|im_end|>", "grade1"]):
        expected = f"###The instruction to evaluate:\n{prompt}\n\n###Response to evaluate:\n{completion}\n"
        assert sum(expected in u for u in users) == 1
    assert not any("Reference Answer" in u for u in users) and {b["model"] for b in engine.bodies} == {"base"}


def test_labels_are_references(engine):
    with client(engine) as api:
        answer = api.post("/get_reward", json=payload(["grade4", "grade2"], labels=["Blue.", ""]))
        assert answer.status_code == 200, answer.text
        with_label, without = sorted((b["messages"][-1]["content"] for b in engine.bodies), key=lambda u: "grade2" in u)
        assert "###Reference Answer (Score 5):\nBlue." in with_label and "Reference Answer" not in without
        unlabelled = {k: v for k, v in payload(["grade4", "grade2"]).items() if k != "labels"}  # no labels key at all
        assert api.post("/get_reward", json=unlabelled).json()["rewards"] == answer.json()["rewards"]
        assert not any("Reference Answer" in b["messages"][-1]["content"] for b in engine.bodies[2:])


def test_pairwise_kind_compares_with_the_label(engine):
    with client(engine, reward=RewardSettings(kind="pairwise", mode="full")) as api:
        answer = api.post("/get_reward", json=payload(["better", "worse"], labels=["ref one", "ref two"]))
        assert answer.json()["rewards"] == [1.0, 0.0], answer.text
        user = next(b["messages"][-1]["content"] for b in engine.bodies if "better" in b["messages"][-1]["content"])
        assert "Assistant 1's Answer]\nbetter" in user and "Assistant 2's Answer]\nref one" in user
        assert_error(api.post("/get_reward", json=payload(["better", "worse"], labels=["ref", None])), 422, "labels")
        # per request: back to pointwise
        assert api.post("/get_reward", json={**payload(["grade3", "grade3"]), "kind": "pointwise"}).status_code == 200


@pytest.mark.parametrize("body,param", [
    ({"query": ["a b"], "prompts": ["a ", "c "], "labels": [None]}, "prompts"),
    ({"query": ["a b", "c d"], "prompts": ["a ", "c "], "labels": [None]}, "labels"),
    ({"query": ["a b", "c d"], "prompts": ["a ", "x "], "labels": [None, None]}, "query[1]"),
    ({"query": ["a b"], "prompts": ["a "], "label": [None]}, "label"),  # a misspelt field
    ({"query": ["a b"], "prompts": ["a "], "mode": "guess"}, "mode"),
])
def test_bad_payloads_are_422_naming_the_field(engine, body, param):
    with client(engine) as api:
        assert_error(api.post("/get_reward", json=body), 422, param)
    assert engine.bodies == []  # refused before reaching the engine


def test_no_grade_is_an_error_naming_the_items_unless_a_stand_in_is_set(engine):
    with client(engine) as api:
        error = assert_error(api.post("/get_reward", json=payload(["grade4", "no idea"])), 422, "query[1]")
        assert "no grade for query[1]" in error["message"] and "--reward-unparsed" in error["message"]
        given = api.post("/get_reward", json={**payload(["grade4", "no idea"]), "unparsed": -1.0, "mode": "full"})
    assert given.json() == {"rewards": [0.75, -1.0], "scores": [0.75, -1.0],
                            "extra_logs": {"judge_grade": [4.0, -1.0], "judge_unparsed": [0.0, 1.0]}}
    with client(engine, reward=RewardSettings(unparsed=0.0, mode="verdict")) as api:
        assert api.post("/get_reward", json=payload(["grade4", "no idea"])).json()["rewards"] == [0.75, 0.0]


def test_auth_and_size_bounds(engine):
    with make_client(engine) as api:
        assert_error(api.post("/get_reward", json=payload(["grade4", "grade2"])), 401)
        assert_error(api.post("/get_reward", json=payload(["grade4", "grade2"]),
                              headers={"Authorization": "Bearer wrong"}), 401)
    with client(engine, limits=Limits(max_batch=1)) as api:
        assert_error(api.post("/get_reward", json=payload(["grade4", "grade2"])), 413, "query")
    assert engine.bodies == []


def test_reward_flags_reach_the_config():
    from judge.cli.serve import serve_config

    args = build_parser().parse_args(["serve", "--model", "m", "--reward-mode", "full", "--reward-kind", "pairwise",
                                      "--reward-judge", "mine", "--reward-template", "pandalm",
                                      "--reward-unparsed", "0"])
    config = serve_config(args)
    assert (config.reward_mode, config.reward_kind, config.reward_judge, config.reward_template,
            config.reward_unparsed) == ("full", "pairwise", "mine", "pandalm", 0.0)


def assert_error(response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (status, param) and "Traceback" not in response.text
    return error

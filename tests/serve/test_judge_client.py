"""judge.client.JudgeClient against the judge API (in process, in front of the fake engine)."""

import pytest
from fake_engine import KEY, engine, make_client  # noqa: F401 (fixtures)

from judge.client import JudgeAPIError, JudgeClient


@pytest.fixture
def judge(engine):
    with make_client(engine) as http:
        yield JudgeClient("http://testserver/v1", api_key=KEY, http_client=http)


def test_every_judge_route(judge):
    assert judge.health()["status"] == "ok"
    assert [m["id"] for m in judge.models()] == ["base"]
    verdict = judge.pairwise("Which?", "bad", "GOOD", swap=True, mode="verdict", id="p1")
    assert (verdict["id"], verdict["winner"], verdict["consistent"], len(verdict["verdicts"])) == ("p1", "2", True, 2)
    assert judge.pointwise("Is it good?", "GOOD", rubric="Is it correct?")["score"] == 4.0
    results = judge.batch([{"question": "q", "answer1": "GOOD", "answer2": "bad"}, {"question": "q", "answer": "x"}])
    assert [r["kind"] for r in results] == ["pairwise", "pointwise"] and results[0]["winner"] == "1"


def test_errors_carry_status_type_and_field(judge, engine):
    with pytest.raises(JudgeAPIError) as refused:
        judge.pairwise("q", "a", "b", judge="nobody")
    assert (refused.value.status, refused.value.param, refused.value.type) == (404, "judge", "NotFoundError")
    with pytest.raises(JudgeAPIError) as invalid:
        judge.pairwise("q", "a", "b", mode="fast")
    assert (invalid.value.status, invalid.value.param) == (422, "mode")


def test_the_key_comes_from_the_environment(engine, monkeypatch):
    monkeypatch.setenv("JUDGEFORGE_API_KEY", KEY)
    with make_client(engine) as http:
        assert JudgeClient("http://testserver", http_client=http).models()[0]["id"] == "base"
        monkeypatch.delenv("JUDGEFORGE_API_KEY")
        with pytest.raises(JudgeAPIError, match="401"):
            JudgeClient("http://testserver", http_client=http).models()

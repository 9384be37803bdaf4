"""The evaluation during training judges each validation row's own prompt through judge.scoring.judging."""

from judge.backends import FakeBackend
from judge.core.records import PairItem, TrainRow
from judge.templates import get_template
from train import judge_eval
from train.judge_eval import JudgeEval

TEMPLATE = get_template("judgelm")
ITEM = PairItem(id="p", question="Capital of France?", answer1="Paris", answer2="Lyon", winner="1")


def _row(order: str, target: str) -> TrainRow:
    messages = [*TEMPLATE.render(ITEM, order).messages, {"role": "assistant", "content": target}]
    return TrainRow(id="p", mode="pairwise", template=TEMPLATE.key, template_hash=TEMPLATE.text_hash, order=order,
                    messages=messages, winner="1", parse_ok=True)


def test_rows_are_judged_on_their_own_prompts_and_mapped_back(monkeypatch):
    # the judge always prefers the answer it is shown first: right in ab, wrong (and inconsistent) in ba
    fake = FakeBackend(lambda request: "9 2")
    monkeypatch.setattr(judge_eval, "HFBackend", lambda model, tokenizer, **kwargs: fake)
    rows = [_row("ab", "9 2"), _row("ba", "2 9")]
    evaluation = JudgeEval(TEMPLATE, rows, mode="full")
    verdicts = evaluation.verdicts(object(), None)
    assert [r.prompt.messages for r in fake.calls] == [r.messages[:-1] for r in rows]
    assert [(v.order, v.winner, v.scores) for v in verdicts] == [("ab", "1", [9.0, 2.0]), ("ba", "2", [2.0, 9.0])]
    metrics = judge_eval.judge_metrics("pairwise", rows, verdicts)
    assert metrics["accuracy"] == 0.5 and metrics["consistency"] == 0.0 and metrics["parse_failure_rate"] == 0.0

"""Table-driven parser tests: real-looking replies, negatives included. `None` = must not parse."""

import pytest

from judge.templates import get_template

CASES = [
    # ---- judgelm: score pair on the first line ----
    ("judgelm", "8 6\nAssistant 1 gave more detail.", ("1", (8.0, 6.0))),
    ("judgelm", "  7   9  \nThe second answer is correct.", ("2", (7.0, 9.0))),
    ("judgelm", "8, 8\nBoth are fine.", ("tie", (8.0, 8.0))),
    ("judgelm", "8/10 6/10\nreasons", ("1", (8.0, 6.0))),
    ("judgelm", "Assistant 1: 7, Assistant 2: 9", ("2", (7.0, 9.0))),
    ("judgelm", "Assistant 1: 4\nAssistant 2: 10\nThe second is complete.", ("2", (4.0, 10.0))),
    ("judgelm", "Scores: 9 3", ("1", (9.0, 3.0))),
    ("judgelm", "9.5 8.5\nclose call", ("1", (9.5, 8.5))),
    ("judgelm", "８ ６\n全角数字", ("1", (8.0, 6.0))),
    ("judgelm", "8，6\n中文逗号", ("1", (8.0, 6.0))),
    ("judgelm", "10 10", ("tie", (10.0, 10.0))),
    # labelled scores are read by their label, in any order, with any separator (11.4)
    ("judgelm", "Assistant 2: 9, Assistant 1: 6", ("2", (6.0, 9.0))),
    ("judgelm", "Assistant 2: 9\nAssistant 1: 6\nThe second is complete.", ("2", (6.0, 9.0))),
    ("judgelm", "Assistant 2 - 3 | Assistant 1 - 8", ("1", (8.0, 3.0))),
    ("judgelm", "Assistant 2 score: 7/10; Assistant 1 score: 7/10", ("tie", (7.0, 7.0))),
    ("judgelm", "Scores: Assistant 2 = 4 and Assistant 1 = 9\nreasons", ("1", (9.0, 4.0))),
    ("judgelm", "**Assistant 2:** 10\n\n**Assistant 1:** 5", ("2", (5.0, 10.0))),
    ("judgelm", "Here are the scores.\nAssistant 2: 2\nAssistant 1: 8", ("1", (8.0, 2.0))),
    ("judgelm", "Assistant 2：９，Assistant 1：６", ("2", (6.0, 9.0))),
    ("judgelm", "Assistant 2: 9, Assistant 2: 6", None),
    ("judgelm", "Assistant 2: 9\nAssistant 1 did less well.", None),
    ("judgelm", "9 6 (Assistant 2, Assistant 1)", None),
    ("judgelm", "", None),
    ("judgelm", "   \n  ", None),
    ("judgelm", "8", None),
    ("judgelm", "8 6 7\ntoo many", None),
    ("judgelm", "Both answers are good.", None),
    ("judgelm", "11 3\nout of range", None),
    ("judgelm", "0 5\nbelow range", None),
    # ---- pandalm: 1 / 2 / Tie on the first line ----
    ("pandalm", "1\n\n### Reason: Response 1 is accurate.\n\n### Reference: Paris.\n", ("1", None)),
    ("pandalm", "2\n\n### Reason: shorter", ("2", None)),
    ("pandalm", "Tie\n\n### Reason: Both are identical.", ("tie", None)),
    ("pandalm", "tie.", ("tie", None)),
    ("pandalm", "  2  \n### Reason: x", ("2", None)),
    ("pandalm", "### Evaluation: 1\n### Reason: x", ("1", None)),
    ("pandalm", "Response 1 is better.", None),
    ("pandalm", "3\n\n### Reason: ?", None),
    ("pandalm", "", None),
    ("pandalm", "12\n### Reason: two numbers", None),
    # ---- prometheus-absolute: feedback then [RESULT] n ----
    ("prometheus-absolute", "The response is accurate and detailed. [RESULT] 4", (None, (4.0,))),
    ("prometheus-absolute", "Feedback: Covers every step.\n[RESULT] 5", (None, (5.0,))),
    ("prometheus-absolute", "Good. [RESULT]: (3)", (None, (3.0,))),
    ("prometheus-absolute", "Weak answer [RESULT] 2/5", (None, (2.0,))),
    ("prometheus-absolute", "Mediocre. [RESULT] 3 out of 5.", (None, (3.0,))),
    ("prometheus-absolute",
     'The rubric says to output "[RESULT] (an integer number between 1 and 5)". The response is vague. [RESULT] 4',
     (None, (4.0,))),
    ("prometheus-absolute", "Solid work [RESULT]   1  ", (None, (1.0,))),
    ("prometheus-absolute", "结论清楚。[RESULT]：５", (None, (5.0,))),
    # every form that keeps the result marker (11.4)
    ("prometheus-absolute", "Accurate but terse. [RESULT] score of 1", (None, (1.0,))),
    ("prometheus-absolute", "Accurate. [Result] Result: 4", (None, (4.0,))),
    ("prometheus-absolute", "Excellent. [RESULT] (5)", (None, (5.0,))),
    ("prometheus-absolute", "Fine. [RESULT: 3]", (None, (3.0,))),
    ("prometheus-absolute", "Fine. [Result: 2]", (None, (2.0,))),
    ("prometheus-absolute", "Good. [RESULT] 4/5", (None, (4.0,))),
    ("prometheus-absolute", "Good. **[RESULT]** 4", (None, (4.0,))),
    ("prometheus-absolute", "Good. [RESULT] 4/10", None),
    ("prometheus-absolute", "Good. [RESULT] 8/10", None),
    ("prometheus-absolute", "Good work overall.\n4/5", None),
    ("prometheus-absolute", "Score: 4", None),
    ("prometheus-absolute", "Score: 2.5", None),
    ("prometheus-absolute", "[RESULT] 2.5", None),
    ("prometheus-absolute", "[RESULT] 6", None),
    ("prometheus-absolute", "[RESULT] 0", None),
    ("prometheus-absolute", "The response is detailed and accurate. [RESU", None),
    ("prometheus-absolute", "No verdict here.", None),
    ("prometheus-absolute", "", None),
    ("prometheus-absolute", "[RESULT] four", None),
    # ---- prometheus-relative: [RESULT] A|B ----
    ("prometheus-relative", "Response A is grounded. [RESULT] A", ("1", None)),
    ("prometheus-relative", "B explains better.\n[RESULT] B", ("2", None)),
    ("prometheus-relative", "Both decent [RESULT] (B)", ("2", None)),
    ("prometheus-relative", "[RESULT] Response A.", ("1", None)),
    ("prometheus-relative", "A misses the point. [RESULT: B]", ("2", None)),
    ("prometheus-relative", "A misses the point. [Result: B]", ("2", None)),
    ("prometheus-relative", "B is vague. [Result] Result: A", ("1", None)),
    ("prometheus-relative", "Response B is better.", None),
    ("prometheus-relative", "[RESULT: C]", None),
    ("prometheus-relative", "[RESULT] C", None),
    ("prometheus-relative", "[RESULT] A or B", None),
    ("prometheus-relative", "Response A wins.", None),
    # ---- score-100: the integer only ----
    ("score-100", "85", (None, (85.0,))),
    ("score-100", " 100 \n", (None, (100.0,))),
    ("score-100", "0", (None, (0.0,))),
    ("score-100", "Score: 72", (None, (72.0,))),
    ("score-100", "72/100", (None, (72.0,))),
    ("score-100", "90分", (None, (90.0,))),
    ("score-100", "８５。", (None, (85.0,))),
    ("score-100", "**Score:** 64", (None, (64.0,))),
    ("score-100", "101", None),
    ("score-100", "85.5", None),
    ("score-100", "I would give it 85 because it is mostly right.", None),
    ("score-100", "85\nbecause it is mostly right", None),
    ("score-100", "", None),
    # ---- rag templates: 1-5 on the first line ----
    ("rag-faithfulness", "4\nOne claim is not in the context.", (None, (4.0,))),
    ("rag-faithfulness", "Score: 5\nReason: every claim is supported.", (None, (5.0,))),
    ("rag-faithfulness", "5/5\nall supported", (None, (5.0,))),
    ("rag-faithfulness", "Rating: 2", (None, (2.0,))),
    ("rag-faithfulness", "7\nout of range", None),
    ("rag-faithfulness", "3.5\nhalf", None),
    ("rag-relevancy", "1\nOff-topic.", (None, (1.0,))),
    ("rag-relevancy", "Between 3 and 4.", None),
    ("rag-relevancy", "", None),
]


@pytest.mark.parametrize("template,reply,expected", CASES)
def test_parse(template, reply, expected):
    parsed = get_template(template).parse(reply)
    if expected is None:
        assert not parsed.ok, parsed
        assert parsed.error
        assert parsed.winner is None and parsed.scores is None
    else:
        winner, scores = expected
        assert parsed.ok, parsed.error
        assert parsed.winner == winner
        assert parsed.scores == scores


def test_table_is_large_enough():
    assert len(CASES) >= 40
    assert sum(e is None for _, _, e in CASES) >= 15


def test_pandalm_reason_and_reference_are_split():
    parsed = get_template("pandalm").parse("1\n\n### Reason: R1 is right.\n\n### Reference: Paris is the capital.\n")
    assert parsed.reason == "R1 is right."
    assert parsed.reference == "Paris is the capital."


def test_prometheus_reason_is_the_feedback_before_the_last_result():
    parsed = get_template("prometheus-absolute").parse("Feedback: quotes [RESULT] markers. Fine overall. [RESULT] 4")
    assert parsed.reason == "quotes [RESULT] markers. Fine overall."


def test_judgelm_reason_is_the_rest():
    parsed = get_template("judgelm").parse("8 6\nAssistant 1 is more accurate.\nMore text.")
    assert parsed.reason == "Assistant 1 is more accurate.\nMore text."

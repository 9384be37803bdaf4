"""Templates: registry rules, pinned prompts (each published judge's format, character for
character), pinned hashes (a text change needs a version bump), order handling, strict rendering.

Covers: judge/templates/base.py, judge/templates/builtin.py."""

import pytest

from judge.core.errors import ConfigError, TemplateError, TemplateNotFound
from judge.core.records import PairItem, SingleItem
from judge.templates import get_template, list_templates, register

PAIR = PairItem(id="p1", question="What is the capital of France?", answer1="Paris.", answer2="Lyon.")
SINGLE = SingleItem(id="s1", question="What is 2+2?", answer="4", reference="2+2 equals 4.", rubric="[Is it correct?]")

# Pinned hashes: editing a template's text without bumping its version fails here. When you bump
# the version on purpose, update the hash with it.
PINNED = {
    "judgelm": (1, "c9978c6383f9e79e"),
    "pandalm": (1, "5199fd985fed5f2a"),
    "prometheus-absolute": (1, "9ff92351b3b0d6b9"),
    "prometheus-relative": (1, "3c090a16b7a4aa9c"),
    "score-100": (1, "da0325ca3129d97f"),
    "rag-faithfulness": (1, "97143b3aaae762ab"),
    "rag-relevancy": (1, "435ffcc3de11ff88"),
}


def test_builtin_templates_are_registered():
    assert list_templates() == sorted(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_template_text_is_pinned_to_its_version(name):
    template = get_template(name)
    version, text_hash = PINNED[name]
    assert (template.version, template.text_hash) == (version, text_hash), (
        f"{name}: the prompt changed; bump its version and update PINNED"
    )


def test_unknown_template_lists_the_known_ones():
    with pytest.raises(TemplateNotFound) as e:
        get_template("gpt4-judge")
    assert "judgelm" in str(e.value) and "pandalm" in str(e.value)


def test_version_must_match():
    assert get_template("judgelm@1") is get_template("judgelm")
    with pytest.raises(ConfigError, match="judgelm@1"):
        get_template("judgelm@2")


def test_registering_a_name_twice_raises():
    with pytest.raises(ValueError, match="already registered"):
        register(get_template("judgelm"))


# ---- the published prompt formats ----
JUDGELM_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
JUDGELM_PROMPT = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user question "
    "displayed above.\nPlease rate the helpfulness, relevance, accuracy, level of details of their responses. Each "
    "assistant receives an overall score on a scale of 1 to 10, where a higher score indicates better overall "
    "performance.\nPlease first output a single line containing only two values indicating the scores for Assistant 1 "
    "and 2, respectively. The two scores are separated by a space. In the subsequent line, please provide a "
    "comprehensive explanation of your evaluation, avoiding any potential bias and ensuring that the order in which "
    "the responses were presented does not affect your judgment."
)


def test_judgelm_raw_prompt_matches_judgelm_code():
    # judgelm/llm_judge/common.py: conv.system + '\n' + prompt_template.format(...) + conv.appendix
    expected = (
        JUDGELM_SYSTEM + "\n"
        "[Question]\nWhat is the capital of France?\n\n"
        "[The Start of Assistant 1's Answer]\nParis.\n\n[The End of Assistant 1's Answer]\n\n"
        "[The Start of Assistant 2's Answer]\nLyon.\n\n[The End of Assistant 2's Answer]\n\n"
        "[System]\n" + JUDGELM_PROMPT + "\n\n" + "### Response:"
    )
    assert get_template("judgelm").render(PAIR).text == expected


def test_judgelm_with_reference():
    item = PairItem(id="p", question="Q", answer1="A", answer2="B", reference="R")
    user = get_template("judgelm").render(item).messages[-1]["content"]
    assert user.startswith("[Question]\nQ\n\n[Reference Answer]\nR\n\n[The Start of Assistant 1's Answer]\nA\n\n")


def test_pandalm_prompt_matches_pandalm_code():
    # pandalm/utils/pandalm_inference.py: build_pandalm_prompt, with and without input
    item = PairItem(id="p", question="Translate.\nbonjour", answer1=" hello ", answer2="hi",
                    meta={"instruction": "Translate.", "input": "bonjour"})
    assert get_template("pandalm").render(item).text == (
        "Below are two responses for a given task. The task is defined by the Instruction with an Input that provides "
        "further context. Evaluate the responses and generate a reference answer for the task.\n\n"
        "### Instruction:\nTranslate.\n\n### Input:\nbonjour\n\n### Response 1:\nhello\n\n### Response 2:\nhi\n\n"
        "### Evaluation:\n"
    )
    assert get_template("pandalm").render(PAIR).messages == [{"role": "user", "content": (
        "Below are two responses for a given task. The task is defined by the Instruction. Evaluate the responses and "
        "generate a reference answer for the task.\n\n### Instruction:\nWhat is the capital of France?\n\n"
        "### Response 1:\nParis.\n\n### Response 2:\nLyon.\n\n### Evaluation:\n"
    )}]


def test_prometheus_absolute_matches_prometheus_eval():
    # prometheus_eval/prompts.py: ABS_SYSTEM_PROMPT + ABSOLUTE_PROMPT
    messages = get_template("prometheus-absolute").render(SINGLE).messages
    assert messages[0] == {"role": "system", "content": (
        "You are a fair judge assistant tasked with providing clear, objective feedback based on specific criteria, "
        "ensuring each assessment reflects the absolute standards set for performance.")}
    assert messages[1]["content"] == (
        "###Task Description:\nAn instruction (might include an Input inside it), a response to evaluate, a reference "
        "answer that gets a score of 5, and a score rubric representing a evaluation criteria are given.\n"
        "1. Write a detailed feedback that assess the quality of the response strictly based on the given score rubric, "
        "not evaluating in general.\n2. After writing a feedback, write a score that is an integer between 1 and 5. "
        "You should refer to the score rubric.\n3. The output format should look as follows: \"(write a feedback for "
        "criteria) [RESULT] (an integer number between 1 and 5)\"\n4. Please do not generate any other opening, "
        "closing, and explanations.\n\n###The instruction to evaluate:\nWhat is 2+2?\n\n###Response to evaluate:\n4\n\n"
        "###Reference Answer (Score 5):\n2+2 equals 4.\n\n###Score Rubrics:\n[Is it correct?]\n\n###Feedback: "
    )


def test_prometheus_absolute_without_reference():
    item = SingleItem(id="s", question="Q", answer="A", rubric="[R]")
    user = get_template("prometheus-absolute").render(item).messages[-1]["content"]
    assert "a response to evaluate, and a score rubric representing" in user
    assert "Reference Answer" not in user and "None" not in user


def test_prometheus_relative_matches_prometheus_eval():
    item = PairItem(id="p", question="Q", answer1="A1", answer2="A2", reference="R", rubric="[Helpful?]")
    user = get_template("prometheus-relative").render(item).messages[-1]["content"]
    assert user == (
        "###Task Description:\nAn instruction (might include an Input inside it), a response to evaluate, a reference "
        "answer, and a score rubric representing a evaluation criteria are given.\n1. Write a detailed feedback that "
        "assess the quality of two responses strictly based on the given score rubric, not evaluating in general.\n"
        "2. After writing a feedback, choose a better response between Response A and Response B. You should refer to "
        "the score rubric.\n3. The output format should look as follows: \"(write a feedback for criteria) [RESULT] "
        "(A or B)\"\n4. Please do not generate any other opening, closing, and explanations.\n\n###Instruction:\nQ\n\n"
        "###Response A:\nA1\n\n###Response B:\nA2\n\n###Reference Answer:\nR\n\n###Score Rubric:\n[Helpful?]\n\n"
        "###Feedback: "
    )


def test_prometheus_default_rubric_is_helpfulness():
    user = get_template("prometheus-absolute").render(SingleItem(id="s", question="Q", answer="A")).messages[-1]["content"]
    assert "[Does the model provide relevant and useful responses to the user's needs or questions?]" in user
    assert "Score 5: The model consistently offers" in user


# ---- order, strictness, verdict mapping ----
def test_swapped_order_swaps_the_answers():
    ab = get_template("judgelm").render(PAIR, "ab").messages[-1]["content"]
    ba = get_template("judgelm").render(PAIR, "ba").messages[-1]["content"]
    assert ab.index("Paris.") < ab.index("Lyon.")
    assert ba.index("Lyon.") < ba.index("Paris.")


def test_swapped_verdict_maps_back_to_original_answers():
    judgelm = get_template("judgelm")
    v = judgelm.verdict("p1", "ba", "9 3\nthe first shown is better")  # the judge saw Lyon first
    assert v.winner == "2" and v.scores == [3.0, 9.0] and v.parse_ok
    v = get_template("pandalm").verdict("p1", "ba", "1\n\n### Reason: x")
    assert v.winner == "2"
    assert get_template("pandalm").verdict("p1", "ba", "Tie").winner == "tie"
    assert get_template("prometheus-relative").verdict("p1", "ba", "... [RESULT] B").winner == "1"


def test_parse_failure_is_recorded_not_raised():
    v = get_template("judgelm").verdict("p1", "ab", "I cannot decide.")
    assert not v.parse_ok and v.winner is None and v.scores is None
    assert v.raw == "I cannot decide." and v.error
    assert v.template == "judgelm@1" and v.template_hash == get_template("judgelm").text_hash


def test_score_100_requires_a_reference():
    with pytest.raises(TemplateError, match="no reference"):
        get_template("score-100").render(SingleItem(id="s", question="Q", answer="A"))
    text = get_template("score-100").render(SINGLE).messages[-1]["content"]
    assert "[Reference Answer]\n2+2 equals 4." in text and text.endswith("Respond with the integer only.")


def test_rag_faithfulness_requires_context():
    with pytest.raises(TemplateError, match="no context"):
        get_template("rag-faithfulness").render(SingleItem(id="s", question="Q", answer="A"))
    item = SingleItem(id="s", question="Q", answer="A", context=["first passage", "second passage"])
    text = get_template("rag-faithfulness").render(item).messages[-1]["content"]
    assert "[1] first passage\n\n[2] second passage" in text


def test_mode_mismatch_is_an_error():
    with pytest.raises(TemplateError, match="pairwise"):
        get_template("judgelm").render(SINGLE)
    with pytest.raises(TemplateError, match="pointwise"):
        get_template("prometheus-absolute").render(PAIR)


def test_braces_in_answers_are_kept_verbatim():
    item = PairItem(id="p", question="Format {x}?", answer1="{0} {name}", answer2="}{")
    user = get_template("judgelm").render(item).messages[-1]["content"]
    assert "Format {x}?" in user and "{0} {name}" in user and "}{" in user


def test_verdict_regex_outputs_parse():
    import re

    samples = {"judgelm": "7 3", "pandalm": "Tie", "prometheus-absolute": "[RESULT] 2",
               "prometheus-relative": "[RESULT] B", "score-100": "100", "rag-faithfulness": "3", "rag-relevancy": "5"}
    for name, reply in samples.items():
        template = get_template(name)
        assert re.fullmatch(template.verdict_regex, reply), name
        assert template.parse(reply).ok, name


def test_read_logprobs_pairwise_probabilities():
    import math

    pandalm = get_template("pandalm")
    top = [{"1": math.log(0.6), "2": math.log(0.2), "Tie": math.log(0.1), "The": math.log(0.1)}]
    out = pandalm.read_logprobs(["1"], top)
    assert out["probs"] == pytest.approx({"1": 0.6 / 0.9, "2": 0.2 / 0.9, "tie": 0.1 / 0.9}, abs=1e-5)
    assert out["mass"][0] == pytest.approx(0.9)


def test_read_logprobs_expected_score_after_prefix():
    import math

    tokens = ["[", "RESULT", "]", " 4"]
    top = [{}, {}, {}, {" 4": math.log(0.5), " 5": math.log(0.25), " 3": math.log(0.25)}]
    out = get_template("prometheus-absolute").read_logprobs(tokens, top)
    assert out["expected_score"] == pytest.approx(4.0)


def test_read_logprobs_score_pair_with_split_ten():
    import math

    # "10 7" in a vocabulary that spells 10 as "1", "0"
    tokens = ["1", "0", " ", "7"]
    top = [{"1": math.log(0.8), "9": math.log(0.2)}, {"0": math.log(0.5), "\n": math.log(0.5)}, {},
           {"7": math.log(0.6), "8": math.log(0.4)}]
    out = get_template("judgelm").read_logprobs(tokens, top)
    # first score: P(10) = 0.8 * 0.5, P(1) = 0.4, P(9) = 0.2 -> 4 + 0.4 + 1.8
    assert out["expected_scores"] == pytest.approx([6.2, 7.4])
    assert out["probs"]["1"] == pytest.approx(0.4 + 0.2, abs=1e-5)  # 10 and 9 beat 7 and 8; 1 loses
    assert sum(out["probs"].values()) == pytest.approx(1.0, abs=1e-5)


def test_read_logprobs_second_slot_follows_the_first():
    import math

    tokens = ["8", " ", "6"]
    top = [{"8": 0.0}, {}, {"6": math.log(0.5), "7": math.log(0.5)}]
    out = get_template("judgelm").read_logprobs(tokens, top)
    assert out["expected_scores"] == pytest.approx([8.0, 6.5])
    assert out["probs"] == pytest.approx({"1": 1.0, "2": 0.0, "tie": 0.0}, abs=1e-5)

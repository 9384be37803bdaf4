"""The built-in templates. `judgelm`, `pandalm` and `prometheus-*` reproduce, character for
character, the prompts the published judges were trained on (JudgeLM-7B, PandaLM-7B,
Prometheus 2), so those downloaded models can be used as they are. Changing any text here
requires a version bump (tests pin each template's hash)."""

from __future__ import annotations

from functools import partial

from judge.templates.base import LogprobSlot, Template
from judge.templates.parsers import parse_pandalm, parse_result_ab, parse_result_score, parse_scale, parse_score_pair

# ---- JudgeLM (baaivision/JudgeLM, judgelm/llm_judge/common.py: conv_judge_pair[_w_reference]) ----
_JUDGELM_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
_JUDGELM_INSTRUCTION = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user "
    "question displayed above.\nPlease rate the helpfulness, relevance, accuracy, level of details of their "
    "responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score indicates "
    "better overall performance.\nPlease first output a single line containing only two values indicating the "
    "scores for Assistant 1 and 2, respectively. The two scores are separated by a space. In the subsequent line, "
    "please provide a comprehensive explanation of your evaluation, avoiding any potential bias and ensuring that "
    "the order in which the responses were presented does not affect your judgment."
)
_JUDGELM_ANSWERS = (
    "[The Start of Assistant 1's Answer]\n{answer1}\n\n[The End of Assistant 1's Answer]\n\n"
    "[The Start of Assistant 2's Answer]\n{answer2}\n\n[The End of Assistant 2's Answer]\n\n"
    "[System]\n" + _JUDGELM_INSTRUCTION.replace("{", "{{").replace("}", "}}") + "\n\n"
)
# "10" is one token in some vocabularies and "1", "0" in others (Llama 2, SmolLM2): both are read.
_SCORES_1_10 = {str(n): float(n) for n in range(1, 11)}

JUDGELM = Template(
    name="judgelm",
    version=1,
    mode="pairwise",
    description="JudgeLM: two scores 1-10 on the first line, then an explanation; reference optional.",
    system=_JUDGELM_SYSTEM,
    prompt="[Question]\n{question}\n\n[Reference Answer]\n{reference}\n\n" + _JUDGELM_ANSWERS,
    prompt_without="[Question]\n{question}\n\n" + _JUDGELM_ANSWERS,
    raw_separator="\n",
    raw_suffix="### Response:",
    parse_reply=parse_score_pair,
    verdict_regex=r"([1-9]|10) ([1-9]|10)",
    verdict_max_tokens=6,
    logprob_slots=(LogprobSlot("", _SCORES_1_10), LogprobSlot("", _SCORES_1_10, skip="0?")),
    score_range=(1, 10),
)

# ---- PandaLM (WeOpenML/PandaLM, pandalm/utils/pandalm_inference.py: build_pandalm_prompt) ----
_PANDALM_RESPONSES = "### Response 1:\n{answer1}\n\n### Response 2:\n{answer2}\n\n### Evaluation:\n"


def _pandalm_fields(item, values: dict) -> dict:
    """PandaLM separates the instruction from its input (importers keep both under `meta`) and
    strips the responses, as its inference code does."""
    values = {**values, "answer1": values["answer1"].strip(), "answer2": values["answer2"].strip()}
    instruction, extra = item.meta.get("instruction"), item.meta.get("input")
    if instruction and extra:
        return {**values, "instruction": instruction, "input": extra}
    return {**values, "instruction": values["question"], "input": None}


PANDALM = Template(
    name="pandalm",
    version=1,
    mode="pairwise",
    description="PandaLM: 1, 2 or Tie on the first line, then '### Reason:' and '### Reference:'.",
    prompt=(
        "Below are two responses for a given task. The task is defined by the Instruction with an Input that "
        "provides further context. Evaluate the responses and generate a reference answer for the task.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n" + _PANDALM_RESPONSES
    ),
    prompt_without=(
        "Below are two responses for a given task. The task is defined by the Instruction. Evaluate the responses "
        "and generate a reference answer for the task.\n\n### Instruction:\n{instruction}\n\n" + _PANDALM_RESPONSES
    ),
    optional="input",
    parse_reply=parse_pandalm,
    prepare=_pandalm_fields,
    verdict_regex=r"(1|2|Tie)",
    verdict_max_tokens=3,
    logprob_slots=(LogprobSlot("", {"1": "1", "2": "2", "Tie": "tie", "T": "tie", "tie": "tie"}),),
)

# ---- Prometheus 2 (prometheus-eval/prometheus-eval, libs/prometheus-eval/prometheus_eval/prompts.py) ----
_ABS_SYSTEM = (
    "You are a fair judge assistant tasked with providing clear, objective feedback based on specific criteria, "
    "ensuring each assessment reflects the absolute standards set for performance."
)
_REL_SYSTEM = (
    "You are a fair judge assistant assigned to deliver insightful feedback that compares individual "
    "performances, highlighting how each stands relative to others within the same cohort."
)
_ABS_HEAD = (
    "###Task Description:\nAn instruction (might include an Input inside it), a response to evaluate,{given} "
    "and a score rubric representing a evaluation criteria are given.\n"
    "1. Write a detailed feedback that assess the quality of the response strictly based on the given score "
    "rubric, not evaluating in general.\n"
    "2. After writing a feedback, write a score that is an integer between 1 and 5. You should refer to the "
    "score rubric.\n"
    '3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (an integer number '
    'between 1 and 5)"\n'
    "4. Please do not generate any other opening, closing, and explanations.\n\n"
    "###The instruction to evaluate:\n{{question}}\n\n###Response to evaluate:\n{{answer}}\n\n"
)
_REL_HEAD = (
    "###Task Description:\nAn instruction (might include an Input inside it), a response to evaluate,{given} "
    "and a score rubric representing a evaluation criteria are given.\n"
    "1. Write a detailed feedback that assess the quality of two responses strictly based on the given score "
    "rubric, not evaluating in general.\n"
    "2. After writing a feedback, choose a better response between Response A and Response B. You should refer "
    "to the score rubric.\n"
    '3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (A or B)"\n'
    "4. Please do not generate any other opening, closing, and explanations.\n\n"
    "###Instruction:\n{{question}}\n\n###Response A:\n{{answer1}}\n\n###Response B:\n{{answer2}}\n\n"
)
# prometheus-eval's HELPFULNESS_RUBRIC: used for items that carry no rubric of their own.
HELPFULNESS_RUBRIC = (
    "[Does the model provide relevant and useful responses to the user's needs or questions?]\n"
    "Score 1: The model's responses are irrelevant or unhelpful to the user's needs or queries.\n"
    "Score 2: The model sometimes provides helpful information, but often fails to address the user's actual "
    "needs or questions.\n"
    "Score 3: The model generally provides helpful responses that address the user's needs, though it may "
    "occasionally miss the mark.\n"
    "Score 4: The model regularly provides helpful responses that are well-aligned with the user's inquiries, "
    "with only rare inaccuracies.\n"
    "Score 5: The model consistently offers highly relevant and useful responses that perfectly cater to the "
    "user's needs and inquiries."
)
_DIGITS_1_5 = {str(n): float(n) for n in range(1, 6)}

PROMETHEUS_ABSOLUTE = Template(
    name="prometheus-absolute",
    version=1,
    mode="pointwise",
    description="Prometheus 2 absolute grading: feedback on a rubric, then '[RESULT] n' (1-5); reference optional.",
    system=_ABS_SYSTEM,
    prompt=_ABS_HEAD.format(given=" a reference answer that gets a score of 5,")
    + "###Reference Answer (Score 5):\n{reference}\n\n###Score Rubrics:\n{rubric}\n\n###Feedback: ",
    prompt_without=_ABS_HEAD.format(given="")
    + "###Score Rubrics:\n{rubric}\n\n###Feedback: ",
    parse_reply=parse_result_score,
    defaults={"rubric": HELPFULNESS_RUBRIC},
    verdict_regex=r"\[RESULT\] [1-5]",
    logprob_slots=(LogprobSlot("[RESULT]", _DIGITS_1_5),),
    score_range=(1, 5),
)

PROMETHEUS_RELATIVE = Template(
    name="prometheus-relative",
    version=1,
    mode="pairwise",
    description="Prometheus 2 relative grading: feedback on a rubric, then '[RESULT] A' or 'B'; reference optional.",
    system=_REL_SYSTEM,
    prompt=_REL_HEAD.format(given=" a reference answer,")
    + "###Reference Answer:\n{reference}\n\n###Score Rubric:\n{rubric}\n\n###Feedback: ",
    prompt_without=_REL_HEAD.format(given="")
    + "###Score Rubric:\n{rubric}\n\n###Feedback: ",
    parse_reply=parse_result_ab,
    defaults={"rubric": HELPFULNESS_RUBRIC.split("\n")[0]},  # relative grading uses the criterion line only
    verdict_regex=r"\[RESULT\] (A|B)",
    logprob_slots=(LogprobSlot("[RESULT]", {"A": "1", "B": "2"}),),
)

# ---- judgeforge's own templates ----
SCORE_100 = Template(
    name="score-100",
    version=1,
    mode="pointwise",
    description="Grade 0-100 against a reference answer; the reply is the integer only.",
    system="You are a strict and fair grader. You compare an answer with a reference answer and grade it.",
    prompt=(
        "Grade the answer to the question below against the reference answer, on a scale from 0 to 100: "
        "0 means wrong or irrelevant, 100 means fully correct and complete, as good as the reference.\n\n"
        "[Question]\n{question}\n\n[Reference Answer]\n{reference}\n\n[Answer to Grade]\n{answer}\n\n"
        "Respond with the integer only."
    ),
    parse_reply=partial(parse_scale, lo=0, hi=100, whole_reply=True),
    verdict_regex=r"(100|[1-9]?[0-9])",
    verdict_max_tokens=4,
    score_range=(0, 100),
)

_SCALE_REPLY = (
    "Reply with the score (an integer from 1 to 5) alone on the first line, then one or two sentences that "
    "justify it."
)
RAG_FAITHFULNESS = Template(
    name="rag-faithfulness",
    version=1,
    mode="pointwise",
    description="RAG faithfulness: is every claim of the answer supported by the retrieved context? 1-5.",
    system="You check answers produced from retrieved documents for unsupported claims.",
    prompt=(
        "Rate how faithful the answer is to the context: 5 means every claim in the answer is supported by the "
        "context, 1 means the answer is mostly unsupported or contradicts it. Judge support only, not style or "
        "usefulness.\n\n[Context]\n{context}\n\n[Question]\n{question}\n\n[Answer]\n{answer}\n\n" + _SCALE_REPLY
    ),
    requires=("context",),
    parse_reply=partial(parse_scale, lo=1, hi=5),
    verdict_regex=r"[1-5]",
    verdict_max_tokens=2,
    logprob_slots=(LogprobSlot("", _DIGITS_1_5),),
    score_range=(1, 5),
)

RAG_RELEVANCY = Template(
    name="rag-relevancy",
    version=1,
    mode="pointwise",
    description="RAG answer relevancy: does the answer address the question? 1-5.",
    system="You check whether answers address the question that was asked.",
    prompt=(
        "Rate how relevant the answer is to the question: 5 means it directly and completely addresses the "
        "question, 1 means it is off-topic or evasive. Judge relevance only, not correctness.\n\n"
        "[Question]\n{question}\n\n[Answer]\n{answer}\n\n" + _SCALE_REPLY
    ),
    parse_reply=partial(parse_scale, lo=1, hi=5),
    verdict_regex=r"[1-5]",
    verdict_max_tokens=2,
    logprob_slots=(LogprobSlot("", _DIGITS_1_5),),
    score_range=(1, 5),
)

BUILTIN = (JUDGELM, PANDALM, PROMETHEUS_ABSOLUTE, PROMETHEUS_RELATIVE, SCORE_100, RAG_FAITHFULNESS, RAG_RELEVANCY)

"""Importers: public judge datasets in their own formats -> judgeforge records (`data convert`).

Every importer keeps the source's row order, gives stable unique ids (the source's id, else the
file stem and row number), and puts gold labels on the item (`winner` / `score`). Rows that do
not fit raise InputError naming the file and row.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judge.core.configfile import option
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import check_unique_ids, iter_table_rows
from judge.core.records import PairItem, RowError, SingleItem, Verdict, normalize_winner
from judge.data.benchmarks import evalbiasbench_items, from_judgebench, from_judgebench_judgments
from judge.data.tables import RECORD_FIELDS
from judge.templates import winner_from_scores
from judge.templates.parsers import parse_pandalm

Record = PairItem | SingleItem | Verdict


def _need(row: dict, *keys: str) -> list:
    missing = [k for k in keys if k not in row]
    if missing:
        raise RowError(f"missing field {missing[0]!r}", missing[0])
    return [row[k] for k in keys]


def _text(value: Any, name: str) -> str:
    """A text field; a bare JSON scalar (the PandaLM test set has an answer `true`) becomes its text."""
    if isinstance(value, (bool, int, float)):
        return str(value)
    if not isinstance(value, str):
        raise RowError(f"field {name!r}: expected a string, got {type(value).__name__}", name)
    return value


def _row_id(row: dict, key: str, stem: str, number: int) -> str:
    return str(row[key]) if row.get(key) is not None else f"{stem}-{number}"


def majority(labels: list) -> str:
    """The most common of the annotators' labels (0 = tie, PandaLM's coding)."""
    (label, count), *_ = Counter(normalize_winner(v) for v in labels).most_common(1)
    if count * 2 <= len(labels):
        raise RowError(f"annotators have no majority: {labels}")
    return label


def from_pandalm(row: dict, number: int, stem: str) -> PairItem:
    """PandaLM human-annotated test set (testset-v1.json): gold = majority of annotator1..3."""
    idx, instruction, response1, response2 = _need(row, "idx", "instruction", "response1", "response2")
    instruction, extra = _text(instruction, "instruction"), _text(row.get("input") or "", "input")
    annotators = [row[k] for k in ("annotator1", "annotator2", "annotator3") if k in row]
    models = str(row.get("cmp_key", "")).split("_") if row.get("cmp_key") else []
    return PairItem(
        id=str(idx),
        # JudgeLM's convention for PandaLM data: the input follows the instruction on the next line.
        question=f"{instruction}\n{extra}" if extra else instruction,
        answer1=_text(response1, "response1"),
        answer2=_text(response2, "response2"),
        model1=models[0] if len(models) == 2 else None,
        model2=models[1] if len(models) == 2 else None,
        category=row.get("motivation_app"),
        winner=majority(annotators) if annotators else None,
        meta={"instruction": instruction, "input": extra, **({"annotators": annotators} if annotators else {})},
    )


def from_pandalm_verdicts(row: dict, number: int, stem: str) -> Verdict:
    """PandaLM's published verdict files: `pandalm_result` (0/1/2) or `gpt_result` ("1"/"2"/"Tie"/other).
    Tie and anything unparseable count as tie (the paper's convention); unparseable is flagged."""
    prefix = "pandalm" if "pandalm_result" in row else "gpt" if "gpt_result" in row else None
    if prefix is None:
        raise RowError("missing field 'pandalm_result' or 'gpt_result'", "pandalm_result")
    (idx,) = _need(row, "idx")
    result = str(row[f"{prefix}_result"]).strip()
    reason, reference = row.get(f"{prefix}_reason"), row.get(f"{prefix}_reference")
    try:
        winner, parse_ok = normalize_winner(result), True
    except RowError:
        winner, parse_ok = "tie", False
    raw = f"{'Tie' if winner == 'tie' and parse_ok else result}\n\n### Reason: {reason or ''}\n\n### Reference: {reference or ''}\n"
    return Verdict(
        id=str(idx), order="ab", winner=winner, reason=reason, reference_generated=reference, raw=raw,
        parse_ok=parse_ok and parse_pandalm(raw).ok, judge=stem.removesuffix("-testset-v1"),
        template="pandalm@1", error=None if parse_ok else f"unparseable result {result!r} counted as tie",
    )


def _reference_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("text")
    return value if isinstance(value, str) and value.strip() else None


def from_judgelm(row: dict, number: int, stem: str) -> PairItem:
    """JudgeLM rows (question_body, answer1_body, answer2_body, score [s1, s2]); gold winner from the
    score pair with threshold 0. A `reference` ({"text": ...} or a string) makes the with-reference variant."""
    qid, question, answer1, answer2 = _need(row, "question_id", "question_body", "answer1_body", "answer2_body")
    score = row.get("score")
    winner = None
    if score is not None:
        if isinstance(score, list) and len(score) == 1 and isinstance(score[0], list):
            score = score[0]
        if not (isinstance(score, list) and len(score) == 2 and all(isinstance(s, (int, float)) for s in score)):
            raise RowError(f"field 'score': expected two numbers, got {score!r}", "score")
        winner = winner_from_scores(float(score[0]), float(score[1]))
    meta = {k: row[k] for k in ("score", "text", "reviewer_id", "answer1_metadata", "answer2_metadata") if k in row}
    return PairItem(
        id=str(qid), question=_text(question, "question_body"), answer1=_text(answer1, "answer1_body"),
        answer2=_text(answer2, "answer2_body"), reference=_reference_text(row.get("reference")),
        model1=row.get("answer1_model_id"), model2=row.get("answer2_model_id"), winner=winner, meta=meta,
    )


def from_llmbar(row: dict, number: int, stem: str) -> PairItem:
    """LLMBar: `input`, `output_1`, `output_2`, `label` (1 or 2)."""
    question, out1, out2, label = _need(row, "input", "output_1", "output_2", "label")
    if str(label) not in ("1", "2"):
        raise RowError(f"field 'label': expected 1 or 2, got {label!r}", "label")
    return PairItem(
        id=_row_id(row, "id", stem, number), question=_text(question, "input"), answer1=_text(out1, "output_1"),
        answer2=_text(out2, "output_2"), winner=str(label), category=stem,
    )


_PROMETHEUS_SECTIONS = re.compile(
    r"###The instruction to evaluate:\n(?P<question>.*?)\n\n###Response to evaluate:\n(?P<answer>.*?)\n\n"
    r"(?:###Reference Answer \(Score 5\):\n(?P<reference>.*?)\n\n)?###Score Rubrics:\n(?P<rubric>.*?)\n\n###Feedback:",
    re.S,
)


def from_prometheus_absolute(row: dict, number: int, stem: str) -> SingleItem:
    """Prometheus eval rows: `instruction` holds the whole grading prompt, split back into question,
    answer, reference and rubric; gold score = mean of `gpt4_score` (all runs kept in meta)."""
    (prompt,) = _need(row, "instruction")
    m = _PROMETHEUS_SECTIONS.search(_text(prompt, "instruction"))
    if not m:
        raise RowError("field 'instruction' is not a Prometheus grading prompt (sections not found)", "instruction")
    scores = row.get("gpt4_score")
    if isinstance(scores, str):  # some dumps hold the list as its Python repr
        try:
            scores = ast.literal_eval(scores)
        except (ValueError, SyntaxError):
            raise RowError(f"field 'gpt4_score': expected a list of numbers, got {scores!r}", "gpt4_score") from None
    if scores is not None and not (isinstance(scores, list) and scores and all(isinstance(s, (int, float)) for s in scores)):
        raise RowError(f"field 'gpt4_score': expected a list of numbers, got {scores!r}", "gpt4_score")
    source = row.get("response_source")
    idx = row.get("idx", number)
    meta = {"idx": idx, **({"gpt4_score": scores} if scores else {})}
    if "gpt4_feedback" in row:
        meta["gpt4_feedback"] = row["gpt4_feedback"]
    return SingleItem(
        id=f"{idx}-{source}" if source else _row_id(row, "idx", stem, number),
        question=m["question"], answer=m["answer"], reference=m["reference"], rubric=m["rubric"],
        model=source, category=row.get("category"),
        score=sum(scores) / len(scores) if scores else None, meta=meta,
    )


def from_openai_chat(row: dict, number: int, stem: str) -> SingleItem:
    """OpenAI fine-tuning rows {"messages": [...]}: the last user turn is the question, the final
    assistant turn the answer; earlier turns and the system prompt stay in `meta`."""
    (messages,) = _need(row, "messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise RowError("field 'messages': expected a list of {role, content} objects", "messages")
    if not messages or messages[-1]["role"] != "assistant":
        raise RowError("field 'messages': the last message must be the assistant's answer", "messages")
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        raise RowError("field 'messages': no user message", "messages")
    last_user = users[-1]
    return SingleItem(
        id=_row_id(row, "id", stem, number), question=_text(messages[last_user].get("content"), "messages"),
        answer=_text(messages[-1].get("content"), "messages"), model=row.get("model"),
        meta={"history": messages[:last_user]} if last_user else {},
    )


# row -> record; an importer may give several records for one row (a published judge's two games)
IMPORTERS: dict[str, Callable[[dict, int, str], Record | list[Record]]] = {
    "pandalm": from_pandalm,
    "pandalm-verdicts": from_pandalm_verdicts,
    "judgelm": from_judgelm,
    "llmbar": from_llmbar,
    "prometheus-absolute": from_prometheus_absolute,
    "openai-chat": from_openai_chat,
    "judgebench": from_judgebench,
    "judgebench-judgments": from_judgebench_judgments,
}
# whole file (path, seed) -> records, for sources that are not one row per record
FILE_IMPORTERS: dict[str, Callable[[str, int | None], list[Record]]] = {
    "evalbiasbench": evalbiasbench_items,
}


def _record_key(record: Record) -> str:
    """What must be unique in a converted file: an item's id, a verdict's id and order."""
    return f"{record.id} (order {record.order})" if isinstance(record, Verdict) else record.id


def convert_records(source_format: str, path: str, seed: int | None = None) -> list[Record]:
    """Read `path` in `source_format` into records (in memory); see `convert` for the file version."""
    if source_format in FILE_IMPORTERS:
        return FILE_IMPORTERS[source_format](path, seed)
    if source_format not in IMPORTERS:
        raise InputError(f"unknown source format {source_format!r}; known: {', '.join([*IMPORTERS, *FILE_IMPORTERS])}")
    importer, stem = IMPORTERS[source_format], Path(path).stem
    numbered = []
    for number, row in iter_table_rows(path):
        try:
            if not isinstance(row, dict):
                raise RowError(f"expected a JSON object, got {type(row).__name__}")
            records = importer(row, number, stem)
            numbered += [(number, r) for r in (records if isinstance(records, list) else [records])]
        except RowError as e:
            raise InputError(str(e), path, number) from None
    if not numbered:
        raise InputError("no rows to convert", path)
    check_unique_ids(((number, _record_key(record)) for number, record in numbered), path)
    return [record for _, record in numbered]


WHOLE_TABLE_FORMATS = ("table", "preference")  # read through judge.data.tables, with the columns named by flags
SOURCES = [*IMPORTERS, *FILE_IMPORTERS, *WHOLE_TABLE_FORMATS]  # every `data convert --from` (and eval's --*-format)


@dataclass
class ConvertConfig:
    """`judgeforge data convert`'s settings (the CLI's flags are generated from these fields)."""

    source_format: str = option(flag="--from", choices=SOURCES, help="the source format")
    input: str = option(positional=True, metavar="IN", help="source file (JSON array or JSONL; table/preference also "
                                                            "CSV, TSV, Parquet or hf:NAME[:SPLIT])")
    out: str = option(help="output JSONL")
    field: list[str] | None = option(None, action="append", metavar="FIELD=COLUMN", help=(
        f"table/preference: the column of a record field (repeatable; table fields: {', '.join(RECORD_FIELDS)}; "
        "preference: question, chosen, rejected, id, category); a field not named is read from a column of its own name"))
    label: list[str] | None = option(None, action="append", metavar="VALUE=WINNER", help=(
        "table: map a gold code of the winner column to 1, 2 or tie (repeatable, e.g. --label 0=1 --label 1=2 "
        "--label 2=tie); without it only 1, 2 and tie are accepted"))
    seed: int | None = option(None, help="preference, evalbiasbench: seed of the draw that puts the chosen (better) "
                                         "answer first or second (default 0; ids do not depend on it)")


def convert(source_format: str, path: str, out: str, *, fields: dict[str, str] | None = None,
            labels: dict[str, str] | None = None, seed: int | None = None) -> dict:
    """`judgeforge data convert`: write the records as JSONL (atomically); returns counts."""
    from judge.core.jsonl import write_jsonl

    records = source_records(source_format, path, fields=fields, labels=labels, seed=seed)
    count = write_jsonl(out, records)
    if records and isinstance(records[0], Verdict):  # a judge's verdicts: what parsed, not gold
        return {"rows": count, "parsed": sum(r.parse_ok for r in records), "out": out}
    labelled = sum(1 for r in records if getattr(r, "winner", None) is not None or getattr(r, "score", None) is not None)
    return {"rows": count, "labelled": labelled, "out": out}


def source_records(source_format: str, path: str, *, fields: dict[str, str] | None = None,
                   labels: dict[str, str] | None = None, seed: int | None = None) -> list[Record]:
    """Any of `SOURCES` read into records (in memory). `fields` (--field) and `labels` (--label) name
    the columns of `table`; `fields` and `seed` serve `preference`, `seed` also `evalbiasbench`."""
    if source_format == "table":
        from judge.data.tables import table_items

        if seed is not None:
            raise ConfigError("--seed draws the answer positions of --from preference; a table keeps its own")
        return table_items(path, fields or {}, labels)
    if source_format == "preference":
        from judge.data.preference import preference_items

        if labels:
            raise ConfigError("--label maps gold codes of --from table; a preference row's gold is its chosen answer")
        return preference_items(path, fields, seed=seed or 0)
    if seed is not None and source_format not in FILE_IMPORTERS:
        raise ConfigError("--seed draws the answer positions of --from preference or evalbiasbench; "
                          "other formats keep theirs")
    if fields or labels:
        raise ConfigError(f"--field and --label name the columns of --from table or preference; "
                          f"--from {source_format} knows its columns")
    return convert_records(source_format, path, seed)

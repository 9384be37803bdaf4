"""Preference data -> PairItems (`data convert --from preference`), the format of nearly every
reward-model dataset: a prompt, the chosen answer, the rejected one.

`chosen`/`rejected` are text, or chat message lists (trl's conversational format, Anthropic HH,
UltraFeedback): then the answer is the list's last assistant turn and the question is the
conversation before it, or the `prompt` column when the list holds only the answer. A conversation
of one user turn is that turn's text; a longer one is written out turn by turn ("User: ...").

Which answer is shown first is drawn per row from the seed and the row's id, so a judge that
always prefers one position scores at chance, ids do not depend on the seed, and the same seed
gives the same file.
"""

from __future__ import annotations

import hashlib
from typing import Any

from judge.core.errors import ConfigError
from judge.core.jsonl import check_unique_ids
from judge.core.records import PairItem
from judge.data.tables import Table, cell_text, is_empty, item_id, meta_of, read_table

PREFERENCE_FIELDS = {"question": "prompt", "chosen": "chosen", "rejected": "rejected", "id": "id",
                     "category": "category"}  # field -> the column read by default


def chosen_first(seed: int, item_id: str) -> bool:
    """The per-row draw: a hash of seed and id (stable across runs, machines and Python versions).

    >>> [chosen_first(0, "a"), chosen_first(0, "a")] == [chosen_first(0, "a")] * 2
    True
    """
    return hashlib.sha256(f"{seed}:{item_id}".encode()).digest()[0] % 2 == 0


def _content(table: Table, position: int, column: str, message: dict) -> str:
    """A message's text: a string, or the text parts of a multimodal content list."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        kinds = {part.get("type") for part in content} - {"text"}
        if not kinds:
            return "\n".join(str(part.get("text", "")) for part in content)
        raise table.refuse(f"column {column!r}: a message holds a {sorted(map(str, kinds))[0]} part; only text "
                           "can be judged", position)
    raise table.refuse(f"column {column!r}: a message's content must be text, got {type(content).__name__}", position)


def _messages(table: Table, position: int, column: str, value: Any) -> list[dict] | None:
    """A chat message list, checked; None when `value` is not a list (then it is text)."""
    if not isinstance(value, list):
        return None
    if not value or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value):
        raise table.refuse(f"column {column!r}: expected text or a list of {{role, content}} messages", position)
    return value


def render_conversation(table: Table, position: int, column: str, messages: list[dict]) -> str:
    """One user turn: its text. Several turns: each as `Role: text`, blank lines between."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return _content(table, position, column, messages[0])
    return "\n\n".join(f"{m['role'].capitalize()}: {_content(table, position, column, m)}" for m in messages)


def _answer(table: Table, position: int, column: str, value: Any) -> tuple[str, list[dict]]:
    """(the answer, the conversation before it) of a chosen/rejected cell."""
    if is_empty(value):
        raise table.refuse(f"column {column!r} is empty", position)
    messages = _messages(table, position, column, value)
    if messages is None:
        return cell_text(table, position, column, value), []
    if messages[-1]["role"] != "assistant":
        raise table.refuse(f"column {column!r}: the last message is the {messages[-1]['role']}'s, not the "
                           "assistant's answer", position)
    return _content(table, position, column, messages[-1]), messages[:-1]


def _question(table: Table, position: int, row: dict, column: str, history: list[dict]) -> str:
    if history:
        return render_conversation(table, position, column, history)
    value = row.get(column)
    if is_empty(value):
        raise table.refuse(f"no question: column {column!r} is {'empty' if column in row else 'missing'} and "
                           "the answers hold no conversation before them", position)
    messages = _messages(table, position, column, value)
    return render_conversation(table, position, column, messages) if messages else cell_text(table, position, column, value)


def preference_items(source: str, fields: dict[str, str] | None = None, *, seed: int = 0) -> list[PairItem]:
    """`data convert --from preference`: each row a PairItem, the chosen answer first or second by the
    seeded draw, `winner` saying which."""
    unknown = sorted(set(fields or {}) - set(PREFERENCE_FIELDS))
    if unknown:
        raise ConfigError(f"--field {unknown[0]}=: not a preference field; the fields are: "
                          f"{', '.join(PREFERENCE_FIELDS)}")
    table = read_table(source)
    mapping = {**PREFERENCE_FIELDS, **(fields or {})}
    for field in ("chosen", "rejected", *(fields or {})):
        table.need_column(mapping[field])
    id_column = mapping["id"] if mapping["id"] in table.columns else None
    category = mapping["category"] if mapping["category"] in table.columns else None
    used = [mapping["question"], mapping["chosen"], mapping["rejected"], id_column, category]
    items, numbered_ids = [], []
    for index, (position, row) in enumerate(table.rows, start=1):
        chosen, chosen_history = _answer(table, position, mapping["chosen"], row.get(mapping["chosen"]))
        rejected, rejected_history = _answer(table, position, mapping["rejected"], row.get(mapping["rejected"]))
        if chosen_history and rejected_history and chosen_history != rejected_history:
            raise table.refuse(f"columns {mapping['chosen']!r} and {mapping['rejected']!r} continue different "
                               "conversations; a pair answers one question", position)
        question = _question(table, position, row, mapping["question"], chosen_history or rejected_history)
        pair_id = item_id(table, position, index, row, id_column)
        first = chosen_first(seed, pair_id)
        items.append(PairItem(
            id=pair_id, question=question, answer1=chosen if first else rejected, answer2=rejected if first else chosen,
            category=cell_text(table, position, category, row[category]) if category and not is_empty(row.get(category)) else None,
            winner="1" if first else "2", meta=meta_of(row, used),
        ))
        numbered_ids.append((position, pair_id))
    check_unique_ids(numbered_ids, source)
    return items

"""The cascade's test scenario, shared by its tests and `scripts/cascade_demo.py`: pairs where one
answer is marked GOOD, a local judge that is sure and right on the easy ones and flips a coin on
the hard ones, and a teacher that is always right.

The local judge's belief depends on the rendered prompt only, so the two orders of a hard pair are
two independent coin flips (they often disagree, as a confused judge's do).
"""

from __future__ import annotations

import hashlib
import random

from ..jsonl import write_jsonl
from ..records import PairItem


def good_position(prompt: str) -> str:
    """Where the GOOD answer sits in a rendered prompt: "1" or "2"."""
    return "1" if prompt.index("GOOD") < prompt.index("bad") else "2"


def local_belief(prompt: str) -> dict[str, float]:
    """Easy items: the GOOD answer with probability 0.90-0.99. Hard items: a coin flip, 0.50-0.60 sure."""
    u = hashlib.sha256(prompt.encode()).digest()
    if "(hard)" in prompt:
        choice, p = ("1" if u[0] % 2 else "2"), 0.5 + 0.1 * u[1] / 255
    else:
        choice, p = good_position(prompt), 0.9 + 0.09 * u[1] / 255
    return {choice: p, ("2" if choice == "1" else "1"): 1 - p}


def teacher_reply(body: dict) -> str:
    """An always-right teacher in PandaLM's reply format (for `FakeOpenAI(reply=...)`)."""
    return f"{good_position(body['messages'][-1]['content'])}\n\n### Reason: the right one.\n\n### Reference: -"


def make_items(path, prefix: str, n: int, seed: int, hard_share: float = 0.25) -> set[str]:
    """Write n pairs with gold winners (the GOOD answer on a random side); returns the hard ones' ids."""
    rng = random.Random(seed)
    items, hard = [], set()
    for i in range(n):
        item_id, is_hard, first = f"{prefix}{i}", i < n * hard_share, rng.random() < 0.5
        good, bad = f"GOOD answer {item_id}", f"bad answer {item_id}"
        items.append(PairItem(id=item_id, question=f"Task {item_id} ({'hard' if is_hard else 'easy'})",
                              answer1=good if first else bad, answer2=bad if first else good,
                              winner="1" if first else "2"))
        if is_hard:
            hard.add(item_id)
    write_jsonl(path, items)
    return hard

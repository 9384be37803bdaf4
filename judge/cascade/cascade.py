"""Trust or escalate at scoring time: the local judge scores every item in logprob mode; an item
whose confidence (`judge.scoring.confidence`) is under the threshold `calibrate` chose goes to the teacher,
through `distill` itself (the same cached, costed, retrying client, so a rerun never pays twice).

    OUT                       one final decision per item and order (Verdict rows): `judge` names the
                              judge that made it, `meta.cascade` says which side decided and the local
                              confidence (and, for the teacher's, what the local judge said)
    OUT.stem.local.jsonl      the local judge's verdicts, all of them (score's output: resumable)
    OUT.stem.teacher/         the teacher's side (distill's folder: escalated.jsonl, cache.sqlite,
                              verdicts.jsonl, stats.json)
    OUT.stem.manifest.json    share escalated, teacher calls and cost, and what sending every item to
                              the teacher would have cost

A cascade file holds only for the judge, template and answer orders it was calibrated with:
anything else is refused before a call is made. The judge is known by its fingerprint (model,
adapter files' content, backend, template, mode: `judge.scoring.score.judge_fingerprint`), recorded by
`calibrate` from score's manifest, not by its name (every trained adapter is called `adapter`);
the name, known only from its verdicts, is checked too, before any call to the teacher.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from judge.backends.adapters import choose_template
from judge.backends.pricing import PriceTable, estimate_tokens
from judge.core.configfile import option
from judge.core.errors import ConfigError, InputError, TeacherError, TemplateError
from judge.core.jsonl import read_items, read_json, read_jsonl, write_jsonl
from judge.core.manifest import write_manifest
from judge.core.records import Verdict, from_row, to_row
from judge.core.runlock import RunLock
from judge.distill import TYPICAL_REPLY_TOKENS, DistillConfig, TeacherConfig, distill
from judge.scoring.confidence import confidence
from judge.scoring.judging import orders_for
from judge.scoring.score import ScoreConfig, changed_settings, judge_fingerprint, resolve_template, resume_state, score
from judge.templates import Template

CASCADE_FIELDS = ("judge", "template", "template_hash", "mode", "swap", "threshold", "met")


@dataclass
class CascadeConfig:
    cascade: str = option(metavar="CASCADE_JSON", help=(
        "with --mode logprob: items the local judge is less sure of than this file's threshold (judgeforge "
        "calibrate) go to --teacher-model; OUT gets the final decisions, OUT_STEM.local.jsonl the local verdicts, "
        "OUT_STEM.teacher/ the teacher's (cached)"))
    teacher_model: str = option(help="--cascade: the teacher, e.g. gpt-4o (key from OPENAI_API_KEY)")
    teacher_base_url: str | None = option(None, help="--cascade: the teacher's endpoint (default OPENAI_BASE_URL, "
                                                     "else OpenAI)")
    teacher_template: str | None = option(None, help="--cascade: the teacher's template (default: the local judge's)")
    teacher_concurrency: int = option(8, help="--cascade: requests to the teacher in flight (8, as distill's)")
    prices: str | None = option(None, help="--cascade: price table YAML (default configs/prices.yaml)")


def output_paths(out: Path) -> tuple[Path, Path]:
    """(the local judge's predictions, the teacher's distill folder) beside OUT."""
    return out.with_name(f"{out.stem}.local.jsonl"), out.with_name(f"{out.stem}.teacher")


def load_cascade(path: str) -> dict:
    cascade = read_json(path)
    missing = [k for k in CASCADE_FIELDS if not isinstance(cascade, dict) or k not in cascade]
    if missing:
        raise InputError(f"not a cascade file from `judgeforge calibrate` (missing {', '.join(missing)})", path)
    return cascade


def check_cascade(cascade: dict, path: str, template: Template, swap: bool) -> None:
    """Refuse a cascade calibrated for another template or other answer orders."""
    if (template.key, template.text_hash) != (cascade["template"], cascade["template_hash"]):
        raise ConfigError(f"{path} was calibrated for template {cascade['template']} (text {cascade['template_hash']}), "
                          f"but this run judges with {template.key} (text {template.text_hash}): calibrate this "
                          f"judge and template first (judgeforge calibrate)")
    if bool(cascade["swap"]) != swap:
        raise ConfigError(f"{path} was calibrated {'with' if cascade['swap'] else 'without'} --swap, and confidence "
                          f"depends on it: run with{'' if cascade['swap'] else 'out'} --swap, or calibrate again")


def check_judge(cascade: dict, path: str, config: ScoreConfig, template: Template) -> None:
    """Refuse a cascade calibrated on another judge: another model, adapter (by its files' content),
    backend, template or mode, whatever it is called. Its threshold says nothing about this judge."""
    recorded = cascade.get("fingerprint")
    how = ("score this judge's calibration set with --mode logprob, then judgeforge calibrate on those "
           "predictions, and use the cascade file it writes")
    if not isinstance(recorded, dict):
        raise ConfigError(f"{path} has no record of the judge it was calibrated on (calibrated on predictions without "
                          f"score's manifest, or by an older judgeforge), so it cannot be checked against this one: "
                          f"recalibrate: {how}")
    changed = changed_settings(recorded, judge_fingerprint(resume_state(config, template)))
    if changed:
        raise ConfigError(f"{path} was calibrated for another judge (changed: {', '.join(changed)}); its threshold "
                          f"does not hold for this one: recalibrate: {how}")


def run_cascade(config: ScoreConfig, cascade_config: CascadeConfig, backend=None, *, progress: bool = True) -> dict:
    """Score `config.input` with the local judge, escalate its unsure items to the teacher, write
    the final decisions to `config.out`; returns the summary also kept in the manifest.
    `backend` overrides the local judge's backend (tests pass a fake)."""
    if config.mode != "logprob":
        raise ConfigError("--cascade needs --mode logprob: confidence is read off the verdict-token probabilities")
    cascade = load_cascade(cascade_config.cascade)
    items = read_items(config.input)[: config.limit or None]
    if not items:
        raise InputError("no items to score", config.input)
    template = resolve_template(config, items)
    check_cascade(cascade, cascade_config.cascade, template, config.swap)
    check_judge(cascade, cascade_config.cascade, config, template)
    teacher_template = choose_template(template.mode, explicit=cascade_config.teacher_template, fallback=template.key,
                                       context=f", the local judge's {template.name} is {template.mode}: "
                                               f"--teacher-template must be a {template.mode} template")
    orders = orders_for(config.swap, template.mode)
    prompts = _teacher_prompts(items, orders, teacher_template, config.input)  # checked before any call
    out = Path(config.out)
    local_out, teacher_dir = output_paths(out)
    with RunLock(out.with_name(out.name + ".lock"), what=f"score --cascade --out {out}"):
        local_counts = score(dataclasses.replace(config, out=str(local_out)), backend, progress=progress)
        local = _by_item(read_jsonl(local_out, lambda row: from_row(Verdict, row, extra_to_meta=False)))
        judges = {v.judge for vs in local.values() for v in vs}
        if judges != {cascade["judge"]}:
            raise ConfigError(f"{cascade_config.cascade} was calibrated for judge {cascade['judge']!r}, but these "
                              f"verdicts ({local_out}) come from {', '.join(map(repr, sorted(judges)))}: calibrate this "
                              f"judge first (judgeforge calibrate on its predictions)")
        threshold = float(cascade["threshold"])
        try:
            sure = {item.id: confidence(local[item.id]) for item in items}
        except InputError as e:  # a verdict without probabilities
            raise InputError(e.reason, str(local_out)) from None
        escalated = [item for item in items if sure[item.id] < threshold]
        teacher, stats = {}, None
        if escalated:
            write_jsonl(teacher_dir / "escalated.jsonl", [to_row(item) for item in escalated])
            teacher_settings = TeacherConfig(model=cascade_config.teacher_model, base_url=cascade_config.teacher_base_url,
                                             concurrency=cascade_config.teacher_concurrency)
            stats = distill(DistillConfig(input=str(teacher_dir / "escalated.jsonl"), template=teacher_template.key,
                                          teacher=teacher_settings, out=str(teacher_dir), swap=config.swap,
                                          prices=cascade_config.prices, progress=progress))
            verdicts = read_jsonl(teacher_dir / "verdicts.jsonl", lambda row: from_row(Verdict, row, extra_to_meta=False))
            teacher = {(v.id, v.order): v for v in verdicts}
        final = []
        for item in items:
            by_order = {v.order: v for v in local[item.id]}
            for order in orders:
                final.append(_decision(item.id, order, by_order[order], teacher, sure[item.id], threshold,
                                       escalated=sure[item.id] < threshold))
        write_jsonl(out, final)
        summary = _summary(items, orders, escalated, final, stats, local_counts, cascade_config, prompts, threshold)
        write_manifest(out.parent, "score", filename=f"{out.stem}.manifest.json",
                       config={**dataclasses.asdict(config), "api_key": None, "template": template.key,
                               "template_hash": template.text_hash, "cascade": dataclasses.asdict(cascade_config),
                               "teacher_template": teacher_template.key},
                       inputs={"items": config.input, "cascade": cascade_config.cascade},
                       counts={k: v for k, v in summary.items() if not isinstance(v, dict)},
                       cascade=summary)
    return summary


def _by_item(verdicts: list[Verdict]) -> dict[str, list[Verdict]]:
    grouped: dict[str, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        grouped[v.id].append(v)
    return grouped


def _teacher_prompts(items: list, orders: tuple, template: Template, path: str) -> dict[tuple[str, str], str]:
    """Every prompt the teacher could be sent (its text, for the all-teacher cost): rendering them
    all first means an item the teacher's template cannot take fails the run before any call."""
    prompts = {}
    for item in items:
        for order in orders:
            try:
                messages = template.render(item, order).messages
            except TemplateError as e:
                raise InputError(f"--teacher-template {template.name}: {e.reason}", path) from None
            prompts[(item.id, order)] = "\n".join(str(m["content"]) for m in messages)
    return prompts


def _decision(item_id: str, order: str, local: Verdict, teacher: dict, sure: float, threshold: float, *,
              escalated: bool) -> Verdict:
    """The final verdict for (item, order): the local judge's when it is sure enough, else the teacher's
    (kept as the teacher said it, unparsed included: a failure is never replaced by a guess)."""
    note = {"decided_by": "teacher" if escalated else "local", "confidence": round(sure, 6), "threshold": threshold}
    if not escalated:
        return dataclasses.replace(local, meta={**local.meta, "cascade": note})
    verdict = teacher.get((item_id, order))
    if verdict is None:
        raise TeacherError(f"the teacher's verdict for item {item_id!r} ({order}) is missing: rerun to resume "
                           f"(answered requests are cached)")
    note["local"] = {"judge": local.judge, "winner": local.winner, "scores": local.scores, "parse_ok": local.parse_ok}
    return dataclasses.replace(verdict, meta={**verdict.meta, "cascade": note})


def _summary(items, orders, escalated, final, stats, local_counts, cascade_config: CascadeConfig, prompts,
             threshold) -> dict:
    teacher_rows = [v for v in final if v.meta["cascade"]["decided_by"] == "teacher"]
    return {
        "items": len(items), "verdicts": len(final), "threshold": threshold,
        "escalated_items": len(escalated), "share_escalated": round(len(escalated) / len(items), 6),
        "teacher_calls": stats["calls"]["answered"] if stats else 0,
        "teacher_calls_sent_now": stats["this_run"]["sent"] if stats else 0,
        "teacher_unparsed": sum(not v.parse_ok for v in teacher_rows),
        "teacher_cost_usd": stats["cost_usd"] if stats else 0.0,
        "all_teacher_cost_usd": _all_teacher_cost(items, orders, teacher_rows, prompts, cascade_config),
        "local": local_counts,
        "teacher": {"model": cascade_config.teacher_model, "template": (stats or {}).get("template"),
                    "price": PriceTable.load(cascade_config.prices).describe(cascade_config.teacher_model),
                    "retries": stats["this_run"]["retries"] if stats else {}},
    }


def _all_teacher_cost(items, orders, teacher_rows: list[Verdict], prompts: dict, cascade_config: CascadeConfig):
    """What sending every (item, order) to the teacher would cost: the calls it answered at their
    reported usage, the others estimated (prompt at ~4 characters per token, the reply as long as the
    teacher's replies were on average). None when the teacher has no price."""
    price = PriceTable.load(cascade_config.prices).lookup(cascade_config.teacher_model)
    if price is None:
        return None
    used = {(v.id, v.order): v.usage for v in teacher_rows if v.usage}
    replies = [u.get("completion_tokens") or 0 for u in used.values()]
    reply_tokens = sum(replies) / len(replies) if replies else TYPICAL_REPLY_TOKENS
    total = 0.0
    for item in items:
        for order in orders:
            usage = used.get((item.id, order))
            total += (price.cost(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0) if usage
                      else price.cost(estimate_tokens(prompts[(item.id, order)]), reply_tokens))
    return round(total, 6)

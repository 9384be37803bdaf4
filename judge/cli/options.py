"""A verb's flags, generated from its config dataclasses (as transformers' HfArgumentParser does),
so a default, a help text and the choices live in one place: the field (`judge.core.configfile.option`).
Every verb also takes `--config FILE.yaml`; precedence: dataclass defaults < YAML < flags.

How a verb uses it:

    from judge.cli.options import add_config_arguments, config_from

    def cmd_score(args) -> int:
        from judge.scoring.score import ScoreConfig, score

        # defaults < --config YAML < flags < the keyword values (None = not given)
        config = config_from(ScoreConfig, args, extra=engine_kwargs(args.engine_arg))
        ...

    def register(verbs) -> None:
        from judge.scoring.score import ScoreConfig

        p = verbs.add_parser("score", help="...", description="...")
        add_config_arguments(p, ScoreConfig, skip=("extra",))  # one flag per field, and --config once
        p.add_argument("--engine-arg", action="append", ...)   # only what is not a config field
        p.set_defaults(func=cmd_score)

A field's flag is `--field-name` (or its `flag=`), with `type` from the annotation, the field's
`choices`, and its help ending in the default. bool: `store_true` when the default is False, else
`--x/--no-x`; list: `nargs="+"`; `metavar`, `action`, `nargs` and `positional=True` (which also
takes `--field-name`) pass through `option(...)`; `aliases` are older spellings, accepted and hidden
(one name per idea across verbs: --input, --model, --engine-arg, --no-plots). Flags default to
"not given" (argparse.SUPPRESS), so the dataclass default is the only one, and a required field
may come from the YAML instead ("missing --input (or `input:` in FILE)" when it comes from neither).
A YAML key is a field name (`max_tokens: 64`) or its flag's name (`teacher_model:`), checked against
every config class of the verb: an unknown key exits 2 naming the file, the key and the valid keys.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from judge.core.configfile import field_default, finite_float, load_yaml_config
from judge.core.errors import ConfigError

CONFIG_HELP = ("YAML file of settings keyed by their field names, the flags' with '_' for '-' (e.g. max_tokens: 64); "
               "a flag given on the command line overrides it; unknown keys are refused")


def add_config_arguments(parser: argparse.ArgumentParser, cls, *, skip: tuple[str, ...] = (),
                         group: str | None = None) -> None:
    """One flag per init field of `cls` but `skip` (fields the verb reads from flags of its own).
    `group`: the title of a help section for settings a verb uses only on request (its required
    fields are then required only when the section is used, which the title says)."""
    registered = parser.get_default("config_fields") or {}
    if not registered:
        parser.add_argument("--config", metavar="FILE.yaml", help=CONFIG_HELP)
    hints = typing.get_type_hints(cls)
    target = parser.add_argument_group(group) if group else parser
    names = []
    for f in dataclasses.fields(cls):
        if f.init and f.name not in skip:
            _add_flag(target, f, hints[f.name], mark_required=not group)
            names.append(f.name)
    parser.set_defaults(config_fields={**registered, cls: tuple(names)})


def config_values(cls, args, **given) -> dict:
    """The fields of `cls` set by the YAML of --config, the flags or `given` (None: not given), in
    that order of precedence; the dataclass defaults fill the rest when it is built."""
    registered = args.config_fields
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    values = {}
    if getattr(args, "config", None):
        values.update({k: v for k, v in load_yaml_config(args.config, *registered).items() if k in names})
    values.update({name: getattr(args, name) for name in registered.get(cls, ()) if hasattr(args, name)})
    values.update({k: v for k, v in given.items() if v is not None})
    return values


def config_from(cls, args, **given):
    """`cls` built from its defaults < the YAML of --config < the flags < `given`."""
    values = config_values(cls, args, **given)
    missing = [f for f in dataclasses.fields(cls)
               if f.init and f.name not in values and field_default(f) is dataclasses.MISSING]
    if missing:
        where = f"in {args.config}" if getattr(args, "config", None) else "in a --config FILE.yaml"
        raise ConfigError("; ".join(f"missing {flag_name(f)} (or `{f.name}:` {where})" for f in missing))
    return cls(**values)


def flag_name(f: dataclasses.Field) -> str:
    if f.metadata.get("positional"):
        return f.metadata.get("metavar") or f.name.upper()
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _add_flag(parser, f: dataclasses.Field, hint, *, mark_required: bool) -> None:
    meta = dict(f.metadata)
    if "help" not in meta:
        raise TypeError(f"{f.name}: a config field needs help text (declare it with judge.core.configfile.option)")
    default = field_default(f)
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    arms = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
    base = typing.get_origin(arms[0]) or arms[0]
    kwargs = {"default": argparse.SUPPRESS, "help": _help(meta["help"], default, base, mark_required)}
    for key in ("metavar", "action", "nargs", "choices"):
        if meta.get(key) is not None:
            kwargs[key] = meta[key]
    if base is bool:
        kwargs.setdefault("action", "store_true" if default is False else argparse.BooleanOptionalAction)
    elif base is list:
        if "action" not in kwargs:  # an "append" flag is repeated instead
            kwargs.setdefault("nargs", "+")
        kwargs["type"] = (typing.get_args(arms[0]) or (str,))[0]
    elif base is float:
        kwargs["type"] = finite_float
    elif base in (int, str):
        kwargs["type"] = base
    else:
        raise TypeError(f"{f.name}: no flag for a {hint} field; skip it and parse a flag of the verb's own")
    if meta.get("positional"):
        parser.add_argument(f.name, nargs="?", **kwargs)  # "?": the YAML may give it
        # the same value as a flag, named as every other verb names its input
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name,
                            **{**kwargs, "help": f"the same as {kwargs.get('metavar') or f.name.upper()}"})
    else:
        parser.add_argument(flag_name(f), dest=f.name, **kwargs)
    if meta.get("aliases"):  # older spellings: accepted, not shown
        parser.add_argument(*meta["aliases"], dest=f.name, **{**kwargs, "help": argparse.SUPPRESS})


def _help(text: str, default, base, mark_required: bool) -> str:
    """The help text, ending in the default unless the text already speaks of it."""
    if default is dataclasses.MISSING:
        text += " (required)" if mark_required else ""
    elif "default" not in text and default is not None and not (base is bool and default is False):
        shown = ("on" if default else "off") if base is bool else default
        text += f" (default {shown})"
    return text.replace("%", "%%")

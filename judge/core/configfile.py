"""Config dataclasses and their YAML files, one set of rules for every stage.

A stage's config is a dataclass whose fields are declared with `option(...)`: the default, a help
text and the allowed choices live on the field, and everything else is generated from it (the
CLI flags in `judge.cli.options`, the valid keys of a YAML file here). A YAML file holds field
names as keys; nested sections name flat fields joined by "_" (`lora: {r: 8}` is `lora_r`);
values are converted to the field's type (YAML reads 5e-4 as a string), checked against the
field's choices, and an unknown key is an error naming the file, the valid keys and the closest.
No argparse here: this module is core and the CLI is a layer over it.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import types
import typing
from pathlib import Path

from judge.core.errors import ConfigError, InputError

_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def option(default=dataclasses.MISSING, *, help: str, choices=None, flag: str | None = None,
           aliases: tuple[str, ...] = (), default_factory=dataclasses.MISSING, **cli):
    """A config field with its help text and choices (`flag`: its command-line name when not
    `--field-name`; `aliases`: older spellings of the flag, still accepted, hidden from --help;
    `cli`: extra argparse settings such as `metavar`, `action` or `nargs`)."""
    metadata = {"help": help, "choices": list(choices) if choices else None, "flag": flag, "aliases": tuple(aliases),
                **cli}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def field_default(f: dataclasses.Field):
    """The field's default, MISSING for a required field."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def valid_keys(*classes) -> list[str]:
    return sorted({f.name for cls in classes for f in dataclasses.fields(cls) if f.init})


def yaml_loader():
    """A safe loader with YAML 1.2 booleans (true/false only), so `save_strategy: no` stays "no"."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    bool_tag = "tag:yaml.org,2002:bool"
    Loader.yaml_implicit_resolvers = {first: [(tag, rx) for tag, rx in resolvers if tag != bool_tag]
                                      for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver(bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return Loader


def read_yaml_mapping(path: str | Path) -> dict:
    """The mapping a YAML config file holds (an empty file is an empty mapping)."""
    import yaml

    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=yaml_loader()) or {}
    except FileNotFoundError:
        raise InputError("config file not found", str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8", str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"malformed YAML: {getattr(e, 'problem', e)}", str(path), mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping of config keys", str(path))
    return data


def load_yaml_config(path: str | Path, *classes) -> dict:
    """The fields a YAML file sets for `classes` (one file may configure several dataclasses of a
    verb): {field name: value coerced to the field's type}, choices checked."""
    values = flatten(read_yaml_mapping(path), str(path), *classes)
    choices = {f.name: f.metadata.get("choices") for cls in classes for f in dataclasses.fields(cls)}
    for name, value in values.items():
        if choices.get(name) and value is not None and value not in choices[name]:
            raise ConfigError(f"{path}: {name} must be one of {', '.join(map(str, choices[name]))}, got {value!r}")
    return values


def key_spellings(*classes) -> dict[str, str]:
    """{YAML key: field name} for the keys that are not field names: a field's flag and its aliases
    with '_' for '-' (`teacher_model:` for the field `model` of `--teacher-model`)."""
    out = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            for flag in (f.metadata.get("flag"), *f.metadata.get("aliases", ())):
                if flag and flag.startswith("--") and flag[2:].replace("-", "_") != f.name:
                    out[flag[2:].replace("-", "_")] = f.name
    return out


def flatten(data: dict, source: str, *classes, prefix: str = "") -> dict:
    """{field: value} from a mapping whose nested sections join their keys with "_"; a key may also be
    the field's flag name (or an older spelling of it), with '_' for '-'."""
    hints = {name: hint for cls in classes for name, hint in typing.get_type_hints(cls).items()}
    keys = valid_keys(*classes)
    spellings = key_spellings(*classes)
    out = {}
    given: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        spelled, name = name, (name if name in keys else spellings.get(name, name))
        if name in keys:
            if name in given:  # `base:` and `model:` in one file: which one was meant?
                raise ConfigError(f"{source}: {given[name]!r} and {spelled!r} set the same setting ({name}); keep one")
            given[name] = spelled
            out[name] = coerce(name, value, hints[name], source)
        elif isinstance(value, dict):
            out.update(flatten(value, source, *classes, prefix=f"{name}_"))
        else:
            close = difflib.get_close_matches(name, keys, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ConfigError(f"{source}: unknown key {name!r}; {hint}valid keys: {', '.join(keys)}")
    return out


def finite_float(value) -> float:
    """A float that is a number: NaN or infinity in a budget, a threshold or a timeout would turn
    every comparison against it into "no limit" (`spent > nan` is never true)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def coerce(name: str, value, hint, source: str):
    """`value` as the field's type: YAML reads 5e-4 as a string, --set values arrive as YAML scalars."""
    arms = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in arms:
        return None
    for arm in arms:
        origin = typing.get_origin(arm) or arm
        try:
            if origin is bool and isinstance(value, bool):
                return value
            if origin is bool and str(value).lower() in _BOOLS:
                return _BOOLS[str(value).lower()]
            if origin is int and not isinstance(value, bool) and float(value) == int(float(value)):
                return int(float(value))
            if origin is float and not isinstance(value, bool):
                return finite_float(value)
            if origin is list:
                return [str(v) for v in value] if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
            if origin is dict and isinstance(value, dict):
                return value
            if origin is str or (isinstance(origin, type) and issubclass(origin, enum.Enum)):
                if isinstance(value, str):
                    return value
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
            continue
    raise ConfigError(f"{source}: {name} expects {type_name(hint)}, got {value!r}")


def type_name(hint) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")

"""The judges a server offers: the base model and each LoRA adapter (or, fronting an upstream,
the models it serves), each with the template it is queried with per mode.

A judge's own template comes from its adapter's `judgeforge.json`, so it is asked exactly as it
was trained; for a plain model, `--template` (for that template's mode) or the defaults of
DESIGN.md (judgelm pairwise, prometheus-absolute pointwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from judge.adapters import find_adapter_info
from judge.errors import ConfigError
from judge.templates import DEFAULT_TEMPLATE, Template, get_template

from .errors import Invalid


@dataclass(frozen=True)
class Judge:
    name: str  # what requests put in `judge` and the engine serves as `model`
    templates: dict = field(default_factory=dict)  # mode -> template key
    parent: str | None = None  # the base model of an adapter
    adapter: str | None = None  # the adapter folder

    def template(self, mode: str, requested: str | None = None) -> Template:
        try:
            template = get_template(requested or self.templates[mode])
        except ConfigError as e:
            raise Invalid(str(e), "template") from None
        if template.mode != mode:
            raise Invalid(f"template {template.name} is {template.mode}; this route needs a {mode} template", "template")
        return template


def default_templates(template: str | None = None) -> dict:
    """Mode -> template key for a plain model; `template` replaces the default of its own mode."""
    templates = dict(DEFAULT_TEMPLATE)
    if template:
        chosen = get_template(template)
        templates[chosen.mode] = template
    return {mode: get_template(name).key for mode, name in templates.items()}


def build_judges(base: str, adapters: dict[str, str] | None = None, template: str | None = None) -> list[Judge]:
    """The base judge first (the default for requests that name none), then one per adapter."""
    plain = default_templates(template)
    judges = [Judge(base, plain)]
    for name, path in (adapters or {}).items():
        # a PEFT adapter made elsewhere has no judgeforge.json: it gets the plain model's templates
        info = find_adapter_info(path)
        templates = dict(plain)
        if info:
            templates[get_template(info.template).mode] = get_template(info.template).key
        judges.append(Judge(name, templates, parent=base, adapter=str(path)))
    return judges


def parse_adapters(specs: list[str] | None) -> dict[str, str]:
    """["NAME=PATH", ...] -> {NAME: PATH}; each folder must exist and hold a PEFT adapter."""
    adapters: dict[str, str] = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--adapter takes NAME=PATH, got {spec!r}")
        if name in adapters:
            raise ConfigError(f"adapter name {name!r} is given twice")
        if not (Path(path) / "adapter_config.json").exists():
            raise ConfigError(f"--adapter {spec}: {path} is not a PEFT adapter folder (no adapter_config.json)")
        adapters[name] = path
    return adapters

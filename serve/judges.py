"""The judges a server offers: the base model and each LoRA adapter (or, fronting an upstream,
the models it serves), each with the template it is queried with per mode.

A judge's own template comes from its adapter's `judgeforge.json`, so it is asked exactly as it
was trained; for a plain model, `--template` (for that template's mode) or the defaults of
DESIGN.md (judgelm pairwise, prometheus-absolute pointwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from judge.backends.adapters import AdapterInfo, choose_template, find_adapter_info
from judge.core.errors import ConfigError
from judge.templates import DEFAULT_TEMPLATE, Template, get_template

from serve.errors import Invalid


@dataclass(frozen=True)
class Judge:
    name: str  # what requests put in `judge` and the engine serves as `model`
    templates: dict = field(default_factory=dict)  # mode -> template key
    parent: str | None = None  # the base model of an adapter
    adapter: str | None = None  # the adapter folder

    def template(self, mode: str, requested: str | None = None) -> Template:
        """The request's template, else this judge's own for `mode` (`choose_template`)."""
        try:
            return choose_template(mode, explicit=requested, fallback=self.templates[mode],
                                   context=f"; this route needs a {mode} template")
        except ConfigError as e:
            raise Invalid(str(e), "template") from None


def default_templates(template: str | None = None, info: AdapterInfo | None = None) -> dict:
    """Mode -> template key: the adapter's own template (`info`) for its mode; for the other mode,
    and for a plain model, `template` (serve's --template) where it is of that mode, else the default."""
    return {mode: choose_template(mode, info=info if info and get_template(info.template).mode == mode else None, fallback=template).key
            for mode in DEFAULT_TEMPLATE}


def build_judges(base: str, adapters: dict[str, str] | None = None, template: str | None = None) -> list[Judge]:
    """The base judge first (the default for requests that name none), then one per adapter."""
    judges = [Judge(base, default_templates(template))]
    for name, path in (adapters or {}).items():
        # a PEFT adapter made elsewhere has no judgeforge.json: it gets the plain model's templates
        judges.append(Judge(name, default_templates(template, find_adapter_info(path)), parent=base, adapter=str(path)))
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

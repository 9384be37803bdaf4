"""Template registry: a name (optionally `name@version`) resolves to a Template that renders
prompts and parses replies. Registering a name twice raises; an unknown name lists the known ones."""

from __future__ import annotations

from judge.core.errors import ConfigError, TemplateNotFound
from judge.templates.base import LogprobSlot, Prompt, Template
from judge.templates.builtin import BUILTIN
from judge.templates.parsers import Parsed, winner_from_scores

_REGISTRY: dict[str, Template] = {}

# Defaults when a judge has no template of its own (DESIGN.md, serving section).
DEFAULT_TEMPLATE = {"pairwise": "judgelm", "pointwise": "prometheus-absolute"}


def register(template: Template) -> Template:
    if template.name in _REGISTRY:
        raise ValueError(f"template {template.name!r} is already registered")
    _REGISTRY[template.name] = template
    return template


def get_template(name: str) -> Template:
    """`judgelm` or `judgelm@1`; asking for a version this installation does not have is an error,
    so a judge is never queried with a prompt other than the one it was trained on."""
    base, _, version = name.partition("@")
    if base not in _REGISTRY:
        raise TemplateNotFound(name, list_templates())
    template = _REGISTRY[base]
    if version and version != str(template.version):
        raise ConfigError(
            f"template {name} was requested but this judgeforge has {template.key}; "
            f"the prompt changed between versions, so use the judgeforge release that made the data or adapter"
        )
    return template


def list_templates() -> list[str]:
    return sorted(_REGISTRY)


for _template in BUILTIN:
    register(_template)

__all__ = ["DEFAULT_TEMPLATE", "LogprobSlot", "Parsed", "Prompt", "Template", "get_template", "list_templates",
           "register", "winner_from_scores"]

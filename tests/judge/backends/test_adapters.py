"""The one rule that picks the template a judge is asked with (score, the judge server, the cascade)."""

import pytest

from judge.backends.adapters import AdapterInfo, choose_template
from judge.core.errors import ConfigError
from serve.judges import default_templates


def _info(template: str, mode: str) -> AdapterInfo:
    return AdapterInfo(template=template, template_hash="h", mode=mode, base_model="m")


def test_explicit_name_first_then_the_adapters_own_then_the_flag_then_the_default():
    own = _info("pandalm@1", "pairwise")
    assert choose_template("pairwise", explicit="judgelm", info=own, fallback="prometheus-relative").name == "judgelm"
    assert choose_template("pairwise", info=own, fallback="prometheus-relative").name == "pandalm"
    assert choose_template("pairwise", fallback="prometheus-relative").name == "prometheus-relative"
    assert choose_template("pairwise").name == "judgelm"
    assert choose_template("pointwise", fallback="prometheus-relative").name == "prometheus-absolute"  # other mode


def test_a_template_of_the_wrong_mode_is_refused_not_replaced():
    with pytest.raises(ConfigError, match="template pandalm is pairwise but x.jsonl holds pointwise items"):
        choose_template("pointwise", info=_info("pandalm@1", "pairwise"), context=" but x.jsonl holds pointwise items")
    with pytest.raises(ConfigError, match="judgelm is pairwise"):
        choose_template("pointwise", explicit="judgelm")


def test_a_served_adapter_keeps_its_own_template_for_its_mode_only():
    templates = default_templates("score-100", _info("pandalm@1", "pairwise"))
    assert templates == {"pairwise": "pandalm@1", "pointwise": "score-100@1"}
    assert default_templates() == {"pairwise": "judgelm@1", "pointwise": "prometheus-absolute@1"}

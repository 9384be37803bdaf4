"""scripts/demo.py says which data it runs on: a user's clone has no ../shared/data, and figures
from the 48 example pairs must not pass for PandaLM's."""

from script_module import load_script


def test_without_the_pandalm_set_the_demo_says_it_uses_the_examples_and_where_to_get_pandalm(tmp_path, monkeypatch,
                                                                                              capsys):
    demo = load_script("demo")
    monkeypatch.setattr(demo, "PANDALM", tmp_path / "absent" / "testset-v1.json")
    distill, heldout = demo.prepare_data(tmp_path, n_distill=100, n_heldout=50)
    out = capsys.readouterr().out
    assert "48 example pairs in examples/pairs.jsonl, NOT the PandaLM set" in out
    assert "https://github.com/WeOpenML/PandaLM" in out and "data/testset-v1.json" in out
    assert distill.exists() and heldout.exists()

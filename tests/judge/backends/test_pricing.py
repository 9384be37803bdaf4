"""The price table: lookup by model name, unknown models said plainly, bad entries rejected."""

import pytest

from judge.backends.pricing import PriceTable, estimate_tokens
from judge.core.errors import ConfigError


def test_shipped_table_prices_known_models_and_dated_snapshots():
    table = PriceTable.load()
    assert table.lookup("gpt-4o").input == 2.5
    assert table.lookup("gpt-4o-2024-08-06").entry == "gpt-4o"
    assert table.lookup("gpt-4o-mini-2024-07-18").entry == "gpt-4o-mini"
    assert table.cost("gpt-4o", {"prompt_tokens": 1_000_000, "completion_tokens": 100_000}) == pytest.approx(3.5)


def test_unknown_model_has_unknown_cost(tmp_path):
    table = PriceTable.load()
    assert table.lookup("llama3.1:8b") is None and table.cost("llama3.1:8b", {"prompt_tokens": 5}) is None
    assert "unknown: no price for 'llama3.1:8b'" in table.describe("llama3.1:8b")
    prices = tmp_path / "prices.yaml"
    prices.write_text("llama3.1: {input: 0, output: 0}\n")
    assert PriceTable.load(prices).cost("llama3.1:8b", {"prompt_tokens": 5, "completion_tokens": 5}) == 0


@pytest.mark.parametrize("text", ["m: {input: 1}", "m: {input: -1, output: 2}", "m: {input: one, output: 2}",
                                  "- m", "m: {input: 1, output: 2, cached: 0.5}"])
def test_bad_entries_are_rejected_with_the_file(tmp_path, text):
    prices = tmp_path / "prices.yaml"
    prices.write_text(text + "\n")
    with pytest.raises(ConfigError, match="prices.yaml"):
        PriceTable.load(prices)


def test_missing_table_given_explicitly_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        PriceTable.load(tmp_path / "nope.yaml")


def test_token_estimate_is_characters_over_four():
    assert estimate_tokens("x" * 400) == 100


def test_batch_prices_default_to_half_and_can_be_set_per_model(tmp_path):
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 100_000}
    assert PriceTable.load().cost("gpt-4o", usage, batch=True) == pytest.approx(3.5 / 2)
    prices = tmp_path / "prices.yaml"
    prices.write_text("m: {input: 1, output: 4, batch_input: 0.6, batch_output: 2.4}\n")
    table = PriceTable.load(prices)
    assert table.cost("m", usage, batch=True) == pytest.approx(0.6 + 0.24)
    assert table.cost("m", usage) == pytest.approx(1 + 0.4)
    assert "batch $0.6 / $2.4" in table.describe("m")
    prices.write_text("m: {input: 1, output: 4, batch_input: -1}\n")
    with pytest.raises(ConfigError, match="batch_input"):
        PriceTable.load(prices)

"""judge.core.configfile: config fields with help and choices, and the YAML files that set them (keys
checked against the dataclasses, values coerced to the field types, choices enforced)."""

import dataclasses

import pytest

from judge.core.configfile import coerce, field_default, load_yaml_config, option
from judge.core.errors import ConfigError, InputError


@dataclasses.dataclass
class Stage:
    path: str = option(help="a required path")
    rate: float = option(0.5, help="a float")
    steps: int = option(3, help="an int")
    kind: str = option("a", choices=["a", "b"], help="a choice")
    flag: bool = option(False, help="a switch")
    names: list[str] = option(default_factory=list, help="a list")
    lora_r: int | None = option(None, help="a nested key")


@dataclasses.dataclass
class Other:
    teacher: str | None = option(None, help="a field of a second config of the same verb")


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_option_keeps_help_choices_and_the_default_in_the_field():
    fields = {f.name: f for f in dataclasses.fields(Stage)}
    assert fields["kind"].metadata["choices"] == ["a", "b"] and fields["rate"].metadata["help"] == "a float"
    assert field_default(fields["path"]) is dataclasses.MISSING and field_default(fields["names"]) == []
    assert Stage(path="p").names is not Stage(path="q").names  # a factory, not one shared list


def test_values_are_coerced_to_the_field_types_and_sections_flatten(tmp_path):
    path = write(tmp_path, "path: x\nrate: 5e-4\nsteps: '7'\nflag: 'yes'\nnames: a, b\nlora: {r: 8}\nteacher: t\n")
    assert load_yaml_config(path, Stage, Other) == {"path": "x", "rate": 5e-4, "steps": 7, "flag": True,
                                                    "names": ["a", "b"], "lora_r": 8, "teacher": "t"}


def test_yaml_1_2_booleans_keep_no_a_string(tmp_path):
    assert load_yaml_config(write(tmp_path, "kind: b\npath: no\n"), Stage) == {"kind": "b", "path": "no"}


@pytest.mark.parametrize("text,message", [
    ("stpes: 4\n", "unknown key 'stpes'; did you mean steps? valid keys: flag, kind, lora_r, names, path, rate, steps"),
    ("steps: 2.5\n", "steps expects int, got 2.5"),
    ("flag: maybe\n", "flag expects bool, got 'maybe'"),
    ("kind: c\n", "kind must be one of a, b, got 'c'"),
    ("rate: .nan\n", "rate expects float, got nan"),  # a NaN limit would compare as no limit
    ("rate: inf\n", "rate expects float, got 'inf'"),
    ("steps: .inf\n", "steps expects int, got inf"),
    ("teacher: t\n", "unknown key 'teacher'"),  # Other's key, not Stage's
])
def test_bad_keys_and_values_name_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_yaml_config(path, Stage)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)


def test_unreadable_files_are_input_errors_with_the_line(tmp_path):
    with pytest.raises(InputError, match="config file not found"):
        load_yaml_config(tmp_path / "none.yaml", Stage)
    with pytest.raises(InputError, match=r"c.yaml:2: malformed YAML"):
        load_yaml_config(write(tmp_path, "path: x\n\trate: 1\n"), Stage)
    assert load_yaml_config(write(tmp_path, ""), Stage) == {}


def test_coerce_keeps_none_only_where_the_field_allows_it():
    assert coerce("lora_r", None, int | None, "src") is None
    with pytest.raises(ConfigError, match="src: steps expects int, got None"):
        coerce("steps", None, int, "src")

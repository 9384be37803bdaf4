"""The layers as README's Architecture section draws them, read from the source (every import
statement, those inside functions included, and `importlib.import_module("...")` with a literal name):
the core `judge` never imports `train` or `serve` (its CLI sub-package `judge.cli` aside, which
wires the verbs to all three); `serve` never imports `train`; `train` never imports `serve`. Train
and serve meet only through the adapter folder (judge.backends.adapters)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("judge", "train", "serve")
CLI = "judge.cli"
# layer -> the top-level packages it must not import
FORBIDDEN = {"judge": {"train", "serve"}, "serve": {"train"}, "train": {"serve"}, CLI: set()}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            if node.module:
                found.append((node.lineno, ".".join(base + [node.module])))
            else:  # `from .. import x`: x is a module of that package (or a name in it)
                found += [(node.lineno, ".".join(base + [alias.name])) for alias in node.names]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module" or getattr(node.func, "id", None) == "__import__")):
            found.append((node.lineno, node.args[0].value))
    return found


def layer_of(module: str) -> str:
    return CLI if module == CLI or module.startswith(CLI + ".") else module.split(".")[0]


def broken_rules(root: Path) -> list[str]:
    """`FILE:LINE: LAYER imports MODULE` for each import that crosses the layers the wrong way."""
    broken = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            layer = layer_of(module_name(path, root))
            for line, target in imports_of(path, root):
                if target.split(".")[0] in FORBIDDEN[layer]:
                    broken.append(f"{path.relative_to(root)}:{line}: {layer} imports {target}")
    return sorted(set(broken))


def test_no_module_imports_across_the_layers():
    assert broken_rules(ROOT) == []


# judge's rooms from the ground up: each may import only the rooms below it (and the package's
# face, judge/__init__.py, for __version__). cli, reward and testing sit on top and may import any room.
ROOMS = ["core", "templates", "backends", "scoring", "data", "eval", "distill", "cascade"]
TOP = {"cli", "reward", "testing"}


def room_of(module: str) -> str | None:
    """The room of a judge module (`judge.eval.metrics` -> eval), None for the face and other packages."""
    parts = module.split(".")
    if parts[0] != "judge" or len(parts) < 2 or (len(parts) == 2 and parts[1] not in ROOMS + list(TOP)):
        return None
    return parts[1]


def rooms_broken(root: Path) -> list[str]:
    """`FILE:LINE: ROOM imports OTHER` for each import of a room on the same floor or above."""
    broken = []
    for path in sorted((root / "judge").rglob("*.py")):
        room = room_of(module_name(path, root))
        if room is None or room in TOP:
            continue
        for line, target in imports_of(path, root):
            other = room_of(target)
            if other is not None and other != room and (other in TOP or ROOMS.index(other) > ROOMS.index(room)):
                broken.append(f"{path.relative_to(root)}:{line}: {room} imports {target}")
    return sorted(set(broken))


def test_each_room_imports_only_the_rooms_below_it():
    assert rooms_broken(ROOT) == []


def test_the_package_root_holds_only_its_face():
    modules = sorted(p.name for p in (ROOT / "judge").glob("*.py"))
    assert len(modules) <= 10, modules
    assert {p.name for p in (ROOT / "judge").iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ROOMS + list(TOP))


@pytest.mark.parametrize("files, expected", [
    ({"judge/core/records.py": "from ..eval import metrics\n"}, ["judge/core/records.py:1: core imports judge.eval"]),
    ({"judge/scoring/score.py": "def f():\n    from judge.cascade.cascade import run\n"},
     ["judge/scoring/score.py:2: scoring imports judge.cascade.cascade"]),
    ({"judge/eval/metrics.py": "from judge.core.records import Verdict\nfrom . import predictions\n"}, []),
    ({"judge/backends/hf.py": "from judge.cli import main\n"}, ["judge/backends/hf.py:1: backends imports judge.cli"]),
])
def test_the_room_check_finds_an_import_of_a_room_above(tmp_path, files, expected):
    assert rooms_broken(_tree(tmp_path, files)) == expected


def untested_modules(root: Path) -> list[str]:
    """Modules of judge/, serve/ and train/ with neither a test file where the mirror puts it
    (tests/judge/eval/test_metrics.py for judge/eval/metrics.py) nor a test naming their path."""
    named = "\n".join(p.read_text(encoding="utf-8") for p in (root / "tests").rglob("*.py"))
    missing = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            if path.name in ("__init__.py", "__main__.py"):
                continue
            mirror = root / "tests" / relative.parent / f"test_{path.stem}.py"
            if not mirror.exists() and relative.as_posix() not in named:
                missing.append(relative.as_posix())
    return missing


def test_every_module_has_its_test_file_or_is_named_in_one():
    """tests/ mirrors the packages; a module tested from elsewhere is named there ("Covers: ...")."""
    assert untested_modules(ROOT) == []


def test_the_mirror_check_finds_a_module_without_tests(tmp_path):
    tree = _tree(tmp_path, {"judge/eval/metrics.py": "", "judge/eval/card.py": "", "serve/app.py": "",
                            "tests/judge/eval/test_metrics.py": "", "tests/serve/test_routes.py": '"""Covers: serve/app.py."""'})
    assert untested_modules(tree) == ["judge/eval/card.py"]


def test_the_cli_is_a_sub_package_and_the_old_commands_package_is_gone():
    assert (ROOT / "judge" / "cli" / "__init__.py").is_file() and (ROOT / "judge" / "cli" / "__main__.py").is_file()
    assert not (ROOT / "judge" / "commands").exists() and not (ROOT / "judge" / "cli.py").exists()


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize("files, expected", [
    ({"judge/scoring/score.py": "def f():\n    from train.trainer import train\n"},
     ["judge/scoring/score.py:2: judge imports train.trainer"]),  # inside a function
    ({"judge/backends/x.py": "from ...serve import app\n", "judge/y.py": "from .. import train\n"},
     ["judge/backends/x.py:1: judge imports serve", "judge/y.py:1: judge imports train"]),  # relative, past judge
    ({"serve/a.py": "import train.merge as m\n"}, ["serve/a.py:1: serve imports train.merge"]),
    ({"train/t.py": "import importlib\nimportlib.import_module('serve.server')\n"},
     ["train/t.py:2: train imports serve.server"]),
    ({"judge/cli/train.py": "from train.trainer import train\nfrom serve.server import serve\n"}, []),  # the CLI may
    ({"judge/cli/__init__.py": "from . import serve\n", "judge/x.py": "from .cli import serve\n"},
     []),  # judge.cli.serve is the CLI's own module, not the serve package
    ({"serve/judges.py": "from judge.backends.adapters import find_adapter_info\nfrom .errors import Invalid\n"}, []),
])
def test_the_rule_check_finds_each_kind_of_crossing(tmp_path, files, expected):
    assert broken_rules(_tree(tmp_path, files)) == expected


def _heavy_after(code: str) -> list[str]:
    probe = code + "\nimport sys\nprint(sorted(m for m in ('torch', 'transformers', 'vllm', 'peft') if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT).stdout


def test_the_cli_and_the_judge_api_start_without_torch():
    assert _heavy_after("import judge.cli\njudge.cli.build_parser()").strip() == "[]"
    assert _heavy_after("import serve.app, serve.server, judge.backends.models").strip() == "[]"

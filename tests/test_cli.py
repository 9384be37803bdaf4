"""The CLI contract: --help on every verb, exit codes, file:line messages, no torch/vllm for the
light verbs, nothing half-written on bad input."""

import json
import subprocess
import sys

import pytest

from judge.cli import build_parser, main


def _verbs(parser, prefix=()):
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            if sub._subparsers:
                yield from _verbs(sub, prefix + (name,))
            else:
                yield prefix + (name,)


VERBS = list(_verbs(build_parser()))


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_help_for_every_verb(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([*verb, "--help"])
    assert e.value.code == 0
    assert "usage: judgeforge " + " ".join(verb) in capsys.readouterr().out


def test_bad_usage_exits_2():
    with pytest.raises(SystemExit) as e:
        main(["eval", "--gold", "x.jsonl"])
    assert e.value.code == 2


def test_bad_items_file_exits_2_naming_file_and_line(tmp_path, capsys):
    src = tmp_path / "pairs.jsonl"
    rows = [{"question_id": i, "question_body": "q", "answer1_body": "a", "answer2_body": "b", "score": [1, 2]} for i in range(6)]
    lines = [json.dumps(r) for r in rows] + ['{"question_id": 6, "question_body": "q", "answer1']
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "items.jsonl"
    assert main(["data", "convert", "--from", "judgelm", str(src), "--out", str(out)]) == 2
    assert f"{src}:7: malformed JSON" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl"]


def test_missing_answer2_exits_2(tmp_path, capsys):
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": 1, "winner": "1"}\n')
    pred = tmp_path / "pred.jsonl"
    pred.write_text('{"id": "1", "winner": "1", "raw": "1", "parse_ok": true}\n{"id": "2", "winner": "5"}\n')
    out = tmp_path / "eval"
    assert main(["eval", "--pred", str(pred), "--gold", str(gold), "--out", str(out)]) == 2
    assert f"{pred}:2: winner must be 1, 2 or tie" in capsys.readouterr().err
    assert not out.exists()


def test_light_verbs_do_not_import_torch_or_vllm(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "1", "question": "q", "answer1": "a", "answer2": "b", "winner": "1"}\n'
                    '{"id": "2", "question": "q", "answer1": "a", "answer2": "b", "winner": "2"}\n')
    pred = tmp_path / "pred.jsonl"
    pred.write_text('{"id": "1", "winner": "1", "raw": "1", "parse_ok": true}\n{"id": "2", "winner": "1", "raw": "1", "parse_ok": true}\n')
    code = (
        "import sys\nfrom judge.cli import main\n"
        f"rc = main(['eval', '--pred', {str(pred)!r}, '--gold', {str(gold)!r}, '--out', {str(tmp_path / 'e')!r}, '--bootstrap', '10'])\n"
        "heavy = sorted(m for m in ('torch', 'vllm', 'transformers') if m in sys.modules)\n"
        "print('HEAVY', heavy, rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY [] 0" in out


def test_help_imports_no_heavy_library():
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "judge.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "eval" in result.stdout
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert modules and not modules & {"torch", "vllm", "transformers", "sklearn", "scipy"}

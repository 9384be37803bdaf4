"""The CLI contract: --help on every verb, exit codes, file:line messages, no torch/vllm for the
light verbs, nothing half-written on bad input.

Covers: judge/cli/calibrate.py, judge/cli/data.py, judge/cli/evaluate.py, judge/cli/filter.py,
judge/cli/score.py, judge/core/errors.py."""

import json
import re
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


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--gold", "x.jsonl", "--no-such-flag"])
    assert e.value.code == 2
    # a required setting may come from a flag or from --config, so its absence is found after parsing
    assert main(["score", "--input", "x.jsonl"]) == 2
    assert "missing --out (or `out:` in a --config FILE.yaml)" in capsys.readouterr().err


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


# ---- bad files: exit 2, `FILE:LINE: what is wrong`, no traceback, in every verb ---------------------
PAIR_ROW = '{"id": "1", "question": "q", "answer1": "a", "answer2": "b"}'
SINGLE_ROW = '{"id": "1", "question": "q", "answer": "a", "model": "m"}'
BAD_FILES = {  # kind -> (second line, the message expected after FILE:)
    "not_utf8": (b'{"id": "2", "question": "caf\xe9"}', r":2: not UTF-8"),
    "nan": (b'{"id": "2", "question": "q", "answer1": "a", "answer2": "b", "meta": {"w": NaN}}', r":2: NaN is not JSON"),
    "duplicate": (None, r":2: duplicate id '1' \(first on line 1\)"),
    "empty": (b"", r": no items"),
    "missing": (None, r": file not found"),
}


def _items_argv(verb: str, path: str, tmp_path) -> list[str]:
    out = str(tmp_path / "out")
    return {
        "distill": ["distill", "--input", path, "--mode", "pairwise", "--template", "judgelm", "--teacher-model", "m",
                    "--teacher-base-url", "http://127.0.0.1:9/v1", "--out", out, "--no-progress"],
        "distill-dry-run": ["distill", "--input", path, "--mode", "pairwise", "--template", "judgelm",
                            "--teacher-model", "m", "--out", out, "--dry-run"],
        "score": ["score", "--input", path, "--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                  "--template", "judgelm", "--out", out + ".jsonl"],
        "filter": ["filter", "--input", str(tmp_path / "v.jsonl"), "--items", path, "--out", out],
        "data pair": ["data", "pair", "--answers", path, path + ".other", "--out", out + ".jsonl"],
    }[verb]


def _bad_file(tmp_path, kind: str, row: str):
    path = tmp_path / "items.jsonl"
    second, expected = BAD_FILES[kind]
    if kind == "missing":
        return path, expected
    body = b"" if kind == "empty" else row.encode() + b"\n" + (second or row.encode()) + b"\n"
    path.write_bytes(body)
    return path, expected


@pytest.mark.parametrize("kind", list(BAD_FILES))
@pytest.mark.parametrize("verb", ["distill", "distill-dry-run", "score", "filter", "data pair"])
def test_bad_items_file_exits_2_with_file_and_line_in_every_verb(tmp_path, verb, kind, capsys):
    row = SINGLE_ROW if verb == "data pair" else PAIR_ROW
    path, expected = _bad_file(tmp_path, kind, row)
    (tmp_path / "v.jsonl").write_text('{"id": "1", "order": "ab", "winner": "1", "raw": "1", "parse_ok": true, '
                                      '"template": "judgelm@1"}\n')
    (tmp_path / "items.jsonl.other").write_text(SINGLE_ROW.replace('"m"', '"m2"') + "\n")
    if (verb, kind) == ("filter", "missing"):
        expected = ": the items distill judged are needed"
    assert main(_items_argv(verb, str(path), tmp_path)) == 2  # an exception escaping main fails the test
    err = capsys.readouterr().err
    assert re.search(re.escape(str(path)) + expected, err), err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_source_file_of_data_convert_exits_2(tmp_path, kind, capsys):
    row = '{"question_id": 1, "question_body": "q", "answer1_body": "a", "answer2_body": "b"}'
    path, expected = _bad_file(tmp_path, kind, row)
    expected = expected.replace("no items", "no rows").replace("duplicate id '1' \\(first on line 1\\)", "duplicate id '1'")
    if kind == "nan":
        path.write_text(row + "\n" + row.replace('"q"', "NaN").replace(": 1", ": 2") + "\n")
    assert main(["data", "convert", "--from", "judgelm", str(path), "--out", str(tmp_path / "out.jsonl")]) == 2
    assert re.search(re.escape(str(path)) + expected, capsys.readouterr().err)
    assert not (tmp_path / "out.jsonl").exists()


def test_bom_and_crlf_files_are_read_by_the_verbs(tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    items.write_bytes(b"\xef\xbb\xbf" + (PAIR_ROW + "\r\n" + PAIR_ROW.replace('"1"', '"2"') + "\r\n").encode())
    assert main(["distill", "--input", str(items), "--mode", "pairwise", "--template", "judgelm", "--teacher-model",
                 "gpt-4o", "--out", str(tmp_path / "d"), "--dry-run"]) == 0
    assert "2 items" in capsys.readouterr().out
    source = tmp_path / "judgelm.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + b'{"question_id": 1, "question_body": "q", "answer1_body": "a", '
                       b'"answer2_body": "b", "score": [1, 2]}\r\n')
    assert main(["data", "convert", "--from", "judgelm", str(source), "--out", str(tmp_path / "c.jsonl")]) == 0
    gold, pred = tmp_path / "gold.jsonl", tmp_path / "pred.jsonl"
    gold.write_bytes(b"\xef\xbb\xbf" + b'{"id": "1", "winner": "1"}\r\n{"id": "2", "winner": "2"}\r\n')
    pred.write_bytes(b"\xef\xbb\xbf" + b'{"id": "1", "winner": "1", "raw": "1", "parse_ok": true}\r\n'
                     b'{"id": "2", "winner": "1", "raw": "1", "parse_ok": true}\r\n')
    assert main(["eval", "--pred", str(pred), "--gold", str(gold), "--out", str(tmp_path / "e"), "--bootstrap", "0",
                 "--no-plots"]) == 0
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["accuracy"] == 0.5


def test_data_convert_imports_datasets_only_for_tables_and_never_torch(tmp_path):
    (tmp_path / "j.jsonl").write_text('{"question_id": 1, "question_body": "q", "answer1_body": "a", "answer2_body": "b"}\n')
    (tmp_path / "t.csv").write_text("q,a\nhow?,fine\n")
    code = (
        "import sys\nfrom judge.cli import main\n"
        f"rc = main(['data', 'convert', '--from', 'judgelm', {str(tmp_path / 'j.jsonl')!r}, '--out', {str(tmp_path / 'o1.jsonl')!r}])\n"
        "print('OLD', sorted(m for m in ('torch', 'datasets') if m in sys.modules), rc)\n"
        f"rc = main(['data', 'convert', '--from', 'table', {str(tmp_path / 't.csv')!r}, '--field', 'question=q', "
        f"'--field', 'answer=a', '--out', {str(tmp_path / 'o2.jsonl')!r}])\n"
        "print('TABLE', sorted(m for m in ('torch', 'vllm', 'transformers') if m in sys.modules), rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "OLD [] 0" in out and "TABLE [] 0" in out

"""scripts/gpu_judge_check.py (run by scripts/gpu_check.sh on a GPU machine) dry-run on CPU with a
tiny random model, so the script a GPU session runs once is known to work before it is lent one."""

from script_module import load_script


def test_bos_tokenizer_would_double_bos_if_the_text_were_tokenized_again(smollm2_path):
    script = load_script("gpu_judge_check")
    tok = script.bos_template_tokenizer(str(smollm2_path))
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    naive = tok(text)["input_ids"]
    assert naive[:2] == [tok.bos_token_id, tok.bos_token_id]  # the bug the check guards against
    assert script.token_id_check(str(smollm2_path))["ok"]


def test_verdict_mode_dry_run_parses_every_pair(smollm2_path):
    result = load_script("gpu_judge_check").judge_bench(str(smollm2_path), n_pairs=4, tiny=True, batch_size=4)
    assert result["pairs"] == 4 and result["parsed_share"] == 1.0

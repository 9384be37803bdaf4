"""A model folder's tokenizer read from its files alone (tokenizer.json through the `tokenizers`
package; tokenizer_config.json and chat_template.jinja for the chat template and its special tokens,
rendered by transformers' own jinja renderer), for processes that only count prompt tokens: the
judge API measures every prompt before it reaches the engine, and `transformers.AutoTokenizer`
would import torch into it (hundreds of MB and seconds at start). Through `encode_prompt` it gives
the ids AutoTokenizer gives (tests/judge/backends/test_tokenizer_files.py compares them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from judge.backends.models import check_model_path
from judge.core.errors import ConfigError

FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
# The named special tokens transformers hands a chat template (PreTrainedTokenizerBase.special_tokens_map).
SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class TokenizerFiles:
    """What `encode_prompt` asks of a tokenizer: `chat_template`, `apply_chat_template(messages,
    tokenize=False, add_generation_prompt=...)` and `tokenizer(text, add_special_tokens=...)`."""

    def __init__(self, tokenizer, chat_template: str | None, special_tokens: dict[str, str]):
        self.tokenizer, self.chat_template, self.special_tokens = tokenizer, chat_template, special_tokens

    def apply_chat_template(self, messages: list[dict], *, tokenize: bool = False,
                            add_generation_prompt: bool = False) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template  # no torch behind it

        if tokenize:
            raise ValueError("TokenizerFiles renders text only; tokenize it with tokenizer(text)")
        rendered, _ = render_jinja_template([messages], chat_template=self.chat_template,
                                            add_generation_prompt=add_generation_prompt, **self.special_tokens)
        return rendered[0]

    def __call__(self, text: str, *, add_special_tokens: bool = True) -> dict:
        return {"input_ids": self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids}


def load_tokenizer_files(path: str | os.PathLike) -> TokenizerFiles:
    """The tokenizer of a model folder (or a hub id, from the local cache or downloaded when allowed).
    A folder without tokenizer.json (a slow tokenizer only) is a ConfigError naming it."""
    from tokenizers import Tokenizer

    folder = _folder(path)
    if not (folder / "tokenizer.json").exists():
        raise ConfigError(f"{path} has no tokenizer.json (save the tokenizer with transformers to write one)")
    config = _read_json(folder / "tokenizer_config.json")
    special = {**_read_json(folder / "special_tokens_map.json"), **config}
    tokens = {name: _token_text(special[name]) for name in SPECIAL_TOKENS if special.get(name) is not None}
    template_file = folder / "chat_template.jinja"  # as in transformers: the file wins over the config entry
    template = template_file.read_text(encoding="utf-8") if template_file.exists() else config.get("chat_template")
    return TokenizerFiles(Tokenizer.from_file(str(folder / "tokenizer.json")), _default_template(template, path), tokens)


def _folder(path: str | os.PathLike) -> Path:
    if Path(path).is_dir():
        return Path(path)
    check_model_path(path, "tokenizer")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(path), allow_patterns=list(FILES)))
    except Exception as e:  # huggingface_hub raises several kinds (offline, not found, network)
        raise ConfigError(f"cannot load the tokenizer from {path}: {e}") from None


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _token_text(token) -> str:
    """A special token as saved: a string, or an AddedToken's fields ({"content": ...})."""
    return token["content"] if isinstance(token, dict) else str(token)


def _default_template(template, path) -> str | None:
    """Several named templates (a list of {name, template}, or a dict): the one transformers uses by
    default, named "default"."""
    if template is None or isinstance(template, str):
        return template
    named = template if isinstance(template, dict) else {t["name"]: t["template"] for t in template}
    if "default" not in named:
        raise ConfigError(f"{path}: the tokenizer has named chat templates ({', '.join(named)}) but no 'default'")
    return named["default"]

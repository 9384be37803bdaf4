import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data; the test is skipped when the checkout has no ../shared beside it."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is absent)")
    return path


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The converted SmolLM2 folder (`make model`); integration tests skip without it."""
    path = Path(os.environ.get("JUDGEFORGE_MODEL", ROOT / "models" / "SmolLM2-135M-Instruct"))
    if not (path / "config.json").exists():
        pytest.skip(f"SmolLM2 not prepared at {path}: run `make model`")
    return path

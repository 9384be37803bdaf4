"""Where tests find the public data of ../shared/data (skipping cleanly when it is absent)."""

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

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.swtest import Proj


@pytest.fixture
def proj(tmp_path: Path) -> Proj:
    return Proj(tmp_path)

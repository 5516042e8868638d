import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_EO = ROOT.parent / "shared" / "data" / "eo"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own position cache, so tests never see a stale one."""
    cache = tmp_path_factory.getbasetemp() / "orbit-cache"
    monkeypatch.setenv("EDGESPACECOM_CACHE", str(cache))
    yield

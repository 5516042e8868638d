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


@pytest.fixture(scope="session")
def scene():
    """The Bellingham 1 test scene (1024², RGB, uint8)."""
    from dlrc_agents.data import read_rgb

    return read_rgb(SHARED_EO / "rgb" / "test" / "inria_bellingham1_1024.tif")


def crops(scene, offsets, size=256):
    """{satellite: (1, 3, size, size) tensor in [0, 1]} of the scene at ``offsets`` [(y, x)]."""
    import torch

    return {
        sat: torch.from_numpy(scene[y:y + size, x:x + size].transpose(2, 0, 1).copy()).float()[None] / 255.0
        for sat, (y, x) in enumerate(offsets)
    }

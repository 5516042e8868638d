import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def eo(path: str) -> Path:
    """The local file of a registered data file (``rgb/test/inria_bellingham1_1024.tif``): the
    tests use only files shipped with the package, so they run on a clone with nothing beside it."""
    from edgespacecom.datasets import registry

    return registry().path(f"eo:{path}")


@pytest.fixture(scope="session")
def eo_mirror() -> Path:
    """A full local mirror of the EO data, passed explicitly ($EDGESPACECOM_TEST_MIRROR); tests that
    need it skip, saying why, where it is not given (a user's clone has none)."""
    value = os.environ.get("EDGESPACECOM_TEST_MIRROR")
    if not value or not Path(value).is_dir():
        pytest.skip("needs the full EO data mirror: set EDGESPACECOM_TEST_MIRROR=DIR (.ci/run does)")
    return Path(value)


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs one worker per core) each worker's torch keeps to one
    thread, so the workers do not oversubscribe the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own position cache, so tests never see a stale one."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("EDGESPACECOM_CACHE", str(base / "orbit-cache"))
    monkeypatch.setenv("EDGESPACECOM_DATA", str(base / "data-cache"))  # never the user's data cache
    monkeypatch.setenv("EDGESPACECOM_WEIGHTS", str(base / "weights"))
    yield


@pytest.fixture(scope="session")
def scene():
    """The Bellingham 1 test scene (1024², RGB, uint8)."""
    from dlrc_agents.common.data import read_rgb

    return read_rgb(eo("rgb/test/inria_bellingham1_1024.tif"))


def crops(scene, offsets, size=256):
    """{satellite: (1, 3, size, size) tensor in [0, 1]} of the scene at ``offsets`` [(y, x)]."""
    import torch

    return {
        sat: torch.from_numpy(scene[y:y + size, x:x + size].transpose(2, 0, 1).copy()).float()[None] / 255.0
        for sat, (y, x) in enumerate(offsets)
    }


def random_checkpoint(path, architecture: str = "bmshj2018-hyperprior", seed: int = 0, lmbda: float = 0.0067):
    """A small (N=32, M=48) randomly initialised model of ``architecture`` exported as a checkpoint."""
    import torch

    from dlrc_agents.codecs.registry import build_model, export_checkpoint

    torch.manual_seed(seed)
    model = build_model(architecture, 32, 48)
    model.update(force=True)
    return export_checkpoint(model, path, architecture=architecture, N=32, M=48, lmbda=lmbda, steps=0, seed=0, data=[])

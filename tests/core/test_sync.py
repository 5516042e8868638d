"""Sync-round formulas on a hand-made flow table, and worker-count invariance."""

import numpy as np
import pytest

from edgespacecom.config import ConstellationConfig, ISLConfig, LinkConfig, NetworkConfig, TimeConfig, WalkerConfig
from edgespacecom.orbits import load_ephemeris
from edgespacecom.participants import select_participants
from edgespacecom.sync import SyncRounds, compute_sync_rounds


def test_round_formulas_by_hand():
    # 3 participants, flows s->d (ms): 0->1 4, 0->2 9, 1->0 5, 1->2 2, 2->0 3, 2->1 7
    flow = np.array([[0, 4, 9], [5, 0, 2], [3, 7, 0]], dtype=float)[None, None] * 1e-3
    z = np.zeros(1, dtype=int)
    r = SyncRounds(np.array([[0, 1, 2]]), flow, flow, np.ones_like(flow, dtype=int), z, z, z, z, z, z, control_s=0.03)
    np.testing.assert_allclose(r.t_send_s[0, 0], [9e-3, 5e-3, 7e-3])
    np.testing.assert_allclose(r.t_recv_s[0, 0], [5e-3, 7e-3, 9e-3])
    np.testing.assert_allclose(r.t_sync_s[0, 0], [0.039, 0.037, 0.039])
    assert r.t_round_s[0, 0] == pytest.approx(0.039)


@pytest.fixture(scope="module")
def window():
    tc = TimeConfig(duration_h=0.5, step_s=60.0)
    pos = load_ephemeris(ConstellationConfig(walker=WalkerConfig()), tc).positions_km
    return pos, select_participants(pos, 48.0, 11.0, 8)


def test_workers_give_identical_results(window):
    pos, part = window
    args = (pos, part, [2, 128], ISLConfig(), LinkConfig(), NetworkConfig())
    one = compute_sync_rounds(*args, workers=1, progress=False)
    two = compute_sync_rounds(*args, workers=2, progress=False)
    for field in ("t_flow_s", "t_path_s", "hops", "n_links", "n_setup", "n_teardown", "n_setup_participants"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    assert one.n_setup[0] == -1 and np.all(one.n_setup[1:] >= 0)


def test_sync_round_physics_bounds(window):
    """T_sync ≥ t_ctrl + the light time to the farthest participant; larger payloads are slower."""
    pos, part = window
    net = NetworkConfig()
    r = compute_sync_rounds(pos, part, [2, 128], ISLConfig(), LinkConfig(), net, workers=1, progress=False)
    for k in range(len(pos)):
        p = pos[k][part[k]]
        farthest = np.linalg.norm(p[:, None] - p[None], axis=-1).max(axis=1) * 1e3 / net.speed_of_light_m_s
        assert np.all(r.t_sync_s[k, 0] >= farthest + net.control_s - 1e-12)
    assert np.all(r.t_round_s[:, 1] > r.t_round_s[:, 0])


def test_paper_noise_model_slows_sync(window):
    pos, part = window
    fast = compute_sync_rounds(pos[:5], part[:5], [128], ISLConfig(), LinkConfig(), NetworkConfig(), progress=False)
    slow = compute_sync_rounds(
        pos[:5], part[:5], [128], ISLConfig(), LinkConfig(noise_model="paper_as_printed"), NetworkConfig(), progress=False
    )
    assert np.all(slow.t_round_s > fast.t_round_s + 0.05)

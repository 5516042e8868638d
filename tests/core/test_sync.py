"""Sync-round formulas on a hand-made flow table, and worker-count invariance."""

import numpy as np
import pytest

from edgespacecom.config import ConstellationConfig, ISLConfig, LinkConfig, NetworkConfig, TimeConfig, WalkerConfig
from edgespacecom.orbits import load_ephemeris
from edgespacecom.participants import select_participants
from edgespacecom.sync import SyncRounds, chain_times, compute_sync_rounds


def test_round_formulas_by_hand():
    # 3 participants, flows s->d (ms): 0->1 4, 0->2 9, 1->0 5, 1->2 2, 2->0 3, 2->1 7
    flow = np.array([[0, 4, 9], [5, 0, 2], [3, 7, 0]], dtype=float)[None, None] * 1e-3
    z = np.zeros(1, dtype=int)
    r = SyncRounds(np.array([[0, 1, 2]]), flow, flow, np.ones_like(flow, dtype=int), z, z, z, z, z, z, control_s=0.03)
    np.testing.assert_allclose(r.t_send_s[0, 0], [9e-3, 5e-3, 7e-3])
    np.testing.assert_allclose(r.t_recv_s[0, 0], [5e-3, 7e-3, 9e-3])
    np.testing.assert_allclose(r.t_sync_s[0, 0], [0.039, 0.037, 0.039])
    assert r.t_round_s[0, 0] == pytest.approx(0.039)


def test_priority_chain_by_hand():
    # the same flows, as a predict-mode chain with 10 ms of coding per stream:
    # done(0) = 10; done(1) = 10 + 4 + 10 = 24; done(2) = max(10 + 9, 24 + 2) + 10 = 36 (ms)
    # T_sync(0) = max(10, 10 + 4, 10 + 9) = 19, T_sync(1) = max(24, 24 + 2) = 26, T_sync(2) = 36; + t_ctrl
    flow = np.array([[0, 4, 9], [5, 0, 2], [3, 7, 0]], dtype=float)[None, None] * 1e-3
    z = np.zeros(1, dtype=int)
    r = SyncRounds(np.array([[0, 1, 2]]), flow, flow, np.ones_like(flow, dtype=int), z, z, z, z, z, z, control_s=0.03,
                   exchange="priority_chain", coding_s=0.01)
    np.testing.assert_allclose(r.t_sync_s[0, 0], [0.049, 0.056, 0.066])
    assert r.t_round_s[0, 0] == pytest.approx(0.066)


def _chain_by_events(flow: np.ndarray, coding: float) -> np.ndarray:
    """Independent reference: an event-by-event simulation of the chain (each stream's arrival is an event)."""
    import heapq

    n = len(flow)
    waiting = {r: set(range(r)) for r in range(n)}
    done, sent = {}, {}
    events = [(coding, 0, "done")]
    while events:
        t, r, what = heapq.heappop(events)
        if what == "done":
            done[r] = t
            sent[r] = max([t] + [t + flow[r, d] for d in range(r + 1, n)])
            for d in range(r + 1, n):
                heapq.heappush(events, (t + flow[r, d], d, f"from{r}"))
        else:
            waiting[r].discard(int(what[4:]))
            if not waiting[r]:
                heapq.heappush(events, (t + coding, r, "done"))
    return np.array([sent[r] for r in range(n)])


@pytest.mark.parametrize("seed", range(5))
def test_priority_chain_against_events(seed):
    rng = np.random.default_rng(seed)
    n = 2 + seed
    flow = rng.uniform(1e-3, 0.2, (n, n))
    np.fill_diagonal(flow, 0.0)
    np.testing.assert_allclose(chain_times(flow, 0.05, 0.0), _chain_by_events(flow, 0.05), rtol=1e-12)
    # equal flows f: T_round = n·t_code + (n − 1)·f + t_ctrl
    equal = np.full((n, n), 0.02)
    assert chain_times(equal, 0.05, 0.03).max() == pytest.approx(n * 0.05 + (n - 1) * 0.02 + 0.03)


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


def test_a_priority_chain_run_matches_its_own_flows(tmp_path):
    """kind: sync with exchange priority_chain: every round's T_round equals the chain recomputed from the
    run's own flow table (flows.parquet), and is at least n·t_code + t_ctrl."""
    import pandas as pd

    from edgespacecom.config import validate_scenario
    from edgespacecom.runner import run_scenario
    from edgespacecom.sync import chain_times

    s = validate_scenario({"kind": "sync", "name": "chain", "time": {"duration_h": 0.1, "step_s": 60},
                           "constellation": {"walker": {"total": 200, "planes": 10}},
                           "participants": {"count": 4}, "outputs": {"view": False},
                           "sync": {"payloads_kib": [4.0], "exchange": "priority_chain", "coding_s": 0.1}})
    summary, _ = run_scenario(s, tmp_path)
    assert summary["exchange"] == "priority_chain" and summary["coding_s"] == 0.1
    rounds = pd.read_csv(tmp_path / "sync_rounds.csv")
    flows = pd.read_parquet(tmp_path / "flows.parquet")
    sats = pd.read_csv(tmp_path / "sync_satellites.csv")
    for k, r in rounds.groupby("sample"):
        order = list(sats[sats["sample"] == k]["satellite"])  # participants in selection order
        f = flows[flows["sample"] == k].set_index(["source", "destination"])["t_flow_s"]
        t = np.array([[0.0 if a == b else f[(a, b)] for b in order] for a in order])
        assert r["t_round_s"].iloc[0] == pytest.approx(chain_times(t, 0.1, 0.03).max(), abs=2e-9)  # CSV: 9 decimals
    assert (rounds["t_round_s"] >= 4 * 0.1 + 0.03).all()

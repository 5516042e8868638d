"""Many regions at once: the shared-capacity round against hand-solved cases, paths, targets, and
one region through `regions:` against today's single-region run."""

import numpy as np
import pandas as pd
import pytest

from edgespacecom.config import ConstellationConfig, LinkConfig, NetworkConfig, TimeConfig, WalkerConfig, validate_scenario
from edgespacecom.contention import Transmissions, simulate
from edgespacecom.links import hop_delay_s
from edgespacecom.orbits import load_ephemeris
from edgespacecom.participants import select_participants
from edgespacecom.regions import is_land, region_targets
from edgespacecom.routing import route_participants
from edgespacecom.runner import run_scenario
from edgespacecom.topology import isl_links


def _tx(hops, regions):
    """hops: (flow, resource, work, propagation) in path order per flow."""
    h = np.array(hops, dtype=float)
    return Transmissions(h[:, 0].astype(int), h[:, 1].astype(int), h[:, 2], h[:, 3], np.array(regions))


def test_two_regions_on_one_link_share_it_equally_until_one_ends():
    tx = _tx([(0, 7, 1.0, 0.1), (1, 7, 3.0, 0.2)], [0, 1])
    got = simulate(tx, relay_s=0.0, alone_s=np.array([1.1, 3.2]))
    np.testing.assert_allclose(got.done_s, [2.0 + 0.1, 4.0 + 0.2])  # 1/2 each until t = 2, then B alone
    assert got.simulated.all() and got.peak_sessions == {7: 2} and got.busy_s[7] == pytest.approx(4.0)


def test_max_min_among_three_regions():
    tx = _tx([(0, 1, 1.0, 0.0), (1, 1, 2.0, 0.0), (2, 1, 3.0, 0.0)], [0, 1, 2])
    got = simulate(tx, 0.0, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(got.done_s, [3.0, 5.0, 6.0])  # rates 1/3, then 1/2, then 1


def test_a_region_alone_is_not_slowed_by_its_own_flows():
    """Flows of one region on one link keep their times (the paper's parallel unicast); only another
    region's session splits the link."""
    alone = np.array([1.0, 2.0, 0.5])
    tx = _tx([(0, 4, 1.0, 0.0), (1, 4, 2.0, 0.0), (2, 9, 0.5, 0.0)], [0, 0, 1])
    got = simulate(tx, 0.0, alone)
    np.testing.assert_array_equal(got.done_s, alone)  # exactly the inputs: nothing is shared
    assert not got.simulated.any()


def test_store_and_forward_hop_joins_a_busy_link():
    """A: hop on r1 (work 1, light 0.5), relay 0.5, then r2 (work 2, light 0.25); B: r2 (work 3) from t = 0.
    B runs alone until A arrives at t = 2 (1 s of work left), then both at 1/2: B ends at t = 4, A has
    1 s left at full rate and ends at t = 5 (+ 0.25)."""
    tx = _tx([(0, 1, 1.0, 0.5), (0, 2, 2.0, 0.25), (1, 2, 3.0, 0.0)], [0, 1])
    got = simulate(tx, relay_s=0.5, alone_s=np.array([4.25, 3.0]))
    np.testing.assert_allclose(got.done_s, [5.25, 4.0])


def test_paths_follow_dijkstra_and_sum_to_its_delays():
    pos = load_ephemeris(ConstellationConfig(walker=WalkerConfig()), TimeConfig(duration_h=0.05, step_s=60)).positions_km
    part = select_participants(pos, 30.5, 114.3, 8)[0]
    links = isl_links(pos[0], 3000.0, 80.0)
    net, link = NetworkConfig(), LinkConfig()
    paths = []
    table = route_participants(pos[0], links, part, [2.0, 128.0], link, net, paths)
    for p, payload in enumerate([2.0, 128.0]):
        e = paths[p]
        for a in range(8):
            for b in range(8):
                if a == b:
                    continue
                rows = e[(e[:, 0] == a) & (e[:, 1] == b)]
                rows = rows[np.argsort(rows[:, 2])]
                assert len(rows) == table.hops[p, a, b] and rows[0, 3] == part[a] and rows[-1, 4] == part[b]
                np.testing.assert_array_equal(rows[1:, 3], rows[:-1, 4])  # a chain
                d = np.linalg.norm(pos[0][rows[:, 3]] - pos[0][rows[:, 4]], axis=-1)
                t_flow = hop_delay_s(d, payload, link, net.speed_of_light_m_s).sum() + (len(rows) - 1) * net.relay_s
                assert t_flow == pytest.approx(table.t_flow_s[p, a, b], rel=1e-12)


def test_targets_from_a_list_and_a_land_grid():
    assert is_land(30.5, 114.3) and is_land(48.1, 11.6) and not is_land(0.0, -30.0) and not is_land(-40.0, -120.0)
    grid = validate_scenario({"name": "g", "kind": "sync", "regions": {"step_deg": 30}}).regions
    targets = region_targets(grid)
    assert 0 < len(targets) < 5 * 12 and all(is_land(t.lat_deg, t.lon_deg) for t in targets)
    listed = validate_scenario({"name": "l", "kind": "sync", "regions": [{"lat_deg": 1, "lon_deg": -2},
                                                                        {"lat_deg": 3, "lon_deg": 4, "name": "x"}]})
    assert [t.name for t in region_targets(listed.regions)] == ["1N_2W", "x"]
    with pytest.raises(ValueError, match="not both"):
        validate_scenario({"name": "b", "kind": "sync", "region": {"lat_deg": 1}, "regions": [{"lat_deg": 1, "lon_deg": 2}]})


BASE = {"name": "r", "kind": "sync", "time": {"start": "2026-01-01T00:00:00Z", "duration_h": 0.25, "step_s": 60},
        "participants": {"count": 8}, "sync": {"payloads_kib": [2, 128]}, "compute": {"workers": 1, "chunk_samples": 6}}


def test_one_region_through_regions_gives_todays_numbers(tmp_path):
    run_scenario(validate_scenario({**BASE, "region": {"lat_deg": 30.5, "lon_deg": 114.3}}), tmp_path / "one")
    summary, _ = run_scenario(validate_scenario({**BASE, "regions": [{"lat_deg": 30.5, "lon_deg": 114.3}]}),
                              tmp_path / "many")
    one = pd.read_csv(tmp_path / "one" / "sync_rounds.csv")
    many = pd.read_csv(tmp_path / "many" / "region_rounds.csv")
    np.testing.assert_array_equal(many["t_round_s"], one["t_round_s"])
    np.testing.assert_array_equal(many["t_round_alone_s"], one["t_round_s"])
    assert summary["flows_on_shared_links_share"] == 0 and summary["slowdown"]["128"]["max"] == 1.0


def test_neighbouring_regions_slow_each_other_only_through_shared_links(tmp_path):
    regions = [{"lat_deg": 30.5, "lon_deg": 114.3}, {"lat_deg": 35.0, "lon_deg": 120.0}, {"lat_deg": -33.9, "lon_deg": 18.4}]
    summary, _ = run_scenario(validate_scenario({**BASE, "regions": regions}), tmp_path / "r")
    rounds = pd.read_csv(tmp_path / "r" / "region_rounds.csv")
    assert (rounds["t_round_s"] >= rounds["t_round_alone_s"] - 1e-12).all()
    cape = rounds[rounds["region"] == "33.9S_18.4E"]
    np.testing.assert_array_equal(cape["t_round_s"], cape["t_round_alone_s"])  # far away: nobody shares its links
    assert summary["slowdown"]["128"]["max"] > 1.0 and summary["peak_sessions_on_a_link"] >= 2
    load = pd.read_parquet(tmp_path / "r" / "link_load.parquet")
    shared = load[load["regions"] > 1]
    assert len(shared) and (shared["busy_s"] > 0).all() and (load["utilisation"] > 0).all()


def test_the_many_regions_scenario_runs_on_a_short_window(tmp_path):
    from pathlib import Path

    from edgespacecom.config import load_scenario

    path = Path(__file__).resolve().parents[2] / "edgespacecom" / "scenarios" / "many_regions.yaml"
    sc = load_scenario(path, overrides=["time.duration_h=0.05", "compute.workers=1"])
    summary, _ = run_scenario(sc, tmp_path / "m")
    assert summary["regions"] == 100 and summary["samples"] == 3 and summary["unreachable_flows"] == 0
    per_region = pd.read_csv(tmp_path / "m" / "regions.csv")
    assert len(per_region) == 100 and (per_region["slowdown_mean_128"] >= 1.0 - 1e-12).all()
    assert summary["slowdown"]["128"]["max"] >= summary["slowdown"]["2"]["max"] >= 1.0

"""Routing: Dijkstra against brute-force path enumeration; pruned graph against the full graph."""

import itertools

import networkx as nx
import numpy as np
import pytest

from edgespacecom.config import ConstellationConfig, LinkConfig, NetworkConfig, TimeConfig, WalkerConfig
from edgespacecom.links import hop_delay_s
from edgespacecom.orbits import load_ephemeris
from edgespacecom.participants import select_participants
from edgespacecom.routing import route_participants, route_participants_full
from edgespacecom.topology import isl_links

LINK = LinkConfig()


def _brute_force(pos, links, participants, payload, net):
    """Enumerate every simple path; return the optimal pair's t_flow and hop count."""
    g = nx.Graph()
    g.add_edges_from(zip(links.i.tolist(), links.j.tolist()))
    n = len(participants)
    best_flow = np.full((n, n), np.inf)
    best_hops = np.full((n, n), -1)
    for a, b in itertools.permutations(range(n), 2):
        s, d = int(participants[a]), int(participants[b])
        if s not in g or d not in g:
            continue
        best_objective = np.inf
        for path in nx.all_simple_paths(g, s, d):
            dist = np.linalg.norm(pos[path[1:]] - pos[path[:-1]], axis=1)
            t_path = float(np.sum(hop_delay_s(dist, payload, LINK, net.speed_of_light_m_s)))
            hops = len(path) - 1
            t_flow = t_path + (hops - 1) * net.relay_s
            objective = t_flow if net.routing_objective == "flow_delay" else t_path
            if objective < best_objective:
                best_objective, best_flow[a, b], best_hops[a, b] = objective, t_flow, hops
    return best_flow, best_hops


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("objective", ["flow_delay", "path_delay"])
def test_dijkstra_equals_brute_force_on_random_graphs(seed, objective):
    rng = np.random.default_rng(seed)
    n_nodes = 11
    # random points on a 7000 km shell patch, links up to 2500 km
    direction = rng.normal(size=(n_nodes, 3)) * [0.25, 0.25, 1.0]
    pos = 6928.0 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    pos[:, 2] = np.abs(pos[:, 2])
    links = isl_links(pos, 2500.0, 80.0)
    participants = np.sort(rng.choice(n_nodes, size=4, replace=False))
    net = NetworkConfig(routing_objective=objective, relay_s=rng.choice([0.0, 5e-4, 5e-3]))
    for payload in (2.0, 128.0, 4096.0):
        want, want_hops = _brute_force(pos, links, participants, payload, net)
        got = route_participants_full(pos, links, participants, [payload], LINK, net)
        off = ~np.eye(len(participants), dtype=bool)
        np.testing.assert_allclose(got.t_flow_s[0][off], want[off], rtol=1e-12)
        np.testing.assert_array_equal(got.hops[0][off], want_hops[off])
        pruned = route_participants(pos, links, participants, [payload], LINK, net)
        np.testing.assert_allclose(pruned.t_flow_s[0][off], want[off], rtol=1e-12)


@pytest.fixture(scope="module")
def constellation():
    tc = TimeConfig(duration_h=12.0, step_s=60.0)
    return load_ephemeris(ConstellationConfig(walker=WalkerConfig()), tc).positions_km


@pytest.mark.parametrize("selection", ["nearest", "compact"])
def test_pruned_routing_equals_full_graph_on_the_constellation(constellation, selection):
    net = NetworkConfig()
    payloads = [2.0, 128.0, 2048.0]
    samples = [0, 137, 411, 719]
    part = select_participants(constellation[samples], 30.5, 114.3, 8, selection)
    for row, k in enumerate(samples):
        links = isl_links(constellation[k], 3000.0, 80.0)
        full = route_participants_full(constellation[k], links, part[row], payloads, LINK, net)
        fast = route_participants(constellation[k], links, part[row], payloads, LINK, net)
        np.testing.assert_allclose(fast.t_flow_s, full.t_flow_s, rtol=1e-12)
        np.testing.assert_allclose(fast.t_path_s, full.t_path_s, rtol=1e-12)
        np.testing.assert_array_equal(fast.hops, full.hops)
        assert fast.routing_nodes < len(constellation[k])
        small = route_participants(constellation[k], links, part[row], [2.0], LINK, net)
        assert small.routing_nodes < 100  # small payloads: the ellipsoids hug the participants


def test_slow_links_route_exactly_and_stay_fast(constellation):
    """The printed noise model makes links ~10⁴ times slower: the ellipsoid bound then covers the whole
    constellation. Flows still equal NetworkX's full-graph Dijkstra on sampled instants, and the pruned
    router (SciPy's csgraph, its searches stopped at the bounds it proved) costs at most 3× the
    thermal model's time on the same instants."""
    import time

    net = NetworkConfig()
    slow = LinkConfig(noise_model="paper_as_printed")
    samples = [3, 200, 555]
    part = select_participants(constellation[samples], 30.5, 114.3, 8, "nearest")
    took = {}
    for name, link in (("thermal", LINK), ("printed", slow)):
        start = time.perf_counter()
        for row, k in enumerate(samples):
            links = isl_links(constellation[k], 3000.0, 80.0)
            route_participants(constellation[k], links, part[row], [2.0, 128.0], link, net)
        took[name] = time.perf_counter() - start
    assert took["printed"] < 3 * took["thermal"] + 0.05, took
    for row, k in enumerate(samples):
        links = isl_links(constellation[k], 3000.0, 80.0)
        full = route_participants_full(constellation[k], links, part[row], [2.0, 128.0], slow, net)
        fast = route_participants(constellation[k], links, part[row], [2.0, 128.0], slow, net)
        np.testing.assert_allclose(fast.t_flow_s, full.t_flow_s, rtol=1e-12)
        np.testing.assert_array_equal(fast.hops, full.hops)


def test_far_apart_participants_need_multihop(constellation):
    """Participants spread around the globe: paths are multi-hop and still exact."""
    net = NetworkConfig()
    k = 5
    links = isl_links(constellation[k], 3000.0, 80.0)
    part = np.array([0, 250, 500, 750])
    full = route_participants_full(constellation[k], links, part, [8.0], LINK, net)
    fast = route_participants(constellation[k], links, part, [8.0], LINK, net)
    np.testing.assert_allclose(fast.t_flow_s, full.t_flow_s, rtol=1e-12)
    assert full.hops.max() >= 4


def test_participants_are_nearest_to_region(constellation):
    from edgespacecom.participants import region_point_itrs_km

    part = select_participants(constellation[:3], 30.5, 114.3, 8)
    ground = region_point_itrs_km(30.5, 114.3)
    for k in range(3):
        unit = constellation[k] / np.linalg.norm(constellation[k], axis=1, keepdims=True)
        angle = np.arccos(np.clip(unit @ (ground / np.linalg.norm(ground)), -1, 1))
        assert set(part[k]) == set(np.argsort(angle)[:8])

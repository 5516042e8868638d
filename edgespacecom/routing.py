"""Minimum-delay routing among the participants with Dijkstra (SciPy csgraph; NetworkX as the reference).

Edge weight of an ISL for payload S (objective ``flow_delay``, the default):
``w = d/c + S_bit/B(d) + t_relay``, so the Dijkstra distance D of a path of H hops
is t_path + H·t_relay and the flow delay t_flow = t_path + (H-1)·t_relay = D - t_relay
is minimised exactly. With ``path_delay`` (the paper's literal reading) the
weight is t_hop alone: Dijkstra minimises t_path and t_relay is added afterwards.

Only what routing needs is built. Every hop costs at least its light time, so a
path whose Dijkstra distance is at most U has total length at most c·U, and each
of its nodes v satisfies |s-v| + |v-d| ≤ c·U (an ellipsoid with foci s and d).
Given upper bounds U_sd (from any subgraph: a subgraph only lengthens paths),
the optimal s→d path lies in that ellipsoid. :func:`route_participants` starts
from the participants' own links, runs Dijkstra, collects every satellite inside
the ellipsoids, and repeats on the induced subgraph until no satellite outside
it qualifies. The result equals Dijkstra on the full constellation graph
(:func:`route_participants_full`, kept as the reference and benchmark baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from .config import LinkConfig, NetworkConfig
from .links import hop_delay_s
from .topology import LinkSet


@dataclass(frozen=True)
class FlowTable:
    """Flows between participants for each payload: arrays (payloads, n, n), [s, d] = s→d.

    Diagonal entries are 0 (no flow); unreachable pairs hold inf (delays) and -1 (hops).
    """

    t_flow_s: np.ndarray
    t_path_s: np.ndarray
    hops: np.ndarray
    routing_nodes: int  # satellites in the graph Dijkstra ran on


def edge_weights(distance_km: np.ndarray, payloads_kib, link: LinkConfig, net: NetworkConfig) -> np.ndarray:
    """Dijkstra weights (E, payloads) [s] of links of the given lengths."""
    extra = net.relay_s if net.routing_objective == "flow_delay" else 0.0
    return np.stack(
        [hop_delay_s(distance_km, p, link, net.speed_of_light_m_s) + extra for p in payloads_kib], axis=1
    )


def build_graph(i: np.ndarray, j: np.ndarray, weights: np.ndarray, nodes=()) -> nx.Graph:
    """Undirected graph with edge attributes ``w0..w{P-1}`` (one Dijkstra weight per payload)."""
    g = nx.Graph()
    g.add_nodes_from(int(n) for n in nodes)
    names = [f"w{p}" for p in range(weights.shape[1])]
    g.add_edges_from(
        (int(a), int(b), dict(zip(names, w))) for a, b, w in zip(i.tolist(), j.tolist(), weights.tolist())
    )
    return g


def _dijkstra_flows(g: nx.Graph, participants: np.ndarray, n_payloads: int, net: NetworkConfig, cutoffs=None):
    """Run Dijkstra from every participant for every payload; return (D, hops) arrays (P, n, n)."""
    n = len(participants)
    dist = np.full((n_payloads, n, n), np.inf)
    hops = np.full((n_payloads, n, n), -1, dtype=np.int64)
    for p in range(n_payloads):
        for a, s in enumerate(participants.tolist()):
            dist[p, a, a], hops[p, a, a] = 0.0, 0
            if s not in g:
                continue
            cutoff = None
            if cutoffs is not None and np.isfinite(cutoffs[p, a]):
                cutoff = cutoffs[p, a] * (1 + 1e-9) + 1e-15
            lengths, paths = nx.single_source_dijkstra(g, s, cutoff=cutoff, weight=f"w{p}")
            for b, d in enumerate(participants.tolist()):
                if b != a and d in lengths:
                    dist[p, a, b] = lengths[d]
                    hops[p, a, b] = len(paths[d]) - 1
    return dist, hops


def csgraph_flows(i: np.ndarray, j: np.ndarray, weights: np.ndarray, nodes: np.ndarray, participants: np.ndarray,
                  n_satellites: int, limits: np.ndarray | None = None, paths: list | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Dijkstra from every participant for every payload on the graph of ``nodes`` and the links
    (i, j) with ``weights`` (E, P), with SciPy's compiled csgraph; returns (D, hops) arrays (P, n, n).
    ``limits`` (P,): upper bounds on every participant pair's distance, where the search may stop.

    Hop counts follow the predecessor chain of the path Dijkstra chose (all chains at once). When
    ``paths`` is a list, each payload's paths are appended to it (see :func:`path_edges`)."""
    n = len(participants)
    local = np.full(n_satellites, -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    li, lj, src = local[i], local[j], local[participants]
    m = len(nodes)
    dist = np.full((weights.shape[1], n, n), np.inf)
    hops = np.full((weights.shape[1], n, n), -1, dtype=np.int64)
    rows, cols = np.concatenate([li, lj]), np.concatenate([lj, li])
    # one CSR structure for every payload: built with the edge numbers as data, then refilled
    graph = csr_matrix((np.arange(1, len(rows) + 1, dtype=float), (rows, cols)), shape=(m, m))
    edge = graph.data.astype(np.int64) - 1
    for p in range(weights.shape[1]):
        graph.data = np.concatenate([weights[:, p], weights[:, p]])[edge]
        limit = np.inf if limits is None or not np.isfinite(limits[p]) else limits[p] * (1 + 1e-9)
        d, pred = dijkstra(graph, directed=True, indices=src, return_predecessors=True, limit=limit)
        dist[p] = d[:, src]
        # walk every participant pair's predecessor chain back to its source, all pairs at once
        cur = np.broadcast_to(src[None, :], (n, n)).copy()
        count = np.zeros((n, n), dtype=np.int64)
        a_idx = np.broadcast_to(np.arange(n)[:, None], (n, n))
        walking = np.isfinite(dist[p]) & (cur != src[:, None])
        while walking.any():
            cur[walking] = pred[a_idx[walking], cur[walking]]
            count[walking] += 1
            walking &= cur != src[:, None]
        hops[p] = np.where(np.isfinite(dist[p]), count, -1)
        if paths is not None:
            paths.append(path_edges(pred, src, np.isfinite(dist[p]), nodes))
    return dist, hops


def path_edges(pred: np.ndarray, src: np.ndarray, reachable: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Every hop of every participant pair's path, as rows (a, b, hop, u, v): pair a→b (participant
    indices), hop number from 0 at the source, and the satellites u→v it joins (global indices),
    from Dijkstra's predecessors ``pred`` (sources × local nodes) walked back from each destination."""
    n = len(src)
    a_idx, b_idx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    walking = reachable & (a_idx != b_idx)
    a, b = a_idx[walking], b_idx[walking]
    cur = src[b].copy()
    steps = []  # per step back from the destinations: (a, b, step, u, v)
    while len(a):
        prev = pred[a, cur]
        steps.append(np.stack([a, b, np.full_like(a, len(steps)), prev, cur]))
        go = prev != src[a]
        a, b, cur = a[go], b[go], prev[go]
    if not steps:
        return np.zeros((0, 5), dtype=np.int64)
    rows = np.concatenate(steps, axis=1).T
    pair = rows[:, 0] * n + rows[:, 1]
    rows[:, 2] = np.bincount(pair, minlength=n * n)[pair] - 1 - rows[:, 2]  # steps back -> hop from the source
    rows = rows[np.lexsort((rows[:, 2], pair))]
    return np.column_stack([rows[:, :3], nodes[rows[:, 3]], nodes[rows[:, 4]]])


def _flow_table(dist: np.ndarray, hops: np.ndarray, net: NetworkConfig, routing_nodes: int) -> FlowTable:
    relays = np.maximum(hops - 1, 0) * net.relay_s
    off_diag = hops > 0
    if net.routing_objective == "flow_delay":
        t_flow = np.where(off_diag, dist - net.relay_s, dist)
        t_path = np.where(off_diag, t_flow - relays, t_flow)
    else:
        t_path = dist
        t_flow = np.where(off_diag, dist + relays, dist)
    return FlowTable(t_flow, t_path, hops, routing_nodes)


def route_participants_full(
    positions_km: np.ndarray, links: LinkSet, participants: np.ndarray, payloads_kib, link: LinkConfig, net: NetworkConfig
) -> FlowTable:
    """Reference: Dijkstra on the full constellation graph (every satellite, every ISL)."""
    w = edge_weights(links.distance_km, payloads_kib, link, net)
    g = build_graph(links.i, links.j, w, nodes=range(len(positions_km)))
    dist, hops = _dijkstra_flows(g, participants, len(payloads_kib), net)
    return _flow_table(dist, hops, net, g.number_of_nodes())


def _ellipsoid_nodes(positions_km: np.ndarray, participants: np.ndarray, bound_s: np.ndarray, c_km_s: float) -> np.ndarray:
    """Boolean mask of satellites v with |s-v| + |v-d| ≤ c·U_sd for some payload and pair s≠d."""
    reach = np.nanmax(np.where(np.isfinite(bound_s), bound_s, np.nan), axis=0) * c_km_s  # (n, n) km
    dist = np.linalg.norm(positions_km[:, None, :] - positions_km[participants][None, :, :], axis=-1)  # (N, n)
    n = len(participants)
    mask = np.zeros(len(positions_km), dtype=bool)
    for a in range(n):
        for b in range(a + 1, n):
            limit = max(reach[a, b], reach[b, a]) * (1 + 1e-9)
            mask |= dist[:, a] + dist[:, b] <= limit
    mask[participants] = True
    return mask


#: a region grown ring by ring (the participants not yet joined) that holds more than this share of
#: the constellation becomes all of it: Dijkstra on the whole graph costs little more, and the bound
#: from such a long detour would take in most of the rest anyway (participants on ascending and
#: descending passes are joined by +Grid only far away)
WHOLE_GRAPH_SHARE = 0.25


def _whole_when_large(inside: np.ndarray) -> None:
    if inside.sum() > WHOLE_GRAPH_SHARE * inside.size:
        inside[:] = True


def route_participants(
    positions_km: np.ndarray, links: LinkSet, participants: np.ndarray, payloads_kib, link: LinkConfig, net: NetworkConfig,
    paths: list | None = None,
) -> FlowTable:
    """Minimum-delay flows among the participants, exact, on the smallest graph that proves it.

    ``paths``: a list that receives each payload's path hops (:func:`path_edges`) of the final search."""
    n_sat = len(positions_km)
    c_km_s = net.speed_of_light_m_s / 1e3
    weights = np.full((len(links), len(payloads_kib)), np.nan)  # computed for the links a graph uses
    inside = np.zeros(n_sat, dtype=bool)
    inside[participants] = True
    off_diag = ~np.eye(len(participants), dtype=bool)
    limits = None  # the subgraph's distances bound the true ones: later searches stop there
    rings = 1
    while True:
        keep = inside[links.i] & inside[links.j]
        todo = keep & np.isnan(weights[:, 0])
        weights[todo] = edge_weights(links.distance_km[todo], payloads_kib, link, net)
        found = [] if paths is not None else None
        dist, hops = csgraph_flows(links.i[keep], links.j[keep], weights[keep], np.nonzero(inside)[0], participants,
                                   n_sat, limits, found)
        if not np.all(np.isfinite(dist[:, off_diag])):
            if inside.all():
                break  # some participants are disconnected in the full graph
            # Grow by `rings` rings of neighbours and try again, twice as many each time: on a sparse
            # pattern (+Grid) the participants' own links rarely join them, and one Dijkstra per ring
            # cost a 10,000-satellite shell 30 runs a sample; doubling needs O(log rings).
            before = inside.sum()
            for _ in range(rings):
                touching = inside[links.i] | inside[links.j]
                inside[links.i[touching]] = True
                inside[links.j[touching]] = True
            if inside.sum() == before:
                break  # the component is closed: the missing pairs are truly unreachable
            rings *= 2
            _whole_when_large(inside)
            continue
        needed = _ellipsoid_nodes(positions_km, participants, dist, c_km_s)
        if not (needed & ~inside).any():
            break
        inside |= needed
        limits = dist[:, off_diag].max(axis=1)
    if paths is not None:
        paths.extend(found)
    return _flow_table(dist, hops, net, int(inside.sum()))

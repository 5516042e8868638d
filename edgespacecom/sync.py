"""Parallel-unicast signature sync rounds over a time window (paper Appendix A).

At each sample t_k every participant s sends S KiB to every other participant
along its minimum-delay path:

    T_send(s) = max_{d≠s} t_flow(s, d)        T_recv(s) = max_{u≠s} t_flow(u, s)
    T_sync(s) = max(T_send(s), T_recv(s)) + t_ctrl
    T_round   = max_s T_sync(s)

and the topology-event overhead between t_{k-1} and t_k is
Ω_topo = N_setup·C_setup + N_teardown·C_teardown over all ISLs of the
constellation (undefined, NaN, at the first sample). The same count restricted
to the links among the participants (the induced subgraph at t_{k-1} and at t_k,
so a satellite joining or leaving the set counts its links) is reported as
Ω_topo of the participants: the control burden inside the region.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from .progress import progress

from .config import ISLConfig, LinkConfig, NetworkConfig
from .routing import FlowTable, route_participants, route_participants_full
from .topology import IslRule, induced, link_events, topology_overhead_s


@dataclass(frozen=True)
class SyncRounds:
    """Everything measured over the window; arrays indexed [k, payload, s, d] or [k, ...]."""

    participants: np.ndarray  # (K, n) satellite indices
    t_flow_s: np.ndarray  # (K, P, n, n)
    t_path_s: np.ndarray  # (K, P, n, n)
    hops: np.ndarray  # (K, P, n, n)
    n_links: np.ndarray  # (K,)
    n_setup: np.ndarray  # (K,) -1 at k = 0
    n_teardown: np.ndarray  # (K,)
    n_setup_participants: np.ndarray  # (K,) -1 at k = 0
    n_teardown_participants: np.ndarray  # (K,)
    routing_nodes: np.ndarray  # (K,)
    control_s: float
    exchange: str = "all_to_all"  # or 'priority_chain' (DLRC predict mode: :func:`chain_times`)
    coding_s: float = 0.0  # priority_chain: on-board coding time of each stream [s]

    @property
    def t_send_s(self) -> np.ndarray:
        """(K, P, n): slowest outgoing flow of each participant."""
        return _max_off_diagonal(self.t_flow_s, axis=-1)

    @property
    def t_recv_s(self) -> np.ndarray:
        """(K, P, n): slowest incoming flow of each participant."""
        return _max_off_diagonal(self.t_flow_s, axis=-2)

    @property
    def t_sync_s(self) -> np.ndarray:
        """(K, P, n): T_sync = max(T_send, T_recv) + t_ctrl (all-to-all), or, in a priority chain, the
        time the participant's stream has reached every lower-priority one, + t_ctrl (:func:`chain_times`)."""
        if self.exchange == "priority_chain":
            return chain_times(self.t_flow_s, self.coding_s, self.control_s)
        return sync_times(self.t_flow_s, self.control_s)

    @property
    def t_round_s(self) -> np.ndarray:
        """(K, P): T_round = max over participants of T_sync."""
        return self.t_sync_s.max(axis=-1)


def sync_times(t_flow_s: np.ndarray, control_s: float) -> np.ndarray:
    """T_sync (..., n) of each participant from flow times (..., n, n), [s, d] = s→d:
    max(slowest outgoing, slowest incoming) + t_ctrl; T_round is its max over the last axis."""
    return np.maximum(_max_off_diagonal(t_flow_s, axis=-1), _max_off_diagonal(t_flow_s, axis=-2)) + control_s


def chain_times(t_flow_s: np.ndarray, coding_s: float, control_s: float) -> np.ndarray:
    """T_sync (..., n) of a priority chain (DLRC predict mode) from flow times (..., n, n), [s, d] = s→d.

    Participant r (0 first) starts coding when the streams of every higher-priority participant
    have reached it, codes for ``coding_s`` and sends its stream to every lower-priority one:

        done(r)  = max_{u<r} (done(u) + t_flow(u, r)) + t_code        (done(0) = t_code)
        T_sync(r) = max(done(r), max_{d>r} done(r) + t_flow(r, d)) + t_ctrl

    T_round is its max over the participants: with equal flow times f, n·t_code + (n−1)·f + t_ctrl.
    Every higher-priority stream is waited for (the grid's full overlap: the worst case)."""
    n = t_flow_s.shape[-1]
    done = np.empty(t_flow_s.shape[:-1])
    for r in range(n):
        start = (done[..., :r] + t_flow_s[..., :r, r]).max(axis=-1) if r else 0.0
        done[..., r] = start + coding_s
    later = np.triu(np.ones((n, n), dtype=bool), k=1)  # [r, d]: d after r
    sent = np.where(later, done[..., :, None] + t_flow_s, -np.inf).max(axis=-1)
    return np.maximum(done, sent) + control_s


def _max_off_diagonal(a: np.ndarray, axis: int) -> np.ndarray:
    n = a.shape[-1]
    masked = np.where(np.eye(n, dtype=bool), -np.inf, a)
    return masked.max(axis=axis)


def _rounds_chunk(args) -> dict:
    """Worker: sync rounds for samples [start, stop) (needs sample start-1 for link events)."""
    positions, participants, payloads, rule, link, net, start, stop, reference, show = args
    P, n = len(payloads), participants.shape[1]
    K = stop - start
    out = {
        "t_flow_s": np.empty((K, P, n, n)),
        "t_path_s": np.empty((K, P, n, n)),
        "hops": np.empty((K, P, n, n), dtype=np.int64),
        "n_links": np.empty(K, dtype=np.int64),
        "n_setup": np.full(K, -1, dtype=np.int64),
        "n_teardown": np.full(K, -1, dtype=np.int64),
        "n_setup_participants": np.full(K, -1, dtype=np.int64),
        "n_teardown_participants": np.full(K, -1, dtype=np.int64),
        "routing_nodes": np.empty(K, dtype=np.int64),
    }
    n_sat = positions.shape[1]
    previous = previous_local = None
    if start > 0:
        previous = rule.links(positions[start - 1])
        previous_local = induced(previous, participants[start - 1], n_sat)
    route = route_participants_full if reference else route_participants
    for row, k in enumerate(progress(range(start, stop), desc="sync rounds", unit="sample", disable=not show, leave=False)):
        links = rule.links(positions[k])
        local = induced(links, participants[k], n_sat)
        if previous is not None:
            out["n_setup"][row], out["n_teardown"][row] = link_events(previous, links)
            out["n_setup_participants"][row], out["n_teardown_participants"][row] = link_events(previous_local, local)
        previous, previous_local = links, local
        flows: FlowTable = route(positions[k], links, participants[k], payloads, link, net)
        out["t_flow_s"][row] = flows.t_flow_s
        out["t_path_s"][row] = flows.t_path_s
        out["hops"][row] = flows.hops
        out["n_links"][row] = len(links)
        out["routing_nodes"][row] = flows.routing_nodes
    return out


def compute_sync_rounds(
    positions_km: np.ndarray,
    participants: np.ndarray,
    payloads_kib,
    isl: ISLConfig,
    link: LinkConfig,
    net: NetworkConfig,
    workers: int = 1,
    reference: bool = False,
    progress: bool = True,
    constellation=None,
) -> SyncRounds:
    """Sync rounds at every sample of ``positions_km`` (K, N, 3).

    ``workers`` > 1 splits the samples into contiguous chunks computed in
    separate processes (results are identical to one process). ``reference``
    routes on the full constellation graph (slow; for checks and benchmarks). ``constellation``:
    its Walker structure, which ``isl.pattern: grid`` needs.
    """
    rule = IslRule.from_config(isl, constellation)
    K = len(positions_km)
    workers = max(1, min(workers, K))
    bounds = np.linspace(0, K, workers + 1).astype(int)
    jobs = [
        (positions_km, participants, list(payloads_kib), rule, link, net, int(a), int(b), reference, progress and w == 0)
        for w, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
        if b > a
    ]
    if len(jobs) == 1:
        parts = [_rounds_chunk(jobs[0])]
    else:
        with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("fork")) as pool:
            parts = list(pool.map(_rounds_chunk, jobs))
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return SyncRounds(participants=participants, control_s=net.control_s, **merged)


def topology_overhead(rounds: SyncRounds, net: NetworkConfig, scope: str = "constellation") -> np.ndarray:
    """Ω_topo per sample [s] over all ISLs ('constellation') or the participants' links; NaN at k = 0."""
    if scope == "constellation":
        setups, teardowns = rounds.n_setup, rounds.n_teardown
    else:
        setups, teardowns = rounds.n_setup_participants, rounds.n_teardown_participants
    omega = topology_overhead_s(setups, teardowns, net.setup_s, net.teardown_s).astype(float)
    return np.where(setups < 0, np.nan, omega)


# ------------------------------------------------------------------------- tables


def per_satellite_table(rounds: SyncRounds, times: np.ndarray, names: list[str], payloads_kib) -> pd.DataFrame:
    """One row per (sample, payload, participant): T_send, T_recv, T_sync, hops, path delay."""
    K, P, n = rounds.t_send_s.shape
    k, p, s = np.meshgrid(np.arange(K), np.arange(P), np.arange(n), indexing="ij")
    sat = rounds.participants[k, s]
    out_hops = np.where(np.eye(n, dtype=bool), -1, rounds.hops).max(axis=-1)
    out_path = _max_off_diagonal(rounds.t_path_s, axis=-1)
    return pd.DataFrame(
        {
            "time_utc": times[k.ravel()],
            "sample": k.ravel(),
            "payload_kib": np.asarray(payloads_kib, dtype=float)[p.ravel()],
            "satellite": sat.ravel(),
            "satellite_name": np.asarray(names, dtype=object)[sat.ravel()],
            "t_send_s": rounds.t_send_s.ravel(),
            "t_recv_s": rounds.t_recv_s.ravel(),
            "t_sync_s": rounds.t_sync_s.ravel(),
            "hops_max": out_hops.ravel(),
            "path_delay_max_s": out_path.ravel(),
        }
    )


def per_round_table(rounds: SyncRounds, times: np.ndarray, payloads_kib, net: NetworkConfig) -> pd.DataFrame:
    """One row per (sample, payload): T_round, mean/max T_sync, links and Ω_topo."""
    K, P, _ = rounds.t_sync_s.shape
    k, p = np.meshgrid(np.arange(K), np.arange(P), indexing="ij")
    omega = topology_overhead(rounds, net)
    omega_local = topology_overhead(rounds, net, scope="participants")
    return pd.DataFrame(
        {
            "time_utc": times[k.ravel()],
            "sample": k.ravel(),
            "payload_kib": np.asarray(payloads_kib, dtype=float)[p.ravel()],
            "t_round_s": rounds.t_round_s.ravel(),
            "t_sync_mean_s": rounds.t_sync_s.mean(axis=-1).ravel(),
            "t_sync_max_s": rounds.t_sync_s.max(axis=-1).ravel(),
            "hops_max": rounds.hops.reshape(K, P, -1).max(axis=-1).ravel(),
            "isl_links": rounds.n_links[k.ravel()],
            "link_setups": rounds.n_setup[k.ravel()],
            "link_teardowns": rounds.n_teardown[k.ravel()],
            "omega_topo_s": omega[k.ravel()],
            "participant_link_setups": rounds.n_setup_participants[k.ravel()],
            "participant_link_teardowns": rounds.n_teardown_participants[k.ravel()],
            "omega_topo_participants_s": omega_local[k.ravel()],
            "routing_nodes": rounds.routing_nodes[k.ravel()],
        }
    )


def flows_table(rounds: SyncRounds, payloads_kib) -> pd.DataFrame:
    """One row per flow (sample, payload, source, destination)."""
    K, P, n, _ = rounds.t_flow_s.shape
    k, p, a, b = np.meshgrid(np.arange(K), np.arange(P), np.arange(n), np.arange(n), indexing="ij")
    keep = (a != b).ravel()
    return pd.DataFrame(
        {
            "sample": k.ravel()[keep],
            "payload_kib": np.asarray(payloads_kib, dtype=float)[p.ravel()[keep]],
            "source": rounds.participants[k, a].ravel()[keep],
            "destination": rounds.participants[k, b].ravel()[keep],
            "hops": rounds.hops.ravel()[keep],
            "t_path_s": rounds.t_path_s.ravel()[keep],
            "t_flow_s": rounds.t_flow_s.ravel()[keep],
        }
    )

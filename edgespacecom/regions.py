"""Many observation groups at once: targets, their participants, and their rounds on shared ISLs.

A ``sync`` scenario with ``regions:`` (a list of points, or a grid of targets over land) gives each
region its own participants at every sample (the scenario's ``participants`` rule around its
point). Each region routes its signature flows as one region alone does; the flows of all regions
at the same instant then share the links' capacity (:mod:`edgespacecom.contention`), so a
region's round time reflects the traffic of the others. A region alone keeps the numbers a
single-region run gives (a test checks it).

Targets over land use a 0.5° land mask shipped with the package (derived from NOAA's GLOBE 1 km
mask via the ``global-land-mask`` package, see ``tools/make_land_mask.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Target:
    name: str
    lat_deg: float
    lon_deg: float


@functools.lru_cache(maxsize=1)
def land_mask() -> tuple[np.ndarray, float]:
    """(rows from 90°S, columns from 180°W) booleans, True over land, and the cell size [deg]."""
    with resources.files("edgespacecom.datasets").joinpath("land_mask_0p5deg.npz").open("rb") as fh:
        data = np.load(fh)
        shape = tuple(int(v) for v in data["shape"])
        land = np.unpackbits(data["land"], axis=1)[:, :shape[1]].astype(bool)
        return land, float(data["step_deg"])


def is_land(lat_deg, lon_deg) -> np.ndarray:
    """Whether each point lies in a land cell of the 0.5° mask (lakes count as land, as in GLOBE)."""
    land, step = land_mask()
    lat = np.clip(np.asarray(lat_deg, dtype=float), -90.0, 90.0 - 1e-9)
    lon = (np.asarray(lon_deg, dtype=float) + 180.0) % 360.0
    return land[((lat + 90.0) // step).astype(int), (lon // step).astype(int) % land.shape[1]]


def region_targets(regions) -> list[Target]:
    """The scenario's ``regions``: its list, or its grid's points (over land when asked), named."""
    from .config import RegionGridConfig

    if isinstance(regions, RegionGridConfig):
        lats = np.arange(regions.lat_deg[0], regions.lat_deg[1] + 1e-9, regions.step_deg)
        lons = np.arange(regions.lon_deg[0], regions.lon_deg[1] - 1e-9, regions.step_deg)
        lat, lon = (a.ravel() for a in np.meshgrid(lats, lons, indexing="ij"))
        if regions.land_only:
            keep = is_land(lat, lon)
            lat, lon = lat[keep], lon[keep]
        if not len(lat):
            raise ValueError("regions: the grid holds no point" + (" over land" if regions.land_only else ""))
        if regions.count is not None:
            if regions.count > len(lat):
                raise ValueError(f"regions.count: {regions.count} exceeds the grid's {len(lat)} points")
            pick = np.round(np.linspace(0, len(lat) - 1, regions.count)).astype(int)
            lat, lon = lat[pick], lon[pick]
        return [Target(_label(a, b), float(a), float(b)) for a, b in zip(lat, lon)]
    return [Target(r.name or _label(r.lat_deg, r.lon_deg), r.lat_deg, r.lon_deg) for r in regions]


def _label(lat: float, lon: float) -> str:
    return f"{abs(lat):g}{'N' if lat >= 0 else 'S'}_{abs(lon):g}{'E' if lon >= 0 else 'W'}"


# ------------------------------------------------------------------ one time chunk


def regions_chunk(scenario, start: int, stop: int, targets: list[Target], participants_fixed=None,
                  cache_dir=None, keep=None):
    """Rounds of every region over samples [start, stop) with shared ISLs (a :class:`ChunkResult`)."""
    from .contention import Transmissions, simulate
    from .links import link_rate_bps, payload_bits, propagation_delay_s
    from .orbits import sample_datetimes
    from .participants import select_participants
    from .routing import route_participants
    from .stream import ChunkResult, Stat, chunk_positions
    from .sync import sync_times
    from .topology import IslRule, link_events, topology_overhead_s

    first = max(start - 1, 0)
    pos = chunk_positions(scenario, first, stop, cache_dir)
    if keep is not None:
        pos = pos[:, keep]
    part_cfg, net, link = scenario.participants, scenario.network, scenario.link
    n_sat = pos.shape[1]
    groups = []
    for r, target in enumerate(targets):
        if participants_fixed is not None:
            groups.append(np.repeat(participants_fixed[r][None, :], stop - first, axis=0))
        else:
            groups.append(select_participants(pos, target.lat_deg, target.lon_deg, part_cfg.count, part_cfg.selection))
    payloads = list(scenario.sync.payloads_kib)
    rule = IslRule.from_config(scenario.isl, scenario.constellation)
    times = sample_datetimes(scenario.time)
    n = part_cfg.count
    off = ~np.eye(n, dtype=bool)
    src_slot, dst_slot = np.nonzero(off)
    flow_region = np.repeat(np.arange(len(targets)), n * n)
    rounds_rows, flow_rows, load_rows, topo_rows = [], [], [], []
    previous = rule.links(pos[start - first - 1]) if start > 0 else None
    sums = {"samples": stop - start, "round": np.zeros((len(targets), len(payloads))),
            "alone": np.zeros((len(targets), len(payloads))), "round_max": np.full((len(targets), len(payloads)), -np.inf),
            "slowdown_max": np.zeros(len(payloads)), "flows": 0, "flows_shared": 0, "unreachable": 0,
            "peak_sessions_max": 0, "links_shared": 0, "links_used": 0}
    omega_all = []
    for k in range(start, stop):
        row = k - first
        p_k = pos[row]
        links = rule.links(p_k)
        setups = teardowns = -1
        if previous is not None:
            setups, teardowns = link_events(previous, links)
        previous = links
        omega = np.nan if setups < 0 else float(topology_overhead_s(setups, teardowns, net.setup_s, net.teardown_s))
        omega_all.append(omega)
        topo_rows.append((times[k], k, len(links), setups, teardowns, omega))
        tables, paths = [], []
        for g in groups:
            found: list = []
            tables.append(route_participants(p_k, links, g[row], payloads, link, net, found))
            paths.append(found)
        for p, payload in enumerate(payloads):
            hops_rows = []
            for r, found in enumerate(paths):
                e = found[p]
                flow = r * n * n + e[:, 0] * n + e[:, 1]
                hops_rows.append(np.column_stack([flow, e[:, 2], e[:, 3], e[:, 4]]))
            e = np.concatenate(hops_rows) if hops_rows else np.zeros((0, 4), dtype=np.int64)
            e = e[np.lexsort((e[:, 1], e[:, 0]))]
            d = np.linalg.norm(p_k[e[:, 2]] - p_k[e[:, 3]], axis=-1)
            tx = Transmissions(flow=e[:, 0], resource=e[:, 2] * n_sat + e[:, 3],
                               work_s=payload_bits(payload) / link_rate_bps(d, link),
                               propagation_s=propagation_delay_s(d, net.speed_of_light_m_s),
                               region=flow_region)
            alone = np.stack([t.t_flow_s[p] for t in tables])  # (R, n, n)
            shared = simulate(tx, net.relay_s, alone.reshape(-1))
            t_flow = shared.done_s.reshape(len(targets), n, n)
            t_sync = sync_times(t_flow, net.control_s)  # (R, n), the paper's round formulas
            t_round, t_alone = t_sync.max(axis=-1), sync_times(alone, net.control_s).max(axis=-1)
            simulated = shared.simulated.reshape(len(targets), n, n)
            hops = np.stack([t.hops[p] for t in tables])
            for r, target in enumerate(targets):
                rounds_rows.append((times[k], k, float(payload), target.name, t_round[r], t_alone[r],
                                    t_sync[r].max(), int(hops[r].max()), int(simulated[r][off].sum())))
            flow_rows.append(pd.DataFrame({
                "sample": k, "payload_kib": float(payload),
                "region": np.repeat(np.arange(len(targets)), off.sum()),
                "source": np.concatenate([g[row][src_slot] for g in groups]),
                "destination": np.concatenate([g[row][dst_slot] for g in groups]),
                "hops": hops[:, off].ravel(),
                "t_flow_alone_s": alone[:, off].ravel(), "t_flow_s": t_flow[:, off].ravel()}))
            load_rows.append(_link_load(k, payload, tx, shared, n_sat, float(np.max(t_round[np.isfinite(t_round)],
                                                                                initial=0.0))))
            finite = np.isfinite(t_alone) & (t_alone > 0)
            sums["round"][:, p] += t_round
            sums["alone"][:, p] += t_alone
            sums["round_max"][:, p] = np.maximum(sums["round_max"][:, p], t_round)
            if finite.any():
                sums["slowdown_max"][p] = max(sums["slowdown_max"][p], float((t_round[finite] / t_alone[finite]).max()))
            sums["flows"] += int(off.sum() * len(targets))
            sums["flows_shared"] += int(simulated[:, off].sum())
            sums["unreachable"] += int(np.sum(~np.isfinite(t_flow[:, off])))
            sums["peak_sessions_max"] = max(sums["peak_sessions_max"], max(shared.peak_sessions.values(), default=1))
            sums["links_shared"] += int(np.sum(load_rows[-1]["regions"] > 1))
            sums["links_used"] += len(load_rows[-1])
    sums["omega"] = Stat.of(np.array(omega_all))
    region_rounds = pd.DataFrame(rounds_rows, columns=["time_utc", "sample", "payload_kib", "region", "t_round_s",
                                                       "t_round_alone_s", "t_sync_max_s", "hops_max", "flows_shared"])
    topology = pd.DataFrame(topo_rows, columns=["time_utc", "sample", "isl_links", "link_setups", "link_teardowns",
                                                "omega_topo_s"])
    return ChunkResult(start, stop, {"region_rounds": region_rounds, "region_flows": pd.concat(flow_rows, ignore_index=True),
                                     "link_load": pd.concat(load_rows, ignore_index=True), "topology": topology}, sums)


def _link_load(sample: int, payload: float, tx, shared, n_sat: int, round_s: float) -> pd.DataFrame:
    """One row per link direction the round used: regions, transmissions, full-rate work, and for the
    links regions shared the simulated busy time and the most sessions at once."""
    resource, first, count = np.unique(tx.resource, return_index=True, return_counts=True)
    regions = pd.Series(tx.region[tx.flow]).groupby(tx.resource).nunique().reindex(resource).to_numpy()
    work = np.bincount(np.searchsorted(resource, tx.resource), weights=tx.work_s, minlength=len(resource))
    busy = np.array([shared.busy_s.get(int(r), np.nan) for r in resource])
    peak = np.array([shared.peak_sessions.get(int(r), 1) for r in resource], dtype=np.int64)
    return pd.DataFrame({
        "sample": sample, "payload_kib": payload, "sat_from": resource // n_sat, "sat_to": resource % n_sat,
        "regions": regions.astype(np.int64), "transmissions": count, "work_s": work, "busy_s": busy,
        "peak_sessions": peak, "utilisation": work / round_s if round_s > 0 else np.nan})

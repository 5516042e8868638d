"""Time-slotted ISL topology: which links exist at a sample, and link setup/teardown events.

A link (i, j) exists at time t when the distance is at most ``d_max`` and the
straight segment between the two satellites stays above a sphere of radius
``R_E + margin`` (R_E = WGS-84 equatorial radius, a conservative spherical Earth;
the margin keeps links out of the atmosphere).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

#: WGS-84 equatorial radius [km]: the spherical Earth used for line of sight.
EARTH_EQUATORIAL_RADIUS_KM = 6378.137


def segment_clears_sphere(p, q, radius_km: float):
    """True where the segment p→q stays strictly outside the sphere |x| = radius_km.

    ``p`` and ``q`` are (..., 3) arrays in km (Earth-centred). The closest point of
    the segment to the centre is p + t·(q-p) with t = clamp(-p·(q-p)/|q-p|², 0, 1).
    """
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    d = q - p
    dd = np.einsum("...i,...i->...", d, d)
    t = np.clip(-np.einsum("...i,...i->...", p, d) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
    closest = p + t[..., None] * d
    return np.einsum("...i,...i->...", closest, closest) > radius_km**2


def always_clear_km(positions_km: np.ndarray, radius_km: float) -> float:
    """A chord length below which every segment between two of the points clears the sphere.

    With both ends at least r from the centre and the foot of the perpendicular splitting the
    chord d into a + b, the segment's distance h to the centre satisfies h² ≥ r² − min(a, b)² ≥
    r² − d²/4, so d < 2·√(r² − R²) keeps it outside the sphere of radius R (an endpoint closest
    is at least r > R away anyway). 0 when some point is inside the sphere.
    """
    r2 = float(np.min(np.einsum("ij,ij->i", positions_km, positions_km))) if len(positions_km) else 0.0
    return 2.0 * float(np.sqrt(r2 - radius_km**2)) if r2 > radius_km**2 else 0.0


@dataclass(frozen=True)
class LinkSet:
    """ISLs at one sample: pairs (i < j), their distances, and sorted integer keys i·N + j."""

    i: np.ndarray
    j: np.ndarray
    distance_km: np.ndarray
    keys: np.ndarray  # sorted, int64

    def __len__(self) -> int:
        return len(self.keys)


def plus_grid_pairs(planes: int, per_plane: int, phasing: int = 0) -> np.ndarray:
    """(E, 2) candidate links of the +Grid pattern for Walker index i = p·S + s: (p, s)–(p, s+1)
    in-plane and (p, s)–(p+1, s) across planes, both cyclic. Walker-delta phasing gives plane p the
    mean-anomaly offset p·F·360/T, so going round from plane P−1 to plane 0 loses P·F·360/T =
    F·360/S: the seam links (P−1, s)–(0, s + F), whose phase offset is then F·360/T as between any
    two adjacent planes. Every satellite has degree 4 where all four links are in range. Pairs are
    (i < j), unique."""
    p, s = np.divmod(np.arange(planes * per_plane), per_plane)
    fore = p * per_plane + (s + 1) % per_plane
    seam = p == planes - 1
    side = ((p + 1) % planes) * per_plane + (s + np.where(seam, phasing, 0)) % per_plane
    i = np.arange(planes * per_plane)
    pairs = np.concatenate([np.stack([i, fore], 1), np.stack([i, side], 1)])
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]  # one plane or one slot: no self-links
    return np.unique(pairs, axis=0)


def limit_terminals(i: np.ndarray, j: np.ndarray, distance_km: np.ndarray, terminals: int, n: int) -> np.ndarray:
    """Boolean mask of the links kept when each satellite has ``terminals`` terminals: links are
    taken shortest first (ties by pair) and kept while both ends have a free terminal.

    Written as a loop because the greedy choice is sequential; each step is O(1)."""
    order = np.lexsort((j, i, distance_km))
    free = np.full(n, terminals, dtype=np.int64)
    keep = np.zeros(len(i), dtype=bool)
    for e in order.tolist():
        a, b = i[e], j[e]
        if free[a] > 0 and free[b] > 0:
            keep[e] = True
            free[a] -= 1
            free[b] -= 1
    return keep


@dataclass(frozen=True)
class IslRule:
    """Which links exist at a sample: the ``isl`` section, and +Grid's candidate pairs."""

    d_max_km: float
    earth_margin_km: float
    terminals: int | None = None
    candidates: np.ndarray | None = None  # (E, 2) for a fixed pattern (grid); None: every pair in range

    @classmethod
    def from_config(cls, isl, constellation=None) -> "IslRule":
        """From the ``isl`` section; ``constellation``: its Walker shell, which 'grid' needs (the
        scenario schemas already refuse 'grid' without one)."""
        if isl.pattern == "grid":
            w = constellation.walker if constellation is not None else None
            if w is None:
                raise ValueError("isl.pattern: 'grid' needs a Walker constellation")
            return cls(isl.d_max_km, isl.earth_margin_km, None, plus_grid_pairs(w.planes, w.per_plane, w.phasing))
        return cls(isl.d_max_km, isl.earth_margin_km, isl.terminals)

    def links(self, positions_km: np.ndarray) -> LinkSet:
        if self.candidates is None:
            links = isl_links(positions_km, self.d_max_km, self.earth_margin_km)
            if self.terminals is None:
                return links
            keep = limit_terminals(links.i, links.j, links.distance_km, self.terminals, len(positions_km))
            return LinkSet(links.i[keep], links.j[keep], links.distance_km[keep], links.keys[keep])
        return candidate_links(positions_km, self.candidates, self.d_max_km, self.earth_margin_km)


def candidate_links(positions_km: np.ndarray, pairs: np.ndarray, d_max_km: float, earth_margin_km: float) -> LinkSet:
    """The links among fixed candidate ``pairs`` (E, 2) that are within d_max and clear."""
    diff = positions_km[pairs[:, 0]] - positions_km[pairs[:, 1]]
    in_range = np.einsum("ij,ij->i", diff, diff) <= d_max_km**2
    return _clear_links(positions_km, pairs[in_range], d_max_km, earth_margin_km)


def isl_links(positions_km: np.ndarray, d_max_km: float, earth_margin_km: float) -> LinkSet:
    """All available ISLs among ``positions_km`` (N, 3): distance ≤ d_max and a clear line of sight."""
    pairs = cKDTree(positions_km).query_pairs(d_max_km, output_type="ndarray")
    return _clear_links(positions_km, pairs, d_max_km, earth_margin_km)


def _clear_links(positions_km: np.ndarray, pairs: np.ndarray, d_max_km: float, earth_margin_km: float) -> LinkSet:
    """The pairs (E, 2; all within d_max) whose line of sight clears the Earth plus the margin, as a
    LinkSet sorted by key."""
    n = len(positions_km)
    if len(pairs) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return LinkSet(empty, empty, np.zeros(0), empty)
    i, j = np.minimum(pairs[:, 0], pairs[:, 1]).astype(np.int64), np.maximum(pairs[:, 0], pairs[:, 1]).astype(np.int64)
    radius = EARTH_EQUATORIAL_RADIUS_KM + earth_margin_km
    if d_max_km >= always_clear_km(positions_km, radius):  # otherwise every pair in range clears: skip the test
        keep = segment_clears_sphere(positions_km[i], positions_km[j], radius)
        i, j = i[keep], j[keep]
    keys = np.sort(i * n + j)  # unique keys: a plain sort, and (i, j) read back from them
    i, j = keys // n, keys % n
    diff = positions_km[i] - positions_km[j]
    return LinkSet(i, j, np.sqrt(np.einsum("ij,ij->i", diff, diff)), keys)


def induced(links: LinkSet, nodes: np.ndarray, n_satellites: int) -> LinkSet:
    """The links whose two ends are both in ``nodes``."""
    inside = np.zeros(n_satellites, dtype=bool)
    inside[nodes] = True
    keep = inside[links.i] & inside[links.j]
    return LinkSet(links.i[keep], links.j[keep], links.distance_km[keep], links.keys[keep])


def link_events(previous: LinkSet, current: LinkSet) -> tuple[int, int]:
    """(N_setup, N_teardown): links present now but not before, and before but not now (both key
    arrays are sorted and unique, so one binary search counts the links they share)."""
    if len(previous) == 0 or len(current) == 0:
        return len(current), len(previous)
    at = np.minimum(np.searchsorted(previous.keys, current.keys), len(previous) - 1)
    shared = int(np.count_nonzero(previous.keys[at] == current.keys))
    return len(current) - shared, len(previous) - shared


def topology_overhead_s(n_setup: int, n_teardown: int, setup_s: float, teardown_s: float) -> float:
    """Ω_topo = N_setup·C_setup + N_teardown·C_teardown [s]."""
    return n_setup * setup_s + n_teardown * teardown_s

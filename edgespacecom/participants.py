"""Choosing the N satellites over the region of interest at each sample.

``nearest`` (default): the N satellites whose sub-satellite points are closest to
the region's ground point, by central angle between the satellite's position
vector and the ground point's (equivalently great-circle distance on the ground).
The N nearest to one point lie in a small disc, so the subset is spatially compact.

``compact``: the satellite nearest the region (as above) is the seed; the
participants are the seed plus the N-1 satellites closest to it in 3-D distance.

``fixed_slots``: the paper's model, the ``nearest`` N at the first sample, kept.

``geometric`` (missions, :func:`geometric_rounds`): at each sample, the satellites whose
sensor footprint covers enough of the target; their number and overlap vary.

Ties break on the lower satellite index; each row is returned in ascending
satellite index (the default DLRC priority order).
"""

from __future__ import annotations

import numpy as np
from skyfield.api import wgs84


def region_point_itrs_km(lat_deg: float, lon_deg: float) -> np.ndarray:
    """ITRS position (3,) of a ground point on the WGS-84 ellipsoid [km]."""
    return np.asarray(wgs84.latlon(lat_deg, lon_deg).itrs_xyz.km, dtype=float)


def _smallest(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` smallest entries of each row, ties to the lower index."""
    order = np.argsort(values, axis=-1, kind="stable")
    return order[..., :count]


def select_participants(
    positions_km: np.ndarray, lat_deg: float, lon_deg: float, count: int, selection: str = "nearest"
) -> np.ndarray:
    """Participant indices (K, count), each row ascending, from positions (K, N, 3) [km]."""
    if count > positions_km.shape[1]:
        raise ValueError(f"{count} participants requested of {positions_km.shape[1]} satellites")
    if selection == "fixed_slots":
        return fixed_slots(positions_km, lat_deg, lon_deg, count)
    ground = region_point_itrs_km(lat_deg, lon_deg)
    unit = positions_km / np.linalg.norm(positions_km, axis=-1, keepdims=True)
    cos_angle = unit @ (ground / np.linalg.norm(ground))  # (K, N)
    if selection == "nearest":
        chosen = _smallest(-cos_angle, count)
    elif selection == "compact":
        seed = np.argmax(cos_angle, axis=-1)  # (K,)
        seed_pos = np.take_along_axis(positions_km, seed[:, None, None], axis=1)  # (K, 1, 3)
        dist = np.linalg.norm(positions_km - seed_pos, axis=-1)
        chosen = _smallest(dist, count)
    else:
        raise ValueError(f"unknown participant selection {selection!r}")
    return np.sort(chosen, axis=-1)


def fixed_slots(positions_km: np.ndarray, lat_deg: float, lon_deg: float, count: int) -> np.ndarray:
    """The paper's model: the ``count`` satellites nearest the region at the first sample, kept for
    every sample (K, count), whatever their later geometry."""
    first = select_participants(positions_km[:1], lat_deg, lon_deg, count, "nearest")
    return np.repeat(first, positions_km.shape[0], axis=0)


def geometric_rounds(positions_km: np.ndarray, times_s: np.ndarray, lat_deg: float, lon_deg: float, sensor,
                     count: int) -> list[dict]:
    """Capture opportunities from the sensor's geometry, one per ephemeris sample at which at least one
    satellite's footprint covers ``sensor.min_coverage`` of the target square.

    At each sample the candidates are the satellites whose footprint (boresight toward the target,
    at most ``max_off_nadir_deg`` from nadir) covers enough of the target; the ``count`` with the
    largest coverage take part (ties to the lower index). Each row: ``t_s``, ``sample``,
    ``participants`` (ascending satellite indices), ``N``, ``o_exp`` (see
    :func:`edgespacecom.sensor.overlap_degree`), ``coverage`` (fraction of the target per
    participant), ``off_nadir_deg`` and ``gsd_m`` (means over the participants).
    """
    from . import sensor as geo

    target = region_point_itrs_km(lat_deg, lon_deg)
    radius = float(np.linalg.norm(target))
    max_tilt = np.radians(sensor.max_off_nadir_deg)
    altitude = np.linalg.norm(positions_km, axis=-1) - radius  # (K, N)
    h_ref = float(np.median(altitude))
    if sensor.swath_km is not None:
        eta = geo.half_angle_from_swath(sensor.swath_km, h_ref, radius)
    else:
        eta = np.radians(sensor.fov_deg) / 2.0
    # candidates: the footprint's far edge can reach the target square at all
    reach = geo.ground_range_limit_rad(float(altitude.max()), radius, max_tilt + eta)
    reach += (sensor.target_km / np.sqrt(2.0)) / radius
    cos_central = (positions_km / np.linalg.norm(positions_km, axis=-1, keepdims=True)) @ (target / radius)
    rows = []
    for k in range(positions_km.shape[0]):
        cand = np.nonzero(cos_central[k] >= np.cos(reach))[0]
        if not len(cand):
            continue
        sats = positions_km[k, cand]
        masks, ground, tilt = geo.coverage_masks(sats, target, sensor.target_km, eta, max_tilt, sensor.grid)
        frac = masks.mean(axis=1)
        ok = np.nonzero(frac >= sensor.min_coverage)[0]
        if not len(ok):
            continue
        ok = ok[np.lexsort((cand[ok], -frac[ok]))][:count]  # largest coverage first, ties to the lower index
        ok = ok[np.argsort(cand[ok])]
        gsd = geo.effective_gsd_m(sensor.gsd_m, sats[ok], ground[ok], altitude[k, cand[ok]])
        rows.append({"t_s": float(times_s[k]), "sample": k, "participants": tuple(int(i) for i in cand[ok]),
                     "N": len(ok), "o_exp": geo.overlap_degree(masks[ok]),
                     "coverage": tuple(float(f) for f in frac[ok]),
                     "off_nadir_deg": float(np.degrees(tilt[ok]).mean()), "gsd_m": float(gsd.mean())})
    return rows

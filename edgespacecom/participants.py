"""Choosing the N satellites over the region of interest at each sample.

``nearest`` (default): the N satellites whose sub-satellite points are closest to
the region's ground point, by central angle between the satellite's position
vector and the ground point's (equivalently great-circle distance on the ground).
The N nearest to one point lie in a small disc, so the subset is spatially compact.

``compact``: the satellite nearest the region (as above) is the seed; the
participants are the seed plus the N-1 satellites closest to it in 3-D distance.

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

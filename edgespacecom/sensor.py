"""Who can image a target, and how much of it: a frame camera's footprint on a spherical Earth.

A satellite points its boresight at the target centre when the off-nadir angle that needs is at
most ``max_off_nadir``; otherwise it tilts as far as it may toward the target (the footprint may
then still reach the target's edge). The footprint is the camera's square frame projected on the
ground around the boresight point: half-width ``slant · tan η`` across the look direction and that
divided by cos(incidence) along it (first order in the frame's half-angle η; exact at nadir up to
the Earth's curvature inside the frame, which at 550 km and a 20 km swath is below 0.1 %).

The target is a square ``target_km`` a side centred on the region point, rasterised on its local
tangent plane (east, north): each satellite's coverage is the fraction of cells its footprint
holds, and the group's overlap degree is the summed coverage over the covered union,
o_exp = Σ|F_i ∩ A| / |∪ F_i ∩ A| (the paper's N·P²/W² when the union is the window).

Pure functions of positions in one Earth-fixed frame [km]; the Earth is a sphere of the target's
geocentric radius (the WGS-84 ellipsoid changes the footprints by well under 1 % at these scales).
"""

from __future__ import annotations

import numpy as np


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def half_angle_from_swath(swath_km: float, altitude_km: float, radius_km: float) -> float:
    """The camera's half field of view η [rad] whose nadir footprint is ``swath_km`` wide on a sphere:
    the swath's half Earth-central angle λ = w / 2R gives tan η = R sin λ / (R + h − R cos λ)."""
    lam = swath_km / (2.0 * radius_km)
    return float(np.arctan2(radius_km * np.sin(lam), radius_km + altitude_km - radius_km * np.cos(lam)))


def off_nadir_rad(sat_km: np.ndarray, point_km: np.ndarray) -> np.ndarray:
    """Angle between the nadir direction (−sat) and the line of sight to ``point_km`` [rad], shape (...)."""
    nadir = _unit(-sat_km)
    los = _unit(point_km - sat_km)
    return np.arccos(np.clip(np.sum(nadir * los, axis=-1), -1.0, 1.0))


def ray_sphere(sat_km: np.ndarray, direction: np.ndarray, radius_km: float) -> np.ndarray:
    """First intersection of the rays sat + t·direction (t > 0, unit directions) with the sphere
    |x| = radius [km], shape (..., 3); NaN where a ray misses the Earth."""
    b = np.sum(sat_km * direction, axis=-1)
    c = np.sum(sat_km * sat_km, axis=-1) - radius_km**2
    disc = b * b - c
    t = -b - np.sqrt(np.where(disc >= 0, disc, np.nan))
    t = np.where(t > 0, t, np.nan)
    return sat_km + t[..., None] * direction


def aim_points(sat_km: np.ndarray, target_km: np.ndarray, max_off_nadir: float, radius_km: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """(boresight ground points (M, 3) [km], off-nadir angles (M,) [rad]): the target itself where it is
    within ``max_off_nadir`` [rad], else the ray tilted that far from nadir toward the target."""
    nadir = _unit(-sat_km)
    los = _unit(target_km - sat_km)
    angle = off_nadir_rad(sat_km, target_km)
    perp = los - np.sum(los * nadir, axis=-1, keepdims=True) * nadir
    norm = np.linalg.norm(perp, axis=-1, keepdims=True)
    perp = np.divide(perp, norm, out=np.zeros_like(perp), where=norm > 1e-12)
    tilt = np.minimum(angle, max_off_nadir)
    direction = np.cos(tilt)[:, None] * nadir + np.sin(tilt)[:, None] * perp
    ground = np.where((angle <= max_off_nadir)[:, None], target_km, ray_sphere(sat_km, direction, radius_km))
    return ground, tilt


def footprint_half_widths_km(sat_km: np.ndarray, ground_km: np.ndarray, half_angle: float
                             ) -> tuple[np.ndarray, np.ndarray]:
    """(across-look, along-look) half-widths [km] of a square frame of half-angle η whose boresight
    meets the ground at ``ground_km``: slant·tan η, and that over cos(incidence)."""
    slant = np.linalg.norm(ground_km - sat_km, axis=-1)
    across = slant * np.tan(half_angle)
    return across, across / np.cos(incidence_rad(sat_km, ground_km))


def incidence_rad(sat_km: np.ndarray, ground_km: np.ndarray) -> np.ndarray:
    """Angle at the ground point between the local vertical and the direction to the satellite [rad]."""
    return np.arccos(np.clip(np.sum(_unit(ground_km) * _unit(sat_km - ground_km), axis=-1), -1.0, 1.0))


def effective_gsd_m(gsd_nadir_m: float, sat_km: np.ndarray, ground_km: np.ndarray, altitude_km: np.ndarray
                    ) -> np.ndarray:
    """Ground sample distance off nadir [m]: the geometric mean of across-look (gsd·slant/h) and
    along-look (that over cos incidence)."""
    slant = np.linalg.norm(ground_km - sat_km, axis=-1)
    across = gsd_nadir_m * slant / altitude_km
    return across / np.sqrt(np.cos(incidence_rad(sat_km, ground_km)))


def tangent_basis(target_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit east and north vectors of the local tangent plane at ``target_km`` (Earth-fixed)."""
    up = _unit(target_km)
    east = _unit(np.cross([0.0, 0.0, 1.0], up))
    return east, np.cross(up, east)


def coverage_masks(sat_km: np.ndarray, target_km: np.ndarray, target_side_km: float, half_angle: float,
                   max_off_nadir: float, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(masks (M, cells²) bool: which cells of the target square each footprint holds; boresight ground
    points (M, 3); off-nadir angles (M,) [rad]) for satellites at ``sat_km`` (M, 3)."""
    radius = float(np.linalg.norm(target_km))
    ground, tilt = aim_points(sat_km, target_km, max_off_nadir, radius)
    east, north = tangent_basis(target_km)
    edges = (np.arange(cells) + 0.5) / cells * target_side_km - target_side_km / 2.0
    cx, cy = np.meshgrid(edges, edges, indexing="xy")
    cells_en = np.stack([cx.ravel(), cy.ravel()], axis=-1)  # (C, 2) km east, north
    centre = np.stack([(ground - target_km) @ east, (ground - target_km) @ north], axis=-1)  # (M, 2)
    sub = sat_km * (radius / np.linalg.norm(sat_km, axis=-1, keepdims=True))  # sub-satellite points
    look = np.stack([(ground - sub) @ east, (ground - sub) @ north], axis=-1)
    norm = np.linalg.norm(look, axis=-1, keepdims=True)
    look = np.where(norm > 1e-9, look / np.where(norm > 1e-9, norm, 1.0), np.array([1.0, 0.0]))
    across_dir = np.stack([-look[:, 1], look[:, 0]], axis=-1)
    half_across, half_along = footprint_half_widths_km(sat_km, ground, half_angle)
    rel = cells_en[None, :, :] - centre[:, None, :]  # (M, C, 2)
    along = np.abs(np.sum(rel * look[:, None, :], axis=-1))
    across = np.abs(np.sum(rel * across_dir[:, None, :], axis=-1))
    masks = (along <= half_along[:, None]) & (across <= half_across[:, None])
    masks &= np.isfinite(ground).all(axis=-1)[:, None]
    return masks, ground, tilt


def overlap_degree(masks: np.ndarray) -> float:
    """o_exp = Σ|F_i ∩ A| / |∪ F_i ∩ A| of the chosen footprints' masks (M, C); 0 when nothing is covered."""
    union = masks.any(axis=0).sum()
    return float(masks.sum() / union) if union else 0.0


def ground_range_limit_rad(altitude_km: float, radius_km: float, off_nadir: float) -> float:
    """Earth-central angle between the sub-satellite point and where a ray ``off_nadir`` [rad] from
    nadir meets the ground (the horizon's when it misses): λ = asin((R+h)/R · sin α) − α."""
    s = min(1.0, (radius_km + altitude_km) / radius_km * np.sin(off_nadir))
    return float(np.arcsin(s) - off_nadir) if s < 1.0 else float(np.arccos(radius_km / (radius_km + altitude_km)))

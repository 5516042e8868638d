"""ISL availability: distance threshold, Earth blockage, events; checked by brute force."""

import numpy as np
import pytest

from edgespacecom.config import ConstellationConfig, TimeConfig, WalkerConfig
from edgespacecom.orbits import load_ephemeris
from edgespacecom.topology import (
    EARTH_EQUATORIAL_RADIUS_KM,
    LinkSet,
    isl_links,
    link_events,
    segment_clears_sphere,
    topology_overhead_s,
)

R = EARTH_EQUATORIAL_RADIUS_KM


def test_segment_clears_sphere_simple_geometry():
    a = 7000.0
    # opposite sides of the Earth: the segment passes through the centre
    assert not segment_clears_sphere([a, 0, 0], [-a, 0, 0], R)
    # two satellites close together: clear
    assert segment_clears_sphere([a, 0, 0], [a * np.cos(0.1), a * np.sin(0.1), 0], R)
    # the chord's lowest point is at a·cos(θ/2): blocked exactly when that is below R
    theta_block = 2 * np.arccos(R / a)
    assert segment_clears_sphere([a, 0, 0], [a * np.cos(theta_block * 0.99), a * np.sin(theta_block * 0.99), 0], R)
    assert not segment_clears_sphere([a, 0, 0], [a * np.cos(theta_block * 1.01), a * np.sin(theta_block * 1.01), 0], R)


@pytest.fixture(scope="module")
def snapshot():
    tc = TimeConfig(duration_h=0.2, step_s=60.0)
    return load_ephemeris(ConstellationConfig(walker=WalkerConfig()), tc).positions_km


def _brute_force_links(pos, d_max, margin):
    n = len(pos)
    keys = []
    for i in range(n):
        d = np.linalg.norm(pos[i + 1:] - pos[i], axis=1)
        for off in np.nonzero(d <= d_max)[0]:
            j = i + 1 + off
            # sample the segment densely: every point must stay above R + margin
            s = np.linspace(0, 1, 200)[:, None]
            pts = pos[i] + s * (pos[j] - pos[i])
            if np.linalg.norm(pts, axis=1).min() > R + margin:
                keys.append(i * n + j)
    return np.array(sorted(keys))


def test_isl_links_equal_brute_force(snapshot):
    pos = snapshot[0][:300]
    got = isl_links(pos, 3000.0, 80.0)
    np.testing.assert_array_equal(got.keys, _brute_force_links(pos, 3000.0, 80.0))
    assert np.all(got.distance_km <= 3000.0)


def test_no_isl_through_the_earth(snapshot):
    """With a huge d_max, links exist only where the line of sight clears the Earth."""
    pos = snapshot[0][:200]
    links = isl_links(pos, 20000.0, 80.0)
    everything = isl_links(pos, 20000.0, -R)  # margin -R: no Earth at all
    assert 0 < len(links) < len(everything)
    s = np.linspace(0, 1, 400)[None, :, None]
    pts = pos[links.i][:, None, :] + s * (pos[links.j] - pos[links.i])[:, None, :]
    assert np.linalg.norm(pts, axis=-1).min() > R + 80.0 - 1e-6
    blocked = np.setdiff1d(everything.keys, links.keys)
    bi, bj = blocked // len(pos), blocked % len(pos)
    pts = pos[bi][:, None, :] + s * (pos[bj] - pos[bi])[:, None, :]
    assert np.all(np.linalg.norm(pts, axis=-1).min(axis=1) < R + 80.0 + 1.0)


def test_link_events_count_setups_and_teardowns():
    def ls(keys):
        k = np.array(sorted(keys), dtype=np.int64)
        return LinkSet(k // 10, k % 10, np.ones(len(k)), k)

    before, after = ls([1, 2, 3, 15]), ls([2, 3, 4, 16, 27])
    assert link_events(before, after) == (3, 2)
    assert link_events(after, after) == (0, 0)
    assert topology_overhead_s(3, 2, 0.005, 0.002) == pytest.approx(0.019)


def test_links_change_between_samples(snapshot):
    a, b = isl_links(snapshot[0], 3000.0, 80.0), isl_links(snapshot[1], 3000.0, 80.0)
    setups, teardowns = link_events(a, b)
    assert setups > 0 and teardowns > 0
    assert len(b) - len(a) == setups - teardowns


# ------------------------------------------------------------------ ISL patterns


def _walker(planes=12, per_plane=20, phasing=1, altitude=550.0, inclination=53.0):
    from edgespacecom.config import ConstellationConfig, TimeConfig, WalkerConfig
    from edgespacecom.orbits import load_ephemeris

    w = WalkerConfig(inclination_deg=inclination, total=planes * per_plane, planes=planes, phasing=phasing,
                     altitude_km=altitude)
    return w, load_ephemeris(ConstellationConfig(walker=w), TimeConfig(duration_h=1.0, step_s=600.0)).positions_km


def test_plus_grid_has_degree_four_and_the_spherical_cross_plane_distance():
    """Degree 4 everywhere (the seam between the last plane and the first is shifted by F slots);
    in-plane neighbours are a chord of 360°/S apart; cross-plane neighbours' distance follows from
    spherical geometry: two circular orbits of radius r with RAANs 360°/P apart at the same
    inclination, the satellites F·360/T apart in argument of latitude u: the distance of the two
    unit vectors, over all u, bounds every cross-plane link, the seam's included."""
    from edgespacecom.config import ISLConfig
    from edgespacecom.topology import EARTH_EQUATORIAL_RADIUS_KM, IslRule, plus_grid_pairs

    from edgespacecom.orbits import EARTH_RADIUS_KM

    w, pos = _walker()
    pairs = plus_grid_pairs(w.planes, w.per_plane, w.phasing)
    degree = np.bincount(pairs.ravel(), minlength=w.total)
    assert (degree == 4).all() and len(pairs) == 2 * w.total
    rule = IslRule.from_config(ISLConfig(pattern="grid", d_max_km=20000.0), type("C", (), {"walker": w})())
    links = rule.links(pos[0])
    assert len(links) == 2 * w.total  # every link in range with a generous d_max (and clear of the Earth)
    r = EARTH_RADIUS_KM + w.altitude_km
    in_plane = (links.j - links.i == 1) | (links.j - links.i == w.per_plane - 1)
    same_plane = links.i // w.per_plane == links.j // w.per_plane
    chord = 2 * r * np.sin(np.pi / w.per_plane)
    np.testing.assert_allclose(links.distance_km[same_plane & in_plane], chord, rtol=2e-3)  # SGP4 vs a circle
    # cross-plane: unit vectors of two circular orbits (RAAN Ω, inclination i, argument of latitude u)
    inc = np.radians(w.inclination_deg)

    def unit(raan, u):
        return np.array([np.cos(raan) * np.cos(u) - np.sin(raan) * np.sin(u) * np.cos(inc),
                         np.sin(raan) * np.cos(u) + np.cos(raan) * np.sin(u) * np.cos(inc),
                         np.sin(u) * np.sin(inc)])

    d_raan, d_u = 2 * np.pi / w.planes, 2 * np.pi * w.phasing / w.total
    cross = ~same_plane
    got = links.distance_km[cross]
    expected_min = min(np.linalg.norm(r * (unit(0.0, u) - unit(d_raan, u + d_u))) for u in np.linspace(0, 2 * np.pi, 721))
    expected_max = max(np.linalg.norm(r * (unit(0.0, u) - unit(d_raan, u + d_u))) for u in np.linspace(0, 2 * np.pi, 721))
    assert expected_min * 0.995 <= got.min() and got.max() <= expected_max * 1.005
    assert EARTH_EQUATORIAL_RADIUS_KM < r


def test_plus_grid_drops_links_out_of_range_and_terminals_limit_the_distance_rule():
    from edgespacecom.config import ISLConfig
    from edgespacecom.topology import IslRule, isl_links

    w, pos = _walker()
    walker = type("C", (), {"walker": w})()
    grid = IslRule.from_config(ISLConfig(pattern="grid", d_max_km=2500.0), walker).links(pos[0])
    assert w.total <= len(grid) < 2 * w.total and (grid.distance_km <= 2500.0).all()  # in-plane: 2167 km
    every = isl_links(pos[0], 3000.0, 80.0)
    limited = IslRule.from_config(ISLConfig(d_max_km=3000.0, terminals=4)).links(pos[0])
    degree = np.bincount(np.concatenate([limited.i, limited.j]), minlength=w.total)
    assert degree.max() <= 4 and len(limited) < len(every)
    assert set(limited.keys.tolist()) <= set(every.keys.tolist())
    # greedy shortest-first: each satellite's shortest link in range is kept unless both its ends are full
    shortest = {}
    for a, b, d in zip(every.i.tolist(), every.j.tolist(), every.distance_km.tolist()):
        for u in (a, b):
            if u not in shortest or d < shortest[u][0]:
                shortest[u] = (d, a * w.total + b)
    kept = set(limited.keys.tolist())
    assert sum(key in kept for _, key in shortest.values()) > 0.9 * len(shortest)


def test_grid_pattern_needs_a_walker_constellation(tmp_path):
    from edgespacecom.config import ScenarioError, validate_scenario

    tle = tmp_path / "x.tle"
    tle.write_text("ISS\n1 25544U 98067A   26001.00000000  .00016717  00000-0  10270-3 0  9005\n"
                   "2 25544  51.6400 247.4627 0006703 130.5360 325.0288 15.50000000 00005\n")
    with pytest.raises(ScenarioError, match="isl.pattern: 'grid' links planes and slots of a Walker"):
        validate_scenario({"name": "x", "kind": "sync", "constellation": {"tle_file": str(tle)},
                           "isl": {"pattern": "grid"}}, "x.yaml")

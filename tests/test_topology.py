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

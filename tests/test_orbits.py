"""Orbits against analytic values: period, in-plane spacing, Walker phasing, Skyfield, TLE."""

import math

import numpy as np
import pytest
from skyfield.framelib import itrs

from edgespacecom.config import ConstellationConfig, TimeConfig, WalkerConfig
from edgespacecom.orbits import (
    constellation_satellites,
    load_ephemeris,
    propagate_itrs,
    sample_times,
    tle_satellites,
    utc_julian_dates,
)

MU = 398600.8  # WGS-72 [km^3/s^2]
RE = 6378.135  # WGS-72 [km]


def test_orbital_period_550km_is_95_65_min():
    """Measured nodal period of a propagated 550 km satellite = 95.65 min within 0.1 %."""
    walker = WalkerConfig(total=1, planes=1, phasing=0)
    tc = TimeConfig(duration_h=6.5, step_s=5.0)
    (sat,) = constellation_satellites(ConstellationConfig(walker=walker), tc.start)
    jd, fr = utc_julian_dates(tc)
    _, r, _ = sat.model.sgp4_array(jd, fr)  # TEME
    z = r[:, 2]
    up = np.nonzero((z[:-1] < 0) & (z[1:] >= 0))[0]  # ascending-node crossings
    t = (up + -z[up] / (z[up + 1] - z[up])) * tc.step_s  # linear interpolation [s]
    period_min = np.diff(t).mean() / 60.0
    assert len(up) >= 3
    assert period_min == pytest.approx(95.65, rel=1e-3)
    # and the Kepler value, computed independently here
    assert 2 * math.pi * math.sqrt((RE + 550.0) ** 3 / MU) / 60 == pytest.approx(95.65, rel=1e-3)


def test_same_plane_neighbour_distance():
    """Adjacent satellites of one plane are 2a·sin(π/S) apart."""
    walker = WalkerConfig()
    tc = TimeConfig(duration_h=1.0, step_s=600.0)
    pos = load_ephemeris(ConstellationConfig(walker=walker), tc).positions_km
    a, S = RE + walker.altitude_km, walker.per_plane
    expected = 2 * a * math.sin(math.pi / S)
    d = np.linalg.norm(pos[:, 0] - pos[:, 1], axis=-1)
    np.testing.assert_allclose(d, expected, rtol=2e-3)
    # every in-plane neighbour pair, last wraps to first
    plane0 = pos[0, :S]
    d_all = np.linalg.norm(plane0 - np.roll(plane0, -1, axis=0), axis=-1)
    np.testing.assert_allclose(d_all, expected, rtol=2e-3)


@pytest.mark.parametrize("F", [0, 1, 7])
def test_walker_phasing_between_adjacent_planes(F):
    """Argument of latitude of slot 0 advances by F·360/T from plane p to p+1 (measured in TEME)."""
    walker = WalkerConfig(total=120, planes=12, phasing=F, inclination_deg=60.0)
    tc = TimeConfig(duration_h=1.0)
    sats = constellation_satellites(ConstellationConfig(walker=walker), tc.start)
    jd, fr = utc_julian_dates(tc)

    def arg_latitude(sat):
        _, r, v = sat.model.sgp4(jd[0], fr[0])
        r, v = np.array(r), np.array(v)
        h = np.cross(r, v)
        h /= np.linalg.norm(h)
        node = np.cross([0.0, 0.0, 1.0], h)
        node /= np.linalg.norm(node)
        return math.degrees(math.atan2(r @ np.cross(h, node), r @ node))

    S = walker.per_plane
    for p in range(walker.planes - 1):
        du = (arg_latitude(sats[(p + 1) * S]) - arg_latitude(sats[p * S]) + 180.0) % 360.0 - 180.0
        assert du == pytest.approx(F * 360.0 / walker.total, abs=0.05)  # SGP4 J2 short-period terms: ~0.03 deg
    # RAAN spacing 360/P
    raan = [math.degrees(sats[p * S].model.nodeo) for p in range(walker.planes)]
    np.testing.assert_allclose(np.diff(raan), 360.0 / walker.planes, atol=1e-9)


def test_vectorised_positions_match_skyfield():
    """The vectorised SGP4 + TEME→ITRS pipeline equals Skyfield's own EarthSatellite.at()."""
    tc = TimeConfig(duration_h=2.0, step_s=300.0)
    cfg = ConstellationConfig(walker=WalkerConfig(total=60, planes=6, phasing=2))
    sats = constellation_satellites(cfg, tc.start)
    pos = propagate_itrs(sats, tc)
    t = sample_times(tc)
    for i in (0, 17, 59):
        sky = sats[i].at(t).frame_xyz(itrs).km.T
        np.testing.assert_allclose(pos[:, i], sky, atol=1e-6)  # km: 1 mm


def test_altitude_and_cache_roundtrip(tmp_path):
    tc = TimeConfig(duration_h=1.0, step_s=120.0)
    cfg = ConstellationConfig(walker=WalkerConfig(total=40, planes=4))
    first = load_ephemeris(cfg, tc, cache_dir=tmp_path)
    second = load_ephemeris(cfg, tc, cache_dir=tmp_path)
    assert not first.from_cache and second.from_cache
    np.testing.assert_array_equal(first.positions_km, second.positions_km)
    r = np.linalg.norm(first.positions_km, axis=-1)
    assert np.all(np.abs(r - (RE + 550.0)) < 25.0)  # circular orbit, J2 short-period terms only
    other = load_ephemeris(cfg.model_copy(update={"walker": WalkerConfig(total=40, planes=4, altitude_km=600)}), tc, cache_dir=tmp_path)
    assert not other.from_cache  # a different orbit is a different cache key


ISS_TLE = """ISS (ZARYA)
1 25544U 98067A   14020.93268519  .00009878  00000-0  18200-3 0  5082
2 25544  51.6498 109.4756 0003572  55.9686 274.8005 15.49815350868473
"""


def test_tle_file(tmp_path):
    path = tmp_path / "iss.tle"
    path.write_text(ISS_TLE)
    (iss,) = tle_satellites(path)
    assert iss.name == "ISS (ZARYA)"
    period_min = 2 * math.pi / iss.model.no_kozai
    assert period_min == pytest.approx(1440 / 15.49815350868473, rel=1e-9)
    from datetime import datetime, timezone

    tc = TimeConfig(start=datetime(2014, 1, 21, tzinfo=timezone.utc), duration_h=1.0)
    pos = propagate_itrs([iss], tc)
    alt = np.linalg.norm(pos[:, 0], axis=-1) - RE
    assert np.all((alt > 330) & (alt < 440))

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


def test_a_real_catalogue_with_comments_and_decayed_objects(tmp_path):
    """The SGP4 verification set shipped inside the sgp4 package: 33 real element sets with comment
    lines and objects long decayed by 2026. Comments are not names; the satellites SGP4 cannot
    propagate over the window are left out and named, or refused under on_propagation_error: fail."""
    from pathlib import Path

    import sgp4

    from edgespacecom.orbits import tle_element_lines

    path = Path(sgp4.__file__).parent / "SGP4-VER.TLE"
    text = path.read_bytes()
    element_sets = sum(1 for line in text.splitlines() if line.startswith(b"1 "))
    sats = tle_satellites(path)
    assert len(sats) == element_sets == 33
    assert not any(s.name.startswith("#") for s in sats) and sats[0].name == "NORAD 00005"
    assert b"#" not in tle_element_lines(text)
    tc = TimeConfig(start="2026-01-01T00:00:00Z", duration_h=1, step_s=600)
    cfg = ConstellationConfig(tle_file=path)
    eph = load_ephemeris(cfg, tc, tmp_path)
    assert eph.satellites + len(eph.dropped) == 33 and 0 < len(eph.dropped) < 33
    assert np.isfinite(eph.positions_km).all()
    # the kept satellites are exactly those SGP4 propagates without error at every sample
    jd, fr = utc_julian_dates(tc)
    ok = [s.name for s in sats if not np.any(s.model.sgp4_array(jd, fr)[0])]
    assert eph.names == ok
    # each kept satellite maps back to its element set (contact plans take satellites by this index)
    assert [sats[eph.constellation_index(i)].name for i in range(eph.satellites)] == eph.names
    kept = [eph.constellation_index(i) for i in range(eph.satellites)]
    np.testing.assert_allclose(eph.positions_km[:, -1], propagate_itrs([sats[kept[-1]]], tc)[:, 0])
    again = load_ephemeris(cfg, tc, tmp_path)  # from the cache: the same satellites left out
    assert again.from_cache and again.names == eph.names and again.dropped == eph.dropped
    with pytest.raises(ValueError, match=r"constellation: SGP4 cannot propagate \d+ of 33 satellite\(s\)"):
        load_ephemeris(ConstellationConfig(tle_file=path, on_propagation_error="fail"), tc, tmp_path)


@pytest.mark.parametrize("damage", ["flip", "zero_bytes", "truncate", "float32", "no_sidecar", "versions"])
def test_a_damaged_position_cache_is_recomputed_with_one_line(tmp_path, caplog, damage):
    import json

    tc = TimeConfig(duration_h=0.5, step_s=300)
    cfg = ConstellationConfig(walker=WalkerConfig(total=12, planes=3, phasing=1))
    fresh = load_ephemeris(cfg, tc, tmp_path)
    (npy,) = tmp_path.glob("positions-*.npy")
    meta = npy.with_suffix(".json")
    data = bytearray(npy.read_bytes())
    if damage == "flip":
        data[-20] ^= 0x40
        npy.write_bytes(bytes(data))
    elif damage == "zero_bytes":
        npy.write_bytes(b"")
    elif damage == "truncate":
        npy.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "float32":
        import hashlib
        import io

        buf = io.BytesIO()
        np.save(buf, fresh.positions_km.astype(np.float32))
        npy.write_bytes(buf.getvalue())  # a consistent sidecar, yet not what positions are
        meta.write_text(json.dumps({**json.loads(meta.read_text()),
                                    "sha256": hashlib.sha256(buf.getvalue()).hexdigest()}))
    elif damage == "no_sidecar":
        meta.unlink()
    elif damage == "versions":
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "versions": {"sgp4": "0.0"}}))
    with caplog.at_level("WARNING", logger="edgespacecom"):
        again = load_ephemeris(cfg, tc, tmp_path)
    assert not again.from_cache and np.array_equal(again.positions_km, fresh.positions_km)
    assert any("position cache" in r.getMessage() and "recomputing" in r.getMessage() for r in caplog.records)
    assert load_ephemeris(cfg, tc, tmp_path).from_cache  # rewritten intact


def test_an_unusable_cache_folder_runs_without_it(tmp_path, caplog):
    tc = TimeConfig(duration_h=0.5, step_s=300)
    cfg = ConstellationConfig(walker=WalkerConfig(total=12, planes=3, phasing=1))
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with caplog.at_level("WARNING", logger="edgespacecom"):
        eph = load_ephemeris(cfg, tc, blocker)
    assert eph.satellites == 12 and not eph.from_cache
    assert any("running without it" in r.getMessage() for r in caplog.records)
    folder = tmp_path / "c2"
    load_ephemeris(cfg, tc, folder)
    (npy,) = folder.glob("positions-*.npy")
    npy.unlink()
    npy.mkdir()  # a folder in the cache file's place
    with caplog.at_level("WARNING", logger="edgespacecom"):
        eph = load_ephemeris(cfg, tc, folder)
    assert eph.satellites == 12

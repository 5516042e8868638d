"""Interchange: TLEs of a Walker shell read back to the same positions; ISL edge lists equal the
simulator's links, with the link budget's rates."""

import numpy as np
import pandas as pd
import yaml

from edgespacecom.cli import main
from edgespacecom.config import ConstellationConfig, LinkConfig, TimeConfig, WalkerConfig
from edgespacecom.links import link_rate_bps
from edgespacecom.orbits import load_ephemeris
from edgespacecom.topology import isl_links

WALKER = {"inclination_deg": 53.0, "total": 60, "planes": 6, "phasing": 1, "altitude_km": 550.0}
TIME = {"start": "2026-03-01T00:00:00Z", "duration_h": 2, "step_s": 300}


def _scenario(tmp_path, **extra):
    sc = {"name": "x", "kind": "sync", "constellation": {"walker": WALKER}, "time": TIME,
          "isl": {"d_max_km": 6000}, **extra}
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(sc))
    return path


def test_exported_tles_read_back_to_the_same_positions(tmp_path):
    tle = tmp_path / "shell.tle"
    assert main(["export", "tle", str(_scenario(tmp_path)), "--out", str(tle)]) == 0
    lines = tle.read_text().splitlines()
    assert len(lines) == 3 * 60 and lines[1].startswith("1 ") and lines[2].startswith("2 ")
    time = TimeConfig(**TIME)
    walker = load_ephemeris(ConstellationConfig(walker=WalkerConfig(**WALKER)), time)
    read = load_ephemeris(ConstellationConfig(tle_file=tle), time)
    err = np.linalg.norm(read.positions_km - walker.positions_km, axis=-1)
    # the TLE format rounds angles to 1e-4 degree (12 m at 6928 km) and the epoch to 1e-8 day
    assert err.max() < 0.1, err.max()
    assert read.names[:2] == walker.names[:2]


def test_exported_isl_edges_are_the_simulators_links(tmp_path):
    out = tmp_path / "isl"
    assert main(["export", "isl", str(_scenario(tmp_path)), "--out", str(out), "--format", "csv"]) == 0
    edges = pd.read_csv(out / "isl_edges.csv")
    samples = pd.read_csv(out / "samples.csv")
    sats = pd.read_csv(out / "satellites.csv")
    assert len(samples) == 24 and samples["t_s"].iloc[-1] == 6900.0 and len(sats) == 60  # [start, end)
    eph = load_ephemeris(ConstellationConfig(walker=WalkerConfig(**WALKER)), TimeConfig(**TIME))
    for k in (0, 13, 23):
        links = isl_links(eph.positions_km[k], 6000.0, 80.0)
        got = edges[edges["sample"] == k]
        np.testing.assert_array_equal(got["sat_a"], links.i)
        np.testing.assert_array_equal(got["sat_b"], links.j)
        # independent check of each length from the positions, and of the rate from the link budget
        d = np.linalg.norm(eph.positions_km[k, links.i] - eph.positions_km[k, links.j], axis=1)
        np.testing.assert_allclose(got["distance_km"], d, rtol=1e-8)
        np.testing.assert_allclose(got["light_delay_s"], d / 299792.458, rtol=1e-8)
        np.testing.assert_allclose(got["rate_bps"], link_rate_bps(d, LinkConfig()), rtol=1e-8)
        assert (got["sat_a"] < got["sat_b"]).all()


def test_export_needs_a_constellation(tmp_path, capsys):
    path = tmp_path / "rd.yaml"
    path.write_text(yaml.safe_dump({"name": "r", "kind": "rd"}))
    assert main(["export", "tle", str(path), "--out", str(tmp_path / "x.tle")]) == 2
    assert "has no constellation" in capsys.readouterr().err


def test_a_sync_run_on_the_plus_grid(tmp_path):
    """+Grid on a 6 × 10 shell: in-plane links (4282 km) always in range, cross-plane ones (planes 60°
    apart) only where the planes close in; the exported edges are grid pairs, at most 4 a satellite."""
    from edgespacecom.topology import plus_grid_pairs

    path = _scenario(tmp_path, isl={"pattern": "grid", "d_max_km": 6000}, participants={"count": 4})
    assert main(["-q", "run", str(path), "--out", str(tmp_path / "run")]) == 0
    topo = pd.read_csv(tmp_path / "run" / "topology.csv")
    assert (topo["isl_links"] >= 60).all() and (topo["isl_links"] < 120).all()
    assert main(["export", "isl", str(path), "--out", str(tmp_path / "isl")]) == 0
    edges = pd.read_parquet(tmp_path / "isl" / "isl_edges.parquet")
    grid = {tuple(p) for p in plus_grid_pairs(6, 10, 1).tolist()}
    assert set(zip(edges["sat_a"], edges["sat_b"])) <= grid
    first = edges[edges["sample"] == 0]
    assert len(first) == topo["isl_links"].iloc[0]
    assert np.bincount(np.concatenate([first["sat_a"], first["sat_b"]]), minlength=60).max() <= 4

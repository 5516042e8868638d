"""The sensor's geometry against closed forms on a sphere, and geometric participants in a mission."""

import json

import numpy as np
import pandas as pd
import pytest

from edgespacecom import sensor as geo
from edgespacecom.participants import geometric_rounds, region_point_itrs_km

R = 6371.0
H = 550.0


def _sat_above(central_angle: float, h: float = H) -> np.ndarray:
    """A satellite at altitude h whose sub-point is ``central_angle`` north of (R, 0, 0)."""
    return (R + h) * np.array([[np.cos(central_angle), 0.0, np.sin(central_angle)]])


TARGET = np.array([R, 0.0, 0.0])


def test_nadir_swath_is_what_the_half_angle_sees():
    eta = geo.half_angle_from_swath(20.0, H, R)
    sat = _sat_above(0.0)
    ray = np.array([[-np.cos(eta), 0.0, np.sin(eta)]])  # η from nadir, toward north
    hit = geo.ray_sphere(sat, ray, R)[0]
    arc = R * np.arctan2(hit[2], hit[0])
    assert arc == pytest.approx(10.0, rel=1e-9)  # half the swath along the surface


@pytest.mark.parametrize("lam_km", [50.0, 300.0, 900.0])
def test_off_nadir_angle_and_ground_range_are_inverse_closed_forms(lam_km):
    lam = lam_km / R
    sat = _sat_above(lam)
    alpha = geo.off_nadir_rad(sat, TARGET)[0]
    # law of sines in the triangle (Earth centre, satellite, target)
    assert np.tan(alpha) == pytest.approx(R * np.sin(lam) / (R + H - R * np.cos(lam)), rel=1e-9)
    assert geo.ground_range_limit_rad(H, R, alpha) == pytest.approx(lam, rel=1e-9)


def test_pointing_is_limited_to_max_off_nadir():
    sat = np.vstack([_sat_above(100 / R), _sat_above(700 / R)])
    ground, tilt = geo.aim_points(sat, TARGET, np.radians(30.0), R)
    np.testing.assert_allclose(ground[0], TARGET)  # within reach: the boresight meets the target
    assert tilt[1] == pytest.approx(np.radians(30.0))
    assert np.linalg.norm(ground[1]) == pytest.approx(R)
    # the far satellite's boresight lands between its sub-point and the target, 30° from nadir
    assert geo.off_nadir_rad(sat[1:], ground[1])[0] == pytest.approx(np.radians(30.0), abs=1e-9)
    assert 0 < np.arctan2(ground[1][2], ground[1][0]) < 700 / R


def test_footprints_coverage_and_overlap_degree():
    eta = geo.half_angle_from_swath(20.0, H, R)
    at_nadir = _sat_above(0.0)
    masks, _, _ = geo.coverage_masks(np.vstack([at_nadir, at_nadir]), TARGET, 10.0, eta, np.radians(30), 32)
    assert masks.all() and geo.overlap_degree(masks) == pytest.approx(2.0)
    # a 40 km target: a nadir 20 km frame holds a quarter of it
    masks, _, _ = geo.coverage_masks(at_nadir, TARGET, 40.0, eta, np.radians(30), 64)
    assert masks.mean() == pytest.approx(0.25, abs=0.02)
    # too far to reach: nothing
    masks, _, _ = geo.coverage_masks(_sat_above(2000 / R), TARGET, 10.0, eta, np.radians(30), 16)
    assert not masks.any() and geo.overlap_degree(masks) == 0.0
    # off nadir the frame stretches along the look direction by 1/cos(incidence)
    sat = _sat_above(300 / R)
    across, along = geo.footprint_half_widths_km(sat, TARGET[None], eta)
    inc = geo.incidence_rad(sat, TARGET[None])[0]
    assert along[0] / across[0] == pytest.approx(1 / np.cos(inc))
    assert geo.effective_gsd_m(1.0, at_nadir, TARGET[None], np.array([H]))[0] == pytest.approx(1.0)


def test_geometric_rounds_follow_the_passes():
    """Along one orbit the target is seen for a stretch of samples; N and o_exp come from it."""
    from types import SimpleNamespace

    sensor = SimpleNamespace(swath_km=20.0, fov_deg=None, gsd_m=1.0, max_off_nadir_deg=30.0, target_km=10.0,
                             min_coverage=0.05, grid=32)
    target = region_point_itrs_km(0.0, 0.0)
    lam = np.linspace(-0.2, 0.2, 41)  # sub-point sweeps over the target northward
    sat_a = (R + H) * np.stack([np.cos(lam), np.zeros_like(lam), np.sin(lam)], axis=-1)
    far = np.tile((R + H) * np.array([0.0, 1.0, 0.0]), (41, 1))  # a quarter of the globe away
    positions = np.stack([sat_a, far, sat_a], axis=1)  # satellites 0 and 2 fly together
    rows = geometric_rounds(positions, np.arange(41) * 10.0, 0.0, 0.0, sensor, count=8)
    assert rows and all(r["participants"] == (0, 2) and r["N"] == 2 for r in rows)
    reach = geo.ground_range_limit_rad(H, np.linalg.norm(target), np.radians(30.0))
    seen = np.abs(lam) < reach  # whose boresight can reach the centre
    assert {r["sample"] for r in rows} >= set(np.nonzero(seen)[0].tolist())
    assert all(r["o_exp"] == pytest.approx(2.0) for r in rows)
    assert max(geometric_rounds(positions, np.arange(41) * 10.0, 0.0, 0.0, sensor, count=1),
               key=lambda r: r["N"])["N"] == 1


@pytest.mark.slow
def test_a_day_with_the_sensor_block_has_time_varying_participants(tmp_path):
    """The shipped geometric scenario, shortened to 6 h on 128² patches: captures come with the passes,
    N and o_exp vary, lone captures are coded by the codec alone, and every round decodes exactly."""
    import yaml

    from edgespacecom.cli import main
    from edgespacecom.scenarios import shipped_scenarios

    from tests.conftest import eo

    sc = yaml.safe_load(shipped_scenarios()["geometric_day"].read_text())
    sc["time"]["duration_h"] = 6
    sc["overlap"]["patch"] = 128
    sc["data"]["scenes"] = [str(eo("rgb/test/inria_bellingham1_1024.tif"))]
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(sc))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    rounds = pd.read_csv(tmp_path / "out" / "capture_rounds.csv")
    assert s["participants"]["selection"] == "geometric" and s["participants"]["capture_rounds"] == len(rounds)
    assert rounds["N"].nunique() >= 3 and rounds["N"].min() == 1 and (rounds["N"] <= 8).all()
    assert ((rounds["o_exp"] >= 1.0 - 1e-9) & (rounds["o_exp"] <= rounds["N"] + 1e-9)).all()
    assert rounds["t_s"].is_monotonic_increasing and (rounds["off_nadir_deg"] <= 45 + 1e-6).all()
    sync = pd.read_csv(tmp_path / "out" / "sync_rounds.csv")
    assert set(sync["round"]) == set(rounds.loc[rounds["N"] > 1, "round"])  # the codec alone: no exchange
    assert s["decode_exact"] is True and s["bpp_dlrc"] < s["bpp_baseline"]


@pytest.mark.parametrize("raw, message", [
    ({"kind": "mission", "participants": {"count": 4, "selection": "geometric"}, "overlap": {"satellites": 4}},
     "sensor: participants.selection 'geometric' needs a sensor block"),
    ({"kind": "mission", "participants": {"count": 4}, "overlap": {"satellites": 4}, "sensor": {"swath_km": 20}},
     "sensor: used only with participants.selection: geometric"),
    ({"kind": "mission", "participants": {"count": 4, "selection": "geometric"}, "overlap": {"satellites": 4},
      "sensor": {"swath_km": 20, "fov_deg": 2}}, "give exactly one of swath_km and fov_deg"),
    ({"kind": "mission", "participants": {"count": 4, "selection": "geometric"}, "overlap": {"satellites": 4},
      "sensor": {"swath_km": 20, "max_off_nadir_deg": 80}}, "sensor.max_off_nadir_deg"),
    ({"kind": "sync", "participants": {"count": 4, "selection": "geometric"}, "sensor": {"swath_km": 20}},
     "'geometric' is for missions"),
    ({"kind": "mission", "participants": {"count": 4}, "overlap": {"satellites": 4},
      "mission": {"losses": {"stream_loss_rate": 1.5}}}, "mission.losses.stream_loss_rate"),
])
def test_sensor_and_loss_settings_are_checked_with_the_key_named(raw, message):
    from edgespacecom.config import ScenarioError, validate_scenario

    with pytest.raises(ScenarioError) as err:
        validate_scenario({"name": "t", **raw}, "s.yaml")
    assert message in str(err.value) and "\n" not in str(err.value).strip(), str(err.value)


def test_fixed_slots_keep_the_nearest_at_the_start():
    from edgespacecom.participants import select_participants

    rng = np.random.default_rng(0)
    pos = rng.normal(size=(5, 40, 3))
    pos *= (R + H) / np.linalg.norm(pos, axis=-1, keepdims=True)
    fixed = select_participants(pos, 10.0, 20.0, 6, "fixed_slots")
    nearest = select_participants(pos, 10.0, 20.0, 6, "nearest")
    assert (fixed == nearest[0]).all() and not (nearest == nearest[0]).all()


def test_figure_a2_twice_from_two_sweeps(tmp_path, capsys):
    """`edgespacecom figure-a2` draws both panels and writes the joined table; a missing sweep is named."""
    from edgespacecom.cli import main

    cols = {"g_down_simulated": 0.1, "g_down_analytic": 0.12, "g_down_delivered": 0.5, "g_down_analytic_paper": 0.6,
            "g_down_balanced_ideal": 0.6}
    paper = pd.DataFrame([{"ground.rate_bps": x, "ground.downlink.windows_per_day": nw, "dlrc.priority": p,
                           "g_down_regime": "D:downlink B:downlink" if x < 1e7 else "D:compute B:compute", **cols}
                          for x in (1e6, 1e7, 1e8) for nw in (4, 12) for p in ("fixed", "rotate")])
    real = pd.DataFrame([{"ground.rate_bps": x, "dlrc.priority": p, **cols,
                          "g_down_regime": "D:downlink B:downlink" if x < 100 else "D:captures B:captures"}
                         for x in (20.0, 100.0, 1000.0) for p in ("fixed", "backlog")])
    for name, table in (("p", paper), ("r", real)):
        (tmp_path / name).mkdir()
        table.to_csv(tmp_path / name / "sweep.csv", index=False)
    out = tmp_path / "fig.png"
    assert main(["figure-a2", str(tmp_path / "p"), str(tmp_path / "r"), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    joined = pd.read_csv(out.with_suffix(".csv"))
    assert len(joined) == len(paper) + len(real) and set(joined["model"]) == {"paper", "realistic"}
    assert main(["figure-a2", str(tmp_path / "p"), str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "realistic:" in capsys.readouterr().err

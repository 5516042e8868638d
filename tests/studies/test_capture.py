"""Captures off the ideal protocol (misregistration, radiometry, noise), the shared grid, revisit
stacks and the norm guard, against values worked out by hand."""

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from rasterio import Affine

from dlrc_agents.studies.capture import (AXES, Perturbation, capture, draw_perturbation, resampling_psnr, snapped_origin, to_geo_grid)
from dlrc_agents.common.data import DataError, pixel_origins, scene_date, years_between
from dlrc_agents.dlrc.recognizer import Recognizer, norm_codes
from edgespacecom.cli import main


def smooth_scene(h=200, w=220):
    """A band-limited test image (sums of low-frequency sinusoids), 8-bit."""
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    bands = [120 + 60 * np.sin(yy / 9.0 + k) * np.cos(xx / 11.0 - k) + 30 * np.sin((xx + yy) / 17.0) for k in range(3)]
    return np.clip(np.round(np.stack(bands, -1)), 0, 255).astype(np.uint8)


def test_unperturbed_and_integer_shifted_captures_are_crops():
    scene = smooth_scene()
    rng = np.random.default_rng(0)
    image, geometry = capture(scene, (32, 48), 64, Perturbation(), rng)
    assert np.array_equal(image, scene[32:96, 48:112])
    assert geometry.integer_translation() == (32, 48)
    image, _ = capture(scene, (32, 48), 64, Perturbation(shift=(5.0, 3.0)), rng)
    assert np.array_equal(image, scene[37:101, 51:115])


def test_geometry_rotates_and_scales_about_the_patch_centre():
    g = Perturbation(rotation_deg=90.0, scale=1.05).geometry((10, 20), 64)
    centre = np.full((2, 1), 31.5)
    assert np.allclose(g.ground(centre)[:, 0], [10 + 31.5, 20 + 31.5])
    # one pixel down the capture's rows is 1.05 px along +x on the ground (a quarter turn)
    step = g.ground(centre + np.array([[1.0], [0.0]])) - g.ground(centre)
    assert np.allclose(step[:, 0], [0.0, 1.05])
    assert np.allclose(g.pixels(g.ground(centre)), centre)


def test_geo_grid_of_an_integer_shift_is_the_scene_on_the_grid():
    scene = smooth_scene()
    image, geometry = capture(scene, (32, 48), 64, Perturbation(shift=(5.0, 3.0)), np.random.default_rng(0))
    tile = to_geo_grid(image, geometry, 16)
    # centre (37 + 31.5, 51 + 31.5) less 31.5 -> (37, 51), rounded to multiples of 16 -> (32, 48)
    assert tile.origin == (32, 48) == snapped_origin(geometry, 64, 16)
    assert np.array_equal(tile.image[5:, 3:], scene[37:96, 51:112])  # the ground the capture saw
    assert tile.fill_fraction == pytest.approx(1 - 59 * 61 / 64**2)  # 5 rows and 3 columns it did not
    assert np.array_equal(tile.image[:5, 3:], np.repeat(scene[37:38, 51:112], 5, axis=0))  # nearest captured row
    assert resampling_psnr(image, geometry, tile) == float("inf")


def test_geo_grid_undoes_rotation_scale_and_subpixel_shift():
    scene = smooth_scene()
    p = Perturbation(shift=(0.4, 0.3), rotation_deg=1.5, scale=1.03)
    image, geometry = capture(scene, (64, 64), 96, p, np.random.default_rng(0))
    tile = to_geo_grid(image, geometry, 16)
    assert tile.origin == (64, 64)
    truth = scene[tile.origin[0]:tile.origin[0] + 96, tile.origin[1]:tile.origin[1] + 96].astype(float)
    inner = (slice(8, -8), slice(8, -8))  # away from the edges the capture did not see
    err = np.abs(tile.image[inner].astype(float) - truth[inner])
    assert err.max() <= 3 and err.mean() < 0.8  # two cubic resamplings of a smooth image
    assert not np.array_equal(image, scene[64:160, 64:160])  # the capture itself is not on the grid
    assert 35 < resampling_psnr(image, geometry, tile) < 80


def test_radiometry_and_noise():
    scene = np.full((80, 80, 3), 100, dtype=np.uint8)
    p = Perturbation(gain=(1.1, 1.0, 0.9), bias=(0.0, 0.02, 0.0))
    image, _ = capture(scene, (0, 0), 64, p, np.random.default_rng(0))
    assert image[0, 0].tolist() == [110, round(100 + 0.02 * 255), 90]
    noisy, _ = capture(scene, (0, 0), 64, Perturbation(noise_dn=2.0), np.random.default_rng(1))
    assert abs(noisy.astype(float).std() - 2.0) < 0.1


def test_perturbation_draws_are_seeded_and_in_range():
    levels = {"offset": 15, "subpixel": 0.5, "rotation": 2, "scale": 0.05, "radiometric": 0.04, "noise": 1}
    a = [draw_perturbation(levels, 3, np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    for p in (draw_perturbation(levels, 3, np.random.default_rng(s)) for s in range(200)):
        assert all(0 <= v < 15.5 for v in p.shift)
        assert abs(p.rotation_deg) <= 2 and abs(p.scale - 1) <= 0.05 and p.noise_dn == 1
        assert all(abs(g - 1) <= 0.04 for g in p.gain) and all(abs(b) <= 0.02 for b in p.bias)
    assert draw_perturbation({}, 3, np.random.default_rng(0)) == Perturbation()
    with pytest.raises(ValueError, match="unknown perturbation axis 'tilt'"):
        draw_perturbation({"tilt": 1}, 3, np.random.default_rng(0))
    assert set(AXES) == {"offset", "subpixel", "rotation", "scale", "radiometric", "noise"}


def test_norm_guard_separates_magnitudes_it_cannot_otherwise_see():
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((48, 4, 4)).astype(np.float32)
    scaled = latent * 1.5
    plain, guarded = Recognizer(48, 8, seed=1), Recognizer(48, 8, seed=1, norm_guard=0.1)
    assert np.array_equal(plain.signatures(latent), plain.signatures(scaled))  # same directions
    assert np.array_equal(guarded.signatures(latent), guarded.signatures(latent.copy()))
    assert not np.any(guarded.signatures(latent) == guarded.signatures(scaled))  # 1.5 > 1.1: other buckets
    v = np.zeros((2, 3))
    v[0] = [1.0, 1.3, 0.0]  # norms 1, 1.3, 0
    assert norm_codes(v, 0.1).view(np.int64).tolist() == [0, 2, -(2**40)]  # ln 1.3 / ln 1.1 = 2.75
    with pytest.raises(ValueError, match="norm_guard"):
        Recognizer(48, 8, norm_guard=0.0)


def test_revisit_dates_and_grid_places(tmp_path):
    assert scene_date("eo:revisit/naip/naip_m_4709963_se_14_20190904.tif") == dt.date(2019, 9, 4)
    assert scene_date("landsat_2020.tif") == dt.date(2020, 7, 1)
    assert years_between(dt.date(2019, 9, 4), dt.date(2020, 9, 3)) == pytest.approx(1.0, abs=0.003)
    with pytest.raises(DataError, match="must end in its date"):
        scene_date("scene.tif")
    paths = {}
    for name, (x, y) in {"a_2019.tif": (485899.0, 5209246.0), "b_2020.tif": (485902.0, 5209248.0)}.items():
        paths[name] = tmp_path / name
        with rasterio.open(paths[name], "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8",
                           crs="EPSG:26914", transform=Affine(5.0, 0.0, x, 0.0, -5.0, y)) as dst:
            dst.write(np.zeros((3, 8, 8), np.uint8))
    # the grid: x from 485895 (multiple of 5 m below 485899), y from 5209250 (multiple above 5209248)
    assert pixel_origins(paths) == {"a_2019.tif": pytest.approx((0.8, 0.8)), "b_2020.tif": pytest.approx((0.4, 1.4))}


def _stack(tmp_path, scene, shifts):
    """Revisit files cut from one scene: date i is the scene moved by shifts[i] px, georeferenced
    accordingly (5 m pixels), and brightened a little each year."""
    paths = []
    for i, (dy, dx) in enumerate(shifts):
        path = tmp_path / f"stack_{2015 + i}0701.tif"
        img = np.clip(scene[dy:dy + 640, dx:dx + 640].astype(int) + 3 * i, 0, 255).astype(np.uint8)
        with rasterio.open(path, "w", driver="GTiff", width=640, height=640, count=3, dtype="uint8",
                           crs="EPSG:32610", transform=Affine(5.0, 0.0, 1000.0 + 5 * dx, 0.0, -5.0, 9000.0 - 5 * dy)) as dst:
            dst.write(np.moveaxis(img, -1, 0))
        paths.append(path)
    return paths


def _run(tmp_path, body: str) -> dict:
    path = tmp_path / "s.yaml"
    path.write_text(body)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    return json.loads((tmp_path / "out" / "summary.json").read_text())


def test_shared_grid_recovers_the_aligned_saving(tmp_path, scene):
    """Done-when of the misregistration study: aligned captures save what rd saves; random integer
    offsets (0–15 px) lose it; the shared grid gets ≥ 80 % back; every patch decodes exactly."""
    base = """name: m
kind: rd
seed: 3
codec: {lambdas: [0.0067]}
data: {scenes: ["eo:rgb/test/inria_bellingham1_1024.tif"]}
overlap: {satellites: 4, patch: 256, o_exp: [2.0], draws: 1}
"""
    plain = _run(tmp_path, base)["results"][0]
    rows = _run(tmp_path, base + "captures: {axes: {offset: [15]}, geo_grid: [false, true]}\n")["results"]
    by = {(r["axis"], r["geo_grid"]): r for r in rows}
    assert by["aligned", False]["bpp_reduction"] == pytest.approx(plain["bpp_reduction"], abs=1e-12)
    assert by["aligned", True]["bpp_reduction"] == pytest.approx(plain["bpp_reduction"], abs=1e-12)
    assert plain["bpp_reduction"] > 0.25
    assert by["offset", False]["bpp_reduction"] < 0.05  # off the latent grid nothing lines up
    assert by["offset", True]["saving_recovered"] >= 0.8
    assert all(r["decode_exact"] for r in rows)
    for r in rows:
        assert {"level", "perturbation", "geo_grid", "bpp_reduction", "decode_exact"} <= set(r)
        assert {"psnr"} <= set(r["dlrc"]) and {"psnr"} <= set(r["baseline"])
    assert by["offset", True]["geo_fill_fraction"] > 0 and by["offset", True]["resample_bpp_change"] is not None
    assert (tmp_path / "out" / "misreg_offset.png").stat().st_size > 0


def test_revisit_stack_end_to_end(tmp_path, scene):
    paths = _stack(tmp_path, scene, [(0, 0), (0, 0), (2, 1)])
    rows = _run(tmp_path, f"""name: r
kind: rd
seed: 0
codec: {{lambdas: [0.0067]}}
data: {{scenes: [{", ".join(f'"{p}"' for p in paths)}]}}
overlap: {{satellites: 2, patch: 256, o_exp: [2.0], draws: 3, source: revisits}}
captures: {{geo_grid: [false, true]}}
""")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["dates"].values()) == {"2015-07-01", "2016-07-01", "2017-07-01"}
    assert {r["date_gap_years"] for r in rows["results"]} <= {1.0, 2.0}
    assert all(r["decode_exact"] for r in rows["results"]) and summary["results_all_gaps"]
    assert (tmp_path / "out" / "revisit_by_gap.png").stat().st_size > 0


def test_revisit_stack_errors(tmp_path, scene):
    one = _stack(tmp_path, scene, [(0, 0)])
    body = f"""name: r
kind: rd
data: {{scenes: ["{one[0]}"]}}
overlap: {{satellites: 2, patch: 256, source: revisits}}
"""
    (tmp_path / "s.yaml").write_text(body)
    assert main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o")]) != 0
    assert not (tmp_path / "o" / "summary.json").exists()

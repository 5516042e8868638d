"""The multiview kind: RPCs read from OSSIM keyword lists, projection and footprints through GDAL's RPC
transformer, tiles on the latent lattice, the relative correction, and a run on two real Pléiades
views shipped with the package (Mont Ventoux, 33 s apart)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import ndimage

from dlrc_agents.studies import multiview as mv
from edgespacecom.cli import main

from tests.conftest import eo

LEFT, RIGHT = (eo(f"multiview/pleiades_ventoux_pair/{n}_image.tif") for n in ("left", "right"))


def test_geom_rpc_and_projection_round_trip():
    samples, rpc, offset = mv.read_view(LEFT)
    assert samples.shape == (500, 500) and offset == (5000.0, 5000.0)  # a crop of the scene: its place in it
    assert rpc.height_off == 1075 and len(rpc.line_num_coeff) == 20
    h = 600.0
    lon, lat = mv.footprint(rpc, samples.shape, offset, h)
    rows, cols = mv.project(rpc, lon, lat, np.full(4, h), offset)
    # the corners localised at h (GDAL iterates the inverse to about 0.1 px) and projected back land on the
    # corner pixels (file coordinates)
    np.testing.assert_allclose(rows, [0, 0, 499, 499], atol=0.15)
    np.testing.assert_allclose(cols, [0, 499, 499, 0], atol=0.15)
    # ~0.5 m pixels: the footprint spans about 250 m
    grid = mv.GeoGrid.at(float(rpc.lat_off), 0.5)
    r, c = grid.index(lon, lat)
    assert 450 < np.ptp(r) < 560 and 450 < np.ptp(c) < 560


def test_geom_refusals():
    text = (LEFT.with_suffix(".geom")).read_text()
    with pytest.raises(mv.MultiviewError, match="polynomial_format"):
        mv.parse_geom(text.replace("polynomial_format:  B", "polynomial_format:  A"))
    with pytest.raises(mv.MultiviewError, match="line_num_coeff_07"):
        mv.parse_geom("\n".join(l for l in text.splitlines() if not l.startswith("line_num_coeff_07")))


def test_inner_tile_sits_on_the_lattice_inside_the_footprint():
    grid = mv.GeoGrid.at(44.0, 0.5)
    # a footprint rotated by ~10° of about 600 px a side, placed anywhere
    angle = np.radians(10)
    corners = np.array([[0, 0], [0, 600], [600, 600], [600, 0]], float) @ np.array(
        [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]).T + [1234.7, -987.3]
    lon, lat = grid.lonlat(corners[:, 0], corners[:, 1])
    tile = mv.inner_tile(grid, lon, lat, max_side=512)
    assert tile.origin[0] % 16 == 0 and tile.origin[1] % 16 == 0
    assert tile.size[0] % 64 == 0 and tile.size[1] % 64 == 0 and max(tile.size) <= 512
    # every tile corner lies inside the quadrilateral
    from matplotlib.path import Path as Polygon

    poly = Polygon(corners)
    t0, t1 = tile.origin, (tile.origin[0] + tile.size[0], tile.origin[1] + tile.size[1])
    assert poly.contains_points([(t0[0], t0[1]), (t0[0], t1[1]), (t1[0], t1[1]), (t1[0], t0[1])]).all()
    with pytest.raises(mv.MultiviewError, match="64 px tile"):
        mv.inner_tile(grid, *grid.lonlat(np.array([0, 0, 60, 60.0]), np.array([0, 60, 60, 0.0])), 512)


def test_correction_peer_is_the_earlier_view_sharing_most_ground():
    tiles = {0: mv.Tile((0, 0), (256, 256)), 1: mv.Tile((128, 0), (256, 256)), 2: mv.Tile((192, 64), (256, 256)),
             3: mv.Tile((4096, 4096), (256, 256))}
    assert mv.correction_peer(tiles, 0) is None
    assert mv.correction_peer(tiles, 1)[0] == 0
    # view 2 shares 64×192 px with view 0 and 192×192 with view 1
    peer, (ra, ca, rb, cb) = mv.correction_peer(tiles, 2)
    assert peer == 1 and (ra.stop - ra.start, ca.stop - ca.start) == (192, 192) and (rb.start, cb.start) == (0, 0)
    assert mv.correction_peer(tiles, 3) is None  # shares nothing


def test_shift_between_recovers_a_known_sub_pixel_shift():
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.normal(size=(128, 128)), 1)
    moved = ndimage.shift(image, (1.3, -2.7), order=3, mode="wrap")
    dy, dx = mv.shift_between(image, moved)
    # sampling the moved image (dy, dx) further matches the reference
    assert abs(dy - 1.3) < 0.1 and abs(dx + 2.7) < 0.1


def test_shift_between_finds_a_large_shift_of_a_bright_scene():
    # a textured scene on a brightness ramp, shifted by a fifth of the window (the Marseille third view's RPC
    # bias is 158 px in a 384-px window): plain cross-correlation of the raw windows gives (0, 15)
    rng = np.random.default_rng(1)
    rows = np.arange(400.0)[:, None]
    big = 1000.0 + rows + 300.0 * ndimage.gaussian_filter(rng.normal(size=(400, 400)), 3)
    reference, moving = big[100:292, 100:292], big[60:252, 130:322]  # moving shows the ground 40 px up, 30 px right
    dy, dx = mv.shift_between(reference, moving)
    assert abs(dy - 40) < 0.5 and abs(dx + 30) < 0.5


def test_thumbnail_bytes_are_what_is_sent():
    thumb = mv.thumbnail(np.arange(64 * 64, dtype=float).reshape(64, 64), 4, 0, 4095)
    assert thumb.shape == (16, 16) and thumb.dtype == np.uint8
    data = mv.thumbnail_bytes(thumb)
    assert np.frombuffer(data[:4], "<u2").tolist() == [16, 16] and len(data) < 16 * 16 + 4


@pytest.mark.slow
def test_multiview_run_on_shipped_pleiades_views(tmp_path):
    out = tmp_path / "out"
    # no DEM: a constant height near the ground's (the RPCs' height offset, 1075 m, is the whole scene's)
    assert main(["run", "scenarios/multiview_pleiades.yaml", "--set", f"data.scenes=[{LEFT},{RIGHT}]",
                 "--set", "grid.height_m=500",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    lambdas = yaml.safe_load(Path("scenarios/multiview_pleiades.yaml").read_text())["codec"]["lambdas"]
    by_lambda = {lmbda: {r["setting"]: r for r in summary["results"] if r["lambda"] == lmbda} for lmbda in lambdas}
    assert set(summary["weights"]) == {f"{v:g}" for v in lambdas}
    for rows in by_lambda.values():
        assert set(rows) == {"copy", "predict", "predict, registered"}
    rows = by_lambda[lambdas[0]]
    for r in (r for rows_ in by_lambda.values() for r in rows_.values()):
        for key in ("set", "mode", "bpp_reduction", "delta_psnr", "decode_exact", "residual_misregistration_px",
                    "exchange_bytes_per_satellite"):
            assert key in r
        assert r["set"] == "custom" and r["decode_exact"] is True
        assert 0.1 < r["overlap_fraction"] < 0.9  # a partial overlap
        # the RPCs' relative bias is tens of pixels; the thumbnail's correction leaves about one
        assert r["uncorrected_misregistration_px"] > 10 and r["residual_misregistration_px"] < 2
    for rows in by_lambda.values():
        for setting in ("predict", "predict, registered"):
            assert rows[setting]["identical_to_codec_alone"] is True and rows[setting]["delta_psnr"] == 0.0
    if len(lambdas) > 1:  # a lower λ is a lower rate
        lo, hi = sorted(lambdas)[:2]
        assert by_lambda[lo]["copy"]["baseline_bpp"] < by_lambda[hi]["copy"]["baseline_bpp"]
    table = pd.read_csv(out / "multiview_patches.csv")
    assert set(table["calibration"]) == {"none", "registered"}
    assert set(table["correction_peer"]) == {-1, 0}  # the pair's second view corrects against the first
    assert sorted(set(table["lambda"])) == sorted(lambdas)
    for name in ("multiview_views.png", "multiview_saving.png", "multiview_limits.png", "multiview_patches.csv"):
        assert (out / name).is_file()


def test_multiview_codec_refuses_a_checkpoint_with_several_lambdas_and_a_repeated_lambda():
    from pydantic import ValidationError

    from dlrc_agents.studies.config import MultiviewCodecConfig

    assert MultiviewCodecConfig(lambdas=[0.0018, 0.0067]).lambdas == [0.0018, 0.0067]
    with pytest.raises(ValidationError, match="codec.lambdas: each λ once"):
        MultiviewCodecConfig(lambdas=[0.0067, 0.0067])
    with pytest.raises(ValidationError, match="a checkpoint is one model"):
        MultiviewCodecConfig(lambdas=[0.0018, 0.0067], checkpoint=__file__)


def test_summarise_sets_keeps_each_lambda_apart():
    rows = [{"set": "s", "lambda": lmbda, "setting": "copy", "mode": "copy", "calibration": "none", "priority": p,
             "overlap_fraction": 0.5, "baseline_bpp_sent": base, "dlrc_bpp_sent": base * (1 - cut),
             "baseline_psnr": 30.0, "dlrc_psnr": 30.0, "decode_exact": True, "identical_to_codec_alone": True,
             "copied_fraction": 0.1, "copied_inexact_fraction": 0.0, "exchange_bytes": 10,
             "residual_misregistration_px": 1.0, "uncorrected_misregistration_px": 5.0, "clipped_fraction": 0.0,
             "geo_grid_time_s": 0.1}
            for lmbda, base, cut in ((0.0018, 0.1, 0.2), (0.0067, 0.3, 0.05)) for p in (0, 1)]
    out = {r["lambda"]: r for r in mv.summarise_sets(pd.DataFrame(rows))}
    assert out[0.0018]["bpp_reduction"] == pytest.approx(0.2) and out[0.0067]["bpp_reduction"] == pytest.approx(0.05)
    assert out[0.0018]["baseline_bpp"] == pytest.approx(0.1)

"""JPEG reference and the codec_rd / dlrc_ablation scenario kinds; warm-start training."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dlrc_agents.studies.codec_rd import (bjontegaard_rows, compare_with_jpeg, crop_to_multiple, interpolate_at, jpeg_point,
                                          pareto_front)
from dlrc_agents.codecs.registry import build_model, export_checkpoint
from dlrc_agents.common.data import read_rgb
from dlrc_agents.codecs.train import warm_start
from edgespacecom.cli import main

from tests.conftest import eo

ROOT = Path(__file__).resolve().parents[2]
SCENE = eo("rgb/test/inria_bellingham9_1024.tif")


def test_pareto_front_and_interpolation_by_hand():
    pts = pd.DataFrame({"bpp": [0.5, 1.0, 0.8, 2.0, 1.5], "psnr": [25.0, 30.0, 24.0, 35.0, 29.0]})
    front = pareto_front(pts)
    assert list(front["bpp"]) == [0.5, 1.0, 2.0]  # (0.8, 24) and (1.5, 29) are dominated
    # in log-rate: 1.5 lies log(1.5)/log(2) = 0.585 of the way from 1.0 to 2.0, not half-way
    assert interpolate_at(front, 1.5) == pytest.approx(30.0 + 5.0 * np.log(1.5) / np.log(2.0))
    assert interpolate_at(front, 1.5) > 32.5  # above the chord: PSNR is concave in rate
    assert interpolate_at(front, 0.4) is None and interpolate_at(front, 2.1) is None


def test_bd_of_a_mixed_ladder_is_over_its_pareto_front():
    """A dominated ladder point (an adapter beaten by a whole model at a lower rate) would make the curve
    non-monotonic; BD is taken over the front, and equals the BD of the front's points alone."""
    ref = pd.DataFrame({"scene": "s", "mct": False, "bpp": [0.05, 0.1, 0.2, 0.4, 0.8, 1.6],
                        "psnr": [28.0, 31.0, 34.0, 37.0, 40.0, 43.0]})
    front = pd.DataFrame({"architecture": "m", "scene": "s", "bpp": [0.1, 0.3, 0.7], "psnr": [32.0, 36.5, 40.0]})
    mixed = pd.concat([front, pd.DataFrame({"architecture": ["m"], "scene": ["s"], "bpp": [0.4], "psnr": [34.5]})])
    (with_dominated,) = bjontegaard_rows(mixed, ref, "jpeg2000")
    (alone,) = bjontegaard_rows(front, ref, "jpeg2000")
    assert with_dominated["scenes"] == 1 and with_dominated["bd_rate_pct"] is not None
    assert with_dominated["bd_rate_pct"] == pytest.approx(alone["bd_rate_pct"])
    # the front lies above the anchor (+1 to +1.5 dB at equal rate): it needs fewer bits
    assert with_dominated["bd_rate_pct"] < 0 and with_dominated["bd_psnr_db"] > 0


def test_jpeg_points_are_real_files():
    img = crop_to_multiple(read_rgb(SCENE)[:300, :200])
    assert img.shape == (256, 192, 3)
    lo, hi = jpeg_point(img, 10, "4:2:0"), jpeg_point(img, 90, "4:4:4")
    assert 0 < lo["bpp"] < hi["bpp"] < 24 and lo["psnr"] < hi["psnr"] and 0 < lo["ms_ssim"] < hi["ms_ssim"] <= 1
    # PSNR by hand from a decode through Pillow
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=10, subsampling=2, optimize=True)
    dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(float)
    mse = np.mean((dec - img.astype(float)) ** 2)
    assert lo["psnr"] == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-6)
    assert lo["bpp"] == pytest.approx(8 * len(buf.getvalue()) / (256 * 192))


def test_compare_with_jpeg_decides_per_scene():
    jpeg = pd.DataFrame({"scene": ["a"] * 3 + ["b"] * 3, "bpp": [0.2, 0.6, 1.0] * 2,
                         "psnr": [24, 28, 30, 30, 34, 36], "ms_ssim": [0.8, 0.9, 0.95] * 2})
    model = pd.DataFrame({"architecture": ["m", "m"], "lambda": [0.01, 0.01], "weights": ["w", "w"],
                          "scene": ["a", "b"], "bpp": [0.4, 0.4], "psnr": [27.0, 31.0], "ms_ssim": [0.9, 0.9]})
    (r,) = compare_with_jpeg(model, jpeg)
    at = 4.0 * np.log(0.4 / 0.2) / np.log(0.6 / 0.2)  # JPEG's PSNR rise from 0.2 to 0.4 bpp, in log-rate
    assert r["psnr_gain_vs_jpeg_per_scene_db"] == {"a": pytest.approx(27.0 - 24 - at), "b": pytest.approx(31.0 - 30 - at)}
    assert r["psnr_gain_vs_jpeg_db"] == pytest.approx(2.0 - at) and r["beats_jpeg"] is False


def test_warm_start_copies_matching_tensors(tmp_path):
    torch.manual_seed(0)
    src = build_model("bmshj2018-hyperprior", 32, 48)
    src.update(force=True)
    ckpt = export_checkpoint(src, tmp_path / "b.pt", architecture="bmshj2018-hyperprior", N=32, M=48,
                             lmbda=0.0067, steps=0, seed=0, data=[])
    dst = build_model("mbt2018-mean", 32, 48)
    h_s_before = dst.h_s[0].weight.detach().clone()
    copied, total = warm_start(dst, ckpt)
    assert 0 < copied < total
    assert torch.equal(dst.g_a[0].weight, src.g_a[0].weight.half().float())
    assert torch.equal(dst.h_s[0].weight, h_s_before) or dst.h_s[0].weight.shape != src.h_s[0].weight.shape


def _random_checkpoint(tmp_path, arch="bmshj2018-hyperprior"):
    torch.manual_seed(2)
    m = build_model(arch, 32, 48)
    m.update(force=True)
    return export_checkpoint(m, tmp_path / "m.pt", architecture=arch, N=32, M=48, lmbda=0.0067, steps=0, seed=0,
                             data=[])


def test_codec_rd_scenario_end_to_end(tmp_path):
    ckpt = _random_checkpoint(tmp_path)
    scenario = tmp_path / "c.yaml"
    scenario.write_text(f"name: c\nkind: codec_rd\nmodels:\n  - {{architecture: bmshj2018-hyperprior, checkpoint: {ckpt}}}\n"
                        f"data: {{scenes: ['{SCENE}']}}\njpeg: {{qualities: [10, 50, 90]}}\n")
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    (m,) = s["models"]
    assert m["architecture"] == "bmshj2018-hyperprior" and m["bpp"] > 0 and "beats_jpeg" in m
    jpeg = pd.read_csv(out / "jpeg_rd.csv")
    assert len(jpeg) == 6 and set(jpeg["chroma"]) == {"4:2:0", "4:4:4"}
    assert (out / "codec_rd.png").stat().st_size > 0
    j2k = pd.read_csv(out / "jpeg2000_rd.csv")
    assert len(j2k) == 2 * 11 and set(j2k["mct"]) == {True, False} and "beats_jpeg2000" in m
    assert {r["codec"] for r in s["results"]} == {"bmshj2018-hyperprior", "jpeg", "jpeg2000"}
    assert all({"codec", "bands", "bpp", "psnr"} <= set(r) for r in s["results"])
    # one λ: no curve, so no Bjøntegaard delta rather than a made-up one
    assert {(b["anchor"], b["bd_rate_pct"]) for b in s["bjontegaard"]} == {("jpeg", None), ("jpeg2000", None)}


def test_ablation_scenario_fewer_rounds_merge_more(tmp_path):
    ckpt = _random_checkpoint(tmp_path)
    out = tmp_path / "abl"
    code = main(["run", str(ROOT / "scenarios" / "ablation_bmshj2018.yaml"), "--out", str(out),
                 "--set", f"codec.checkpoint={ckpt}", "--set", f"data.scenes=[{SCENE}]",
                 "--set", "overlap.satellites=3", "--set", "overlap.draws=1",
                 "--set", "ablation.rounds=[1, 8]"])
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    res = {(r["rounds"], r["representative"]): r for r in s["results"]}
    assert set(res) == {(1, "original"), (1, "mean"), (8, "original"), (8, "mean")}
    assert all(r["decode_exact"] for r in res.values())
    # one round has only 2C codes: far more collisions, so fewer vectors survive
    assert res[(1, "original")]["retained_fraction"] < res[(8, "original")]["retained_fraction"]
    # same draws, same codec-alone baseline for every setting
    assert len({r["baseline_bpp"] for r in res.values()}) == 1
    assert (out / "fig12_ablation.png").stat().st_size > 0


def test_ablation_needs_one_model(tmp_path, capsys):
    code = main(["validate", str(ROOT / "scenarios" / "ablation_bmshj2018.yaml"),
                 "--set", "codec.lambdas=[0.0067, 0.013]"])
    assert code == 2
    assert "codec.lambdas: the ablation uses one model" in capsys.readouterr().err


def test_codec_rd_figure_one_column_per_scene_wrapped():
    """Five scenes: PSNR and MS-SSIM panels per scene, wrapped after four columns, the rest blank."""
    from dlrc_agents.studies.codec_rd import codec_rd_figure

    scenes = [f"s{i}.tif" for i in range(5)]
    jpeg = pd.DataFrame([{"scene": s, "chroma": c, "quality": q, "bpp": q / 40, "psnr": 20 + q / 5, "ms_ssim": 0.8 + q / 600}
                         for s in scenes for c in ("4:2:0", "4:4:4") for q in (10, 30, 50, 70, 90)])
    models = pd.DataFrame([{"architecture": "bmshj2018-hyperprior", "lambda": l, "scene": s, "bpp": b,
                            "psnr": 20 + 40 * b / 5 + 0.3, "ms_ssim": 0.85}
                           for s in scenes for l, b in ((0.0067, 0.5), (0.0483, 1.5))])
    fig = codec_rd_figure(models, jpeg)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(fig.axes) == 16 and len(visible) == 10
    assert sorted({ax.get_title() for ax in visible}) == scenes


def test_a_scene_too_small_for_ms_ssim_still_gives_its_table(tmp_path, capsys):
    """MS-SSIM needs sides over 160 px: on a 128² scene it is NaN, and the run still writes its tables,
    figure and PSNR comparison (once a crash in the figure's axis limits)."""
    import yaml
    from PIL import Image

    from dlrc_agents.common.data import read_rgb

    Image.fromarray(read_rgb(eo("rgb/test/inria_bellingham1_1024.tif"))[:128, :128]).save(tmp_path / "s.png")
    sc = {"name": "small", "kind": "codec_rd", "models": [{"architecture": "bmshj2018-hyperprior",
                                                           "lambdas": [0.0067, 0.0483]}],
          "data": {"scenes": [str(tmp_path / "s.png")]}, "jpeg": {"qualities": [30, 70]}, "jpeg2000": {"enabled": False}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sc))
    assert main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")]) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert all(m["psnr"] > 20 for m in s["models"]) and (tmp_path / "out" / "codec_rd.png").stat().st_size > 0

"""The downstream kind's index task: the index, the F1 scores by hand, and a run end to end."""

import json

import numpy as np
import pytest
import rasterio
import yaml

from dlrc_agents.studies.downstream import f1_scores, index_mask
from edgespacecom.cli import main


def test_index_and_f1_by_hand():
    samples = np.array([[[30, 10], [10, 30], [0, 0]]], dtype=np.uint16)  # (1, 3, 2): bands a, b
    assert index_mask(samples, 1, 2, 0.0).tolist() == [[True, False, False]]  # 0/0 is negative
    assert index_mask(samples, 1, 2, 0.6).tolist() == [[False, False, False]]  # (30-10)/40 = 0.5
    pred = np.array([True, True, False, False])
    truth = np.array([True, False, True, False])
    valid = np.array([True, True, True, True])
    f_pos, f_macro = f1_scores(pred, truth, valid)
    assert f_pos == pytest.approx(0.5) and f_macro == pytest.approx(0.5)  # tp 1, fp 1, fn 1; the same for negatives
    assert f1_scores(pred, truth, np.array([True, False, False, True])) == (1.0, 1.0)  # the errors not scored


def _tif(path, array):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=array.shape[2],
                       dtype=array.dtype.name) as dst:
        dst.write(np.moveaxis(array, -1, 0))
    return str(path)


def test_downstream_index_task_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    water = (yy - 64) ** 2 + (xx - 50) ** 2 < 35**2
    green = np.where(water, 1400, 900) + rng.normal(0, 60, water.shape)
    nir = np.where(water, 400, 2600) + rng.normal(0, 60, water.shape)
    bands = np.stack([green, nir, 0.5 * (green + nir)], -1).clip(0, 65535).astype(np.uint16)
    label = np.where(water, 1, 0).astype(np.int16)[..., None]
    label[:4, :4] = -1
    scenario = {"name": "d", "kind": "downstream", "jpeg2000": {"bits_per_sample": [0.02, 2.0], "mct": [True, False]},
                "index_tasks": [{"name": "water", "band_set": {"name": "b", "files": [_tif(tmp_path / "b.tif", bands)]},
                                 "label": _tif(tmp_path / "l.tif", label), "index_bands": [1, 2]}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario))
    assert main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")]) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    rows = s["results"]
    assert all({"task", "backbone", "codec", "bands", "bpp", "psnr", "f1_pos", "f1_macro"} <= set(r) for r in rows)
    ref = rows[0]
    assert ref["codec"] == "uncompressed" and ref["f1_pos"] > 0.99  # a clean synthetic lake
    high = [r for r in rows if r["codec"] == "jpeg2000" and r["bits_per_sample"] > 1]
    assert {r["mct"] for r in rows if r["codec"] == "jpeg2000"} == {True, False}  # three bands: MCT applies
    assert all(abs(r["f1_pos"] - ref["f1_pos"]) < 0.01 for r in high)
    assert s["tasks"]["water"]["pixels_scored"] == 128 * 128 - 16
    assert (tmp_path / "out" / "downstream.png").stat().st_size > 0

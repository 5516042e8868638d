"""JPEG 2000 through OpenJPEG: rate control, decoding from the counted bytes, 1 to 13 bands, 8 and 16 bits,
and the Bjøntegaard deltas against curves whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from dlrc_agents.codecs import jpeg2000
from dlrc_agents.studies.codec_rd import bjontegaard_rows, jpeg2000_point
from dlrc_agents.common.data import read_rgb

from tests.conftest import eo


@pytest.fixture(scope="module")
def rgb():
    return read_rgb(eo("rgb/test/inria_bellingham9_1024.tif"))[:256, :256]


def test_rate_control_hits_the_target_and_decodes_from_the_bytes(rgb):
    for target in (0.1, 0.5, 1.0):
        data = jpeg2000.encode(rgb, target)
        assert data[:4] == b"\xff\x4f\xff\x51"  # a raw J2K codestream: SOC then SIZ, nothing around it
        assert abs(8 * len(data) / rgb.shape[0] / rgb.shape[1] - target) / target < 0.1
        decoded = jpeg2000.decode(data)
        assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    lo, hi = jpeg2000_point(rgb, 0.1, True), jpeg2000_point(rgb, 1.0, True)
    assert lo["psnr"] < hi["psnr"] and lo["bpp"] < hi["bpp"]
    # the multi-component transform decorrelates RGB: better at the same rate on a natural image
    assert jpeg2000_point(rgb, 0.5, True)["psnr"] > jpeg2000_point(rgb, 0.5, False)["psnr"]


@pytest.mark.parametrize("bands", [1, 4, 13])
def test_many_bands_and_16_bits(bands):
    rng = np.random.default_rng(bands)
    yy, xx = np.mgrid[0:128, 0:128]
    base = 3000 + 800 * np.sin(yy / 7.0) * np.cos(xx / 9.0)
    image = np.stack([base * (1 + 0.05 * b) + rng.normal(0, 20, base.shape) for b in range(bands)], -1)
    image = image.clip(0, 65535).astype(np.uint16)
    point = jpeg2000.rd_point(image, 2.0 * bands)
    assert point["decoded"].shape == image.shape and point["decoded"].dtype == np.uint16
    assert point["psnr"] > 50  # 16-bit peak; a smooth image at 2 bits a band and pixel
    lossless = jpeg2000.decode(jpeg2000.encode(image[..., 0], 16.0, reversible=True))
    assert np.array_equal(lossless[..., 0], image[..., 0])  # the 5/3 wavelet at full rate is lossless


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="uint8 or uint16"):
        jpeg2000.encode(np.zeros((8, 8, 3), np.float32), 1.0)
    with pytest.raises(ValueError, match="bpp must be > 0"):
        jpeg2000.encode(np.zeros((8, 8, 3), np.uint8), 0.0)


def test_bjontegaard_deltas_of_shifted_curves():
    """A model curve 1 dB above the anchor's at every rate: BD-PSNR +1 dB; the same PSNR at 80 % of the
    anchor's rate everywhere: BD-rate −20 %."""
    rates = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
    psnr = 25 + 4 * np.log2(rates / 0.1)
    anchor = pd.DataFrame({"scene": "s", "bpp": rates, "psnr": psnr})
    up = pd.DataFrame({"architecture": "m", "scene": "s", "bpp": rates, "psnr": psnr + 1.0})
    (row,) = bjontegaard_rows(up, anchor, "jpeg2000")
    assert row["bd_psnr_db"] == pytest.approx(1.0, abs=1e-6) and row["anchor"] == "jpeg2000"
    cheaper = pd.DataFrame({"architecture": "m", "scene": "s", "bpp": 0.8 * rates, "psnr": psnr})
    (row,) = bjontegaard_rows(cheaper, anchor, "jpeg")
    assert row["bd_rate_pct"] == pytest.approx(-20.0, abs=0.5)


def _write(path, array):
    import rasterio

    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=array.shape[2],
                       dtype=array.dtype.name) as dst:
        dst.write(np.moveaxis(array, -1, 0))
    return path


def test_band_sets_stack_single_band_files_in_the_order_given(tmp_path):
    from dlrc_agents.common.data import DataError, read_band_set

    rng = np.random.default_rng(0)
    b = [rng.integers(0, 4000, (64, 64, 1)).astype(np.uint16) for _ in range(3)]
    paths = [str(_write(tmp_path / f"{n}.tif", a)) for n, a in zip(("red", "green", "blue"), b)]
    stack = read_band_set(paths)
    assert stack.shape == (64, 64, 3) and np.array_equal(stack[..., 0], b[0][..., 0])  # red first, as given
    assert np.array_equal(read_band_set(paths, bands=[3])[..., 0], b[2][..., 0])
    signed = _write(tmp_path / "s.tif", np.array([[[-5, 7]]], dtype=np.int16))
    assert read_band_set(str(signed)).tolist() == [[[0, 7]]]  # int16 reflectance: negatives clipped, uint16
    _write(tmp_path / "two.tif", np.zeros((64, 64, 2), np.uint16))
    with pytest.raises(DataError, match="single-band"):
        read_band_set([paths[0], str(tmp_path / "two.tif")])


def test_codec_rd_codes_band_sets_with_jpeg2000_and_matching_models(tmp_path):
    import json

    import torch
    import yaml

    from dlrc_agents.codecs.registry import BandNormalisation, build_model, export_checkpoint
    from edgespacecom.cli import main

    yy, xx = np.mgrid[0:128, 0:128]
    raw = np.stack([3000 + 900 * np.sin(yy / (7 + k)) * np.cos(xx / 9) for k in range(4)], -1).astype(np.uint16)
    band_file = _write(tmp_path / "four.tif", raw)
    torch.manual_seed(0)
    model = build_model("bmshj2018-hyperprior", 32, 48, 4)
    model.update(force=True)
    ckpt = export_checkpoint(model, tmp_path / "m4.pt", architecture="bmshj2018-hyperprior", N=32, M=48, lmbda=0.01,
                             steps=0, seed=0, data=[], bands=BandNormalisation.from_samples(raw))
    scenario = {"name": "ms", "kind": "codec_rd",
                "models": [{"architecture": "bmshj2018-hyperprior", "checkpoint": str(ckpt)}],
                "data": {"scenes": [str(eo("rgb/test/inria_bellingham9_1024.tif"))]},
                "jpeg": {"qualities": [20, 80]}, "jpeg2000": {"bpp": [0.2, 1.0], "bits_per_sample": [0.2, 1.0]},
                "band_sets": [{"name": "four", "files": [str(band_file)]}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario))
    assert main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")]) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    four = [r for r in s["results"] if r.get("scene") == "four"]
    assert {(r["codec"], r.get("mct")) for r in four} == {("jpeg2000", True), ("jpeg2000", False),
                                                          ("bmshj2018-hyperprior", None)}
    assert all(r["bands"] == 4 and r["sample_bits"] == 16 and r["psnr"] > 0 for r in four)
    assert not s["models"] or all(m["architecture"] == "bmshj2018-hyperprior" for m in s["models"])
    assert (tmp_path / "out" / "band_sets_rd.png").stat().st_size > 0


def test_mct_is_claimed_only_where_it_applies():
    from types import SimpleNamespace

    from dlrc_agents.studies.codec_rd import band_set_rows

    image = np.random.default_rng(0).integers(0, 4000, (64, 64, 13)).astype(np.uint16)
    assert jpeg2000.encode(image, 4.0, mct=True) == jpeg2000.encode(image, 4.0, mct=False)
    cfg = SimpleNamespace(mct=[True, False], bits_per_sample=[0.5, 1.0])
    assert {r["mct"] for r in band_set_rows("s", image, cfg, [])} == {False}
    assert {r["mct"] for r in band_set_rows("s", image[..., :4], cfg, [])} == {True, False}

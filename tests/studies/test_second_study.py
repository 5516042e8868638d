"""The second study's models and segmentation (issue 15): N-band training on raw band sets with a
spatial split, Cheng 2020 with a K = 3 Gaussian mixture coded from bytes alone, U-Nets trained on
decoded data, and joint codec + U-Net training, end to end on synthetic GeoTIFFs."""

import json
import math

import numpy as np
import pytest
import rasterio
import torch
import yaml
from pydantic import ValidationError

from dlrc_agents.codecs.registry import (BandNormalisation, build_model, codec_from_model, export_checkpoint, load_checkpoint,
                                         load_codec)
from dlrc_agents.mission.config import MissionScenario
from dlrc_agents.studies.config import RDScenario
from dlrc_agents.common.data import DataError, parse_band_set_spec, read_band_set
from dlrc_agents.studies.segmentation import equal_bpp_comparison, interpolate_log_bpp
from dlrc_agents.codecs.train import train
from edgespacecom.cli import main


def _tif(path, array):
    array = array if array.ndim == 3 else array[..., None]
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=array.shape[2],
                       dtype=array.dtype.name) as dst:
        dst.write(np.moveaxis(array, -1, 0))
    return str(path)


def _scene(bands: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """16-bit bands with bright 'clouds' (the label) over a textured ground."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    cloud = np.sin(yy / 11 + seed) * np.cos(xx / 7 - seed) > 0.3
    out = [1500 + 300 * np.sin(xx / (5 + b)) + 2500 * cloud + rng.normal(0, 50, (size, size)) for b in range(bands)]
    return np.clip(np.stack(out, -1), 0, 65535).astype(np.uint16), cloud.astype(np.uint8)


def test_band_set_specs_and_row_windows(tmp_path):
    assert parse_band_set_spec("eo:a/*.tif") == (["eo:a/*.tif"], None)
    assert parse_band_set_spec("x.tif,y.tif@64:128") == (["x.tif", "y.tif"], (64, 128))
    for bad in ("@0:5", "x.tif@5:5", "x.tif@a:b"):
        with pytest.raises(DataError):
            parse_band_set_spec(bad)
    raw, _ = _scene(2, 64, 0)
    path = _tif(tmp_path / "b.tif", raw)
    assert np.array_equal(read_band_set([path], rows=(16, 48)), raw[16:48])
    with pytest.raises(DataError, match="rows 0:99 out of 0:64"):
        read_band_set([path], rows=(0, 99))


def test_n_band_training_fits_the_normalisation_on_its_split_and_exports_a_band_model(tmp_path):
    raw, _ = _scene(4, 192, 1)
    raw[:128, :, 2] += 5000  # the training rows of band 3 are brighter: its scale must come from them
    path = _tif(tmp_path / "chip.tif", raw)
    with pytest.raises(ValueError, match="validation split"):
        train("bmshj2018-hyperprior", 0.01, tmp_path / "run0", steps=1, band_sets=[f"{path}@0:128"], progress=False)
    out = train("bmshj2018-hyperprior", 0.01, tmp_path / "run", steps=2, batch_size=2, crop=64, channels=(32, 48),
                band_sets=[f"{path}@0:128"], val_band_sets=[f"{path}@128:192"], export=tmp_path / "m.pt",
                progress=False, checkpoint_every=1)
    codec = load_checkpoint(out)
    assert codec.in_channels == 4
    train_rows = raw[:128].reshape(-1, 4).astype(float)
    assert codec.bands.offset[2] == pytest.approx(np.percentile(train_rows[:, 2], 0.1), rel=1e-6)
    assert codec.bands.scale[2] == pytest.approx(np.percentile(train_rows[:, 2], 99.9) - np.percentile(train_rows[:, 2], 0.1),
                                                 rel=1e-6)
    with torch.no_grad():  # codes 4-band data from bytes alone
        s = codec.model.compress(codec.bands.to_model(raw[:64, :64]))
        x = codec.model.decompress(s["strings"], s["shape"])["x_hat"]
    assert codec.bands.to_raw(x, "uint16").shape == (64, 64, 4)
    payload = torch.load(out, weights_only=True)
    assert payload["data"] == [f"{path}@0:128"] and payload["validation"] == [f"{path}@128:192"]


def test_a_sensor_range_normalisation_clips_nothing_the_sensor_can_return(tmp_path):
    """--sample-range: every band maps [0, MAX] to [0, 1] (no percentile of the training split), so a test
    chip brighter than the training chips is not clipped; data beyond the range are refused by name."""
    raw, _ = _scene(4, 192, 1)
    path = _tif(tmp_path / "chip.tif", raw)
    kwargs = dict(steps=1, batch_size=2, crop=64, channels=(32, 48), band_sets=[f"{path}@0:128"],
                  val_band_sets=[f"{path}@128:192"], progress=False, checkpoint_every=1)
    codec = load_checkpoint(train("bmshj2018-hyperprior", 0.01, tmp_path / "run", export=tmp_path / "m.pt",
                                  sample_range=32767, **kwargs))
    assert codec.bands.offset == (0.0,) * 4 and codec.bands.scale == (32767.0,) * 4
    bright = raw.copy()
    bright[:, :, 0] = 30000  # brighter than any training sample, within the sensor's 15 bits
    assert codec.bands.clipped_fraction(bright) == 0.0
    percentile = BandNormalisation.from_samples(raw[:128].reshape(-1, 4))
    assert percentile.clipped_fraction(bright) >= 0.25  # the training split's range clips that band
    assert torch.load(tmp_path / "m.pt", weights_only=True)["sample_range"] == 32767
    with pytest.raises(DataError, match=r"chip.tif@0:128: samples in \[.*\] exceed --sample-range \[0, 1000\]"):
        train("bmshj2018-hyperprior", 0.01, tmp_path / "run2", sample_range=1000, **kwargs)
    with pytest.raises(ValueError, match="--sample-range: for N-band training"):
        train("bmshj2018-hyperprior", 0.01, tmp_path / "run3", steps=1, sample_range=255, progress=False)


def test_band_adapter_trains_on_a_frozen_trunk_and_loads_only_with_it(tmp_path):
    """--adapter: only the first and last layers and the hyper-latent prior learn; the checkpoint holds
    those alone and names its trunk; with the trunk beside it (or shipped) it decodes from bytes alone,
    and a changed trunk is refused."""
    from dlrc_agents.codecs.registry import ADAPTER_LAYERS, CodecError

    raw, _ = _scene(4, 192, 2)
    path = _tif(tmp_path / "chip.tif", raw)
    torch.manual_seed(0)
    rgb = build_model("bmshj2018-hyperprior", 32, 48)
    rgb.update(force=True)
    trunk_dir = tmp_path / "w"
    trunk = export_checkpoint(rgb, trunk_dir / "bmshj2018-hyperprior_lambda0.01.pt", architecture="bmshj2018-hyperprior",
                              N=32, M=48, lmbda=0.01, steps=1, seed=0, data=["x"], storage="int8")
    with pytest.raises(ValueError, match="--adapter"):
        train("bmshj2018-hyperprior", 0.01, tmp_path / "r0", steps=1, adapter=True, band_sets=[f"{path}@0:128"],
              val_band_sets=[f"{path}@128:192"], progress=False)
    out = train("bmshj2018-hyperprior", 0.01, tmp_path / "run", steps=2, batch_size=2, crop=64, channels=(32, 48),
                band_sets=[f"{path}@0:128"], val_band_sets=[f"{path}@128:192"], export=trunk_dir / "a.pt",
                progress=False, checkpoint_every=1, init=trunk, adapter=True, storage="int8", lr=1e-2)
    payload = torch.load(out, weights_only=True)
    assert payload["trunk"]["file"] == trunk.name and set(payload["state_dict"]) and all(
        k.startswith(ADAPTER_LAYERS) for k in payload["state_dict"])
    assert out.stat().st_size < 0.2 * trunk.stat().st_size
    codec, base = load_checkpoint(out), load_checkpoint(trunk)
    own = dict(codec.model.named_parameters())
    for k, v in base.model.named_parameters():  # the trunk is frozen: identical outside the adapter
        if not k.startswith(ADAPTER_LAYERS):
            assert torch.equal(own[k], v), k
    assert not torch.equal(own["g_a.1.beta"], dict(base.model.named_parameters())["g_a.1.beta"])  # the adapter learned
    with torch.no_grad():
        s = codec.model.compress(codec.bands.to_model(raw[:64, :64]))
        ground = load_checkpoint(out)
        a = codec.model.decompress(s["strings"], s["shape"])["x_hat"]
        b = ground.model.decompress(s["strings"], s["shape"])["x_hat"]
    assert torch.equal(a, b) and ground.fingerprint == codec.fingerprint
    torch.manual_seed(1)
    other = build_model("bmshj2018-hyperprior", 32, 48)
    export_checkpoint(other, trunk, architecture="bmshj2018-hyperprior", N=32, M=48, lmbda=0.01, steps=1, seed=0,
                      data=["x"], storage="int8")
    with pytest.raises(CodecError, match="is not the one it was trained on"):
        load_checkpoint(out)
    trunk.unlink()
    with pytest.raises(CodecError, match="its trunk bmshj2018-hyperprior_lambda0.01.pt is in neither"):
        load_checkpoint(out)


def test_band_models_are_found_by_band_count(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESPACECOM_WEIGHTS", str(tmp_path))
    with pytest.raises(Exception, match="make models-multispectral"):
        load_codec("bmshj2018-hyperprior", lmbda=0.0067, bands=5)


def test_cheng2020_gmm_bounds_its_alphabet():
    """Large latents decode exactly within the bound; beyond it the encoder refuses, and so does the
    decoder for a header that declares more (the mixture coder desynchronised there, silently)."""
    import struct

    from dlrc_agents.codecs.gmm import MAX_ABS

    def scaled(factor):
        torch.manual_seed(0)
        m = build_model("cheng2020-gmm", 32, 32, in_channels=3)
        with torch.no_grad():
            for name, p in m.g_a.named_parameters():
                if name.startswith(str(len(m.g_a) - 2)) and name.endswith("weight"):
                    p.mul_(factor)
        m.update(force=True)
        return m.eval()

    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        m = scaled(2000.0)
        out = m.compress(x)
        big = struct.unpack(">H", out["strings"][0][0][:2])[0]
        assert 1000 < big <= MAX_ABS
        assert torch.equal(m.decompress(out["strings"], out["shape"])["x_hat"], m.g_s(torch.round(m.g_a(x))).clamp(0, 1))
        forged = [[struct.pack(">H", MAX_ABS + 1) + out["strings"][0][0][2:]], out["strings"][1]]
        with pytest.raises(ValueError, match="declares latents up to"):
            m.decompress(forged, out["shape"])
        with pytest.raises(ValueError, match="exact up to"):
            scaled(8000.0).compress(x)


def test_cheng2020_gmm_codes_from_bytes_alone_at_its_likelihood_rate():
    torch.manual_seed(0)
    model = build_model("cheng2020-gmm", 32, 32, in_channels=4)
    assert model.gaussian_conditional.K == 3
    codec = codec_from_model(model, "cheng2020-gmm", 32, 32)
    x = torch.rand(1, 4, 64, 64)
    with torch.no_grad():
        out = codec.model.compress(x)
        data = [[bytes(s) for s in group] for group in out["strings"]]  # only bytes cross
        decoded = codec.model.decompress(data, out["shape"])["x_hat"]
        reference = codec.model.g_s(torch.round(codec.model.g_a(x))).clamp(0, 1)
        estimate = sum(-torch.log2(lk).sum() for lk in codec.model(x)["likelihoods"].values()).item() / 8
    assert torch.equal(decoded, reference)
    actual = sum(len(s) for group in data for s in group)
    assert abs(actual - estimate) < 0.15 * estimate + 16  # the mixture CDFs code at the mixture's rate
    flipped = [[data[0][0][:2] + bytes([data[0][0][2] ^ 0xFF]) + data[0][0][3:]], data[1]]
    assert not torch.equal(codec.model.decompress(flipped, out["shape"])["x_hat"], decoded)


def test_dlrc_kinds_refuse_the_mixture_model_and_band_models():
    from dlrc_agents.codecs.registry import ARCHITECTURES, DLRC_FAMILIES
    from dlrc_agents.common.config import NOT_DLRC_ARCHITECTURES

    assert {a for a, spec in ARCHITECTURES.items() if spec["family"] not in DLRC_FAMILIES} == set(NOT_DLRC_ARCHITECTURES)
    base = {"name": "r", "kind": "rd"}
    with pytest.raises(ValidationError, match="DLRC cannot drive cheng2020-gmm"):
        RDScenario.model_validate({**base, "codec": {"architecture": "cheng2020-gmm"}})
    with pytest.raises(ValidationError, match="bands: this kind codes RGB"):
        MissionScenario.model_validate({"name": "m", "kind": "mission", "codec": {"bands": 4, "lambdas": [0.0067]}})


def test_equal_bpp_comparison_interpolates_in_log_bpp():
    assert interpolate_log_bpp([(0.1, 0.5), (1.0, 0.9)], math.sqrt(0.1)) == pytest.approx(0.7)
    assert interpolate_log_bpp([(0.1, 0.5), (1.0, 0.9)], 2.0) is None
    rows = [{"task": "t", "codec": "c", "backbone": "b", "training": "standalone", "bpp": b, "f1_pos": f,
             "f1_macro": f, "lambda": l} for b, f, l in ((0.1, 0.5, 1), (1.0, 0.9, 2))]
    joint = {"task": "t", "codec": "c", "backbone": "b", "bpp": 0.1, "f1_pos": 0.55, "f1_macro": 0.4, "lambda": 1}
    out = equal_bpp_comparison(joint, rows)
    assert out["joint_minus_standalone_f1_pos"] == pytest.approx(0.05)
    assert out["standalone_bpp_same_lambda"] == 0.1


@pytest.mark.slow
def test_downstream_segmentation_end_to_end(tmp_path, capsys):
    chips = {}
    for name, seed in (("a", 0), ("b", 1), ("c", 2), ("d", 3)):
        raw, label = _scene(4, 128, seed)
        chips[name] = {"files": [_tif(tmp_path / f"{name}.tif", raw)], "label": _tif(tmp_path / f"{name}_l.tif", label)}
    torch.manual_seed(0)
    model = build_model("bmshj2018-hyperprior", 32, 48, 4)
    from dlrc_agents.codecs.registry import BandNormalisation
    bands = BandNormalisation.from_samples(_scene(4, 128, 0)[0])
    codec = codec_from_model(model, "bmshj2018-hyperprior", 32, 48, bands=bands)
    ckpt = export_checkpoint(codec.model, tmp_path / "m4.pt", architecture="bmshj2018-hyperprior", N=32, M=48,
                             lmbda=0.01, steps=0, seed=0, data=[], bands=bands)
    seg = {"backbones": ["mobilenet_v2", "resnet34"], "bits_per_sample": [0.1, 1.0], "steps": 4, "batch": 2, "crop": 64,
           "eval_every": 2, "patience": 1, "threads": 1,
           "joint": [{"task": "cloud", "lmbda": 0.01, "gamma": 1.0, "steps": 2},
                     {"task": "cloud", "lmbda": 0.01, "gamma": 0.0, "steps": 2, "freeze_codec": True}]}
    scenario = {"name": "seg", "kind": "downstream",
                "models": [{"architecture": "bmshj2018-hyperprior", "bands": 4, "checkpoint": str(ckpt)}],
                "segmentation": seg,
                "segmentation_tasks": [{"name": "cloud", "train": [chips["a"], chips["b"]], "validation": [chips["c"]],
                                        "test": [{**chips["d"], "rows": [0, 64]}]}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario))
    assert main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")]) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    rows = s["results"]
    assert all({"task", "backbone", "codec", "bands", "bpp", "psnr", "f1_pos", "f1_macro"} <= set(r) for r in rows)
    kinds = [(r["codec"], r["backbone"], r["training"]) for r in rows]
    assert ("uncompressed", "resnet34", "standalone") in kinds and ("uncompressed", "mobilenet_v2", "standalone") in kinds
    j2k = [r for r in rows if r["codec"] == "jpeg2000"]
    chosen = min((r for r in rows if r["codec"] == "uncompressed"), key=lambda r: r["val_loss"])["backbone"]
    assert len(j2k) == 2 and all(r["backbone"] == chosen for r in j2k)  # chosen on the validation loss
    test_pixels = 64 * 128
    assert all(r["bpp"] == pytest.approx(r["bits_per_sample"] * 4) for r in j2k)
    learned = [r for r in rows if r["codec"] == "bmshj2018-hyperprior" and r["training"] == "standalone"]
    joint = [r for r in rows if r["training"] == "joint" and not r["freeze_codec"]]
    frozen = [r for r in rows if r["training"] == "joint" and r["freeze_codec"]]
    assert len(learned) == 1 and len(joint) == 1 and joint[0]["gamma"] == 1.0
    # the frozen-codec control codes with the very codec of the standalone row: the same bytes
    assert len(frozen) == 1 and frozen[0]["bpp"] == learned[0]["bpp"] and frozen[0]["psnr"] == learned[0]["psnr"]
    assert joint[0]["backbone"] == chosen and joint[0]["val_loss"] <= joint[0]["val_loss_start"]
    assert 0 < learned[0]["bpp"] < 32 and 0 < joint[0]["bpp"] < 32 and math.isfinite(joint[0]["psnr"])
    assert s["segmentation_data"]["cloud"]["test"]["pixels"] == test_pixels
    for name in ("segmentation.csv", "segmentation_joint.csv", "segmentation.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    # the same procedure as a flag of `train`: standalone U-Net on the codec's data, then joint tuning
    out = tmp_path / "joint"
    assert main(["train", "--arch", "bmshj2018-hyperprior", "--lambda", "0.01", "--steps", "2", "--gamma", "0.5",
                 "--joint-task", f"{tmp_path / 's.yaml'}:cloud", "--init", str(ckpt), "--out", str(out)]) == 0
    j = json.loads((out / "joint_summary.json").read_text())
    assert j["joint"]["gamma"] == 0.5 and j["standalone"]["bpp"] > 0
    tuned = load_checkpoint(out / "codec.pt")
    assert tuned.in_channels == 4 and tuned.bands == codec.bands
    assert torch.load(out / "unet.pt", weights_only=True)["backbone"] in ("mobilenet_v2", "resnet34")
    capsys.readouterr()
    assert main(["train", "--arch", "bmshj2018-hyperprior", "--lambda", "0.01", "--gamma", "0.5", "--freeze-codec",
                 "--joint-task", f"{tmp_path / 's.yaml'}:cloud", "--init", str(ckpt), "--out", str(out)]) != 0
    assert "--freeze-codec: the frozen-codec control takes --gamma 0" in capsys.readouterr().err
    assert main(["train", "--arch", "bmshj2018-hyperprior", "--lambda", "0.01", "--joint-task", f"{tmp_path / 's.yaml'}:nope",
                 "--init", str(ckpt), "--out", str(out)]) != 0
    assert "no segmentation task 'nope'" in capsys.readouterr().err


def test_balanced_positive_weight_is_negatives_over_positives():
    from dlrc_agents.studies.segmentation import Chip, positive_weight

    label = np.zeros((8, 8), np.int16)
    label[:2, :2] = 1  # 4 positives
    label[7, :] = -1  # 8 unlabelled
    chip = Chip(np.zeros((8, 8, 1), np.uint16), label, positive=1, ignore=-1)
    assert positive_weight("balanced", [chip]) == pytest.approx((64 - 8 - 4) / 4)
    assert positive_weight(None, [chip]) == 1.0 and positive_weight(2.5, [chip]) == 2.5


@pytest.mark.parametrize("bands", [1, 4, 13])
def test_band_models_start_grey_from_the_rgb_model(bands):
    """--init from an RGB model: B equal bands give the first layer the features of the grey RGB image of
    that level, and every output band the mean of the RGB model's outputs."""
    from dlrc_agents.codecs.train import band_count_init

    torch.manual_seed(4)
    rgb, band = build_model("bmshj2018-hyperprior", 32, 48), build_model("bmshj2018-hyperprior", 32, 48, bands)
    parameters = {k for k, _ in band.named_parameters()}
    init = band_count_init(band.state_dict(), rgb.state_dict(), parameters)
    assert set(init) == {"g_a.0.weight", "g_s.6.weight", "g_s.6.bias"}
    band.load_state_dict({**band.state_dict(), **init, "g_a.0.bias": rgb.g_a[0].bias})  # same shape: warm_start copies it
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(band.g_a[0](x.expand(1, bands, 32, 32)), rgb.g_a[0](x.expand(1, 3, 32, 32)), atol=1e-5)
        f = torch.randn(1, 32, 16, 16)
        out_rgb, out_band = rgb.g_s[6](f), band.g_s[6](f)
        assert torch.allclose(out_band, out_rgb.mean(dim=1, keepdim=True).expand(1, bands, 32, 32), atol=1e-5)

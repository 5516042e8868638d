"""Training: the crop sampler, mixed precision, and a resumable run that exports a loadable checkpoint."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from dlrc_agents.codecs.registry import build_model, load_checkpoint
from dlrc_agents.common.data import CropSampler, DataError, read_rgb
from dlrc_agents.codecs.train import ema_decay, rate_distortion_loss, train, use_bf16_transforms, validation_loss, validation_tiles, warmed_ema_multi_avg_fn

from tests.conftest import eo

NEON = eo("rgb/train/neon_SOAP_031.png")


def _stripes(h=300, w=300):
    """Vertical one-pixel black/white stripes: all their energy at the Nyquist frequency."""
    row = np.where(np.arange(w) % 2 == 0, 255, 40).astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], h, axis=0), 3, axis=2)


def test_native_crops_keep_pixels_and_downscaled_crops_are_resampled():
    native = CropSampler([_stripes()], 64, seed=3).batch(4)
    assert native.shape == (4, 3, 64, 64)
    # native crops are pixels of the scene: two levels only
    assert set(np.unique(np.round(native * 255))) <= {40.0, 255.0}
    scaled = CropSampler([_stripes()], 64, seed=3, max_downscale=2.0).batch(16)
    assert scaled.shape == (16, 3, 64, 64)
    # resampling a region 1–2× larger averages neighbouring stripes: less contrast on average
    assert scaled.std(axis=(1, 2, 3)).mean() < 0.9 * native.std(axis=(1, 2, 3)).mean()


def test_downscaled_crops_are_seeded():
    a = CropSampler([_stripes()], 64, seed=5, max_downscale=2.0).batch(3)
    b = CropSampler([_stripes()], 64, seed=5, max_downscale=2.0).batch(3)
    assert np.array_equal(a, b)
    with pytest.raises(DataError, match="max_downscale"):
        CropSampler([_stripes()], 64, seed=5, max_downscale=0.5)


def test_bf16_transforms_keep_the_state_dict_and_the_loss():
    torch.manual_seed(0)
    fp32 = build_model("mbt2018-mean", 32, 48).train()
    bf16 = build_model("mbt2018-mean", 32, 48).train()
    bf16.load_state_dict(fp32.state_dict())
    assert use_bf16_transforms(bf16) == ["g_a", "g_s", "h_a", "h_s"]
    assert list(bf16.state_dict()) == list(fp32.state_dict())
    x = torch.rand(2, 3, 64, 64)
    losses = []
    for model in (fp32, bf16):
        torch.manual_seed(1)  # the same quantisation noise
        out = model(x)
        assert out["x_hat"].dtype == torch.float32
        assert all(v.dtype == torch.float32 for v in out["likelihoods"].values())
        losses.append(rate_distortion_loss(out, x, 0.0483))
    for key in ("bpp", "mse"):
        assert losses[1][key].item() == pytest.approx(losses[0][key].item(), rel=0.02)
    with pytest.raises(ValueError, match="bf16"):
        use_bf16_transforms(torch.nn.Linear(2, 2))


def test_training_resumes_selects_on_validation_and_exports_a_loadable_fp16_checkpoint(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edgespacecom")
    out = tmp_path / "run"
    val = tmp_path / "val.png"  # a validation scene that is not a training scene
    Image.fromarray(read_rgb(eo("rgb/test/pdok_nl_test_tiled.tif"))[:256, :256]).save(val)
    kwargs = dict(batch_size=2, crop=64, lr=1e-4, channels=(32, 48), data=[str(NEON)], val=[str(val)],
                  checkpoint_every=1, threads=1, export=tmp_path / "m.pt", progress=False, max_downscale=1.5,
                  precision="bf16")
    train("bmshj2018-hyperprior", 0.013, out, steps=2, **kwargs)
    assert torch.load(out / "state.pt", weights_only=True)["step"] == 2
    path = train("bmshj2018-hyperprior", 0.013, out, steps=3, **kwargs)
    assert "resuming bmshj2018-hyperprior λ=0.013 at step 2/3" in caplog.text
    assert [int(line.split(",")[0]) for line in (out / "train_log.csv").read_text().splitlines()] == [1, 2, 3]
    val_log = [line.split(",") for line in (out / "val_log.csv").read_text().splitlines()]
    assert [int(row[0]) for row in val_log] == [1, 2, 3]
    best_step = int(min(val_log, key=lambda row: float(row[1]))[0])
    payload = torch.load(path, weights_only=True)
    assert payload["selected_step"] == best_step == payload["steps"] and payload["lambda"] == 0.013
    assert payload["validation"] == [f"file:{val.name}"]
    assert payload["precision"] == "bf16" and payload["max_downscale"] == 1.5
    assert payload["state_dict"]["g_a.0.weight"].dtype == torch.float16
    codec = load_checkpoint(path, "bmshj2018-hyperprior")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        enc = codec.model.compress(x)
        dec = codec.model.decompress(enc["strings"], enc["shape"])
    assert dec["x_hat"].shape == x.shape
    with pytest.raises(ValueError, match="belongs to bmshj2018-hyperprior"):
        train("bmshj2018-hyperprior", 0.025, out, steps=4, **kwargs)
    with pytest.raises(ValueError, match="--precision"):
        train("bmshj2018-hyperprior", 0.013, tmp_path / "other", steps=1, **{**kwargs, "precision": "fp16"})
    with pytest.raises(ValueError, match="--val"):
        train("bmshj2018-hyperprior", 0.013, tmp_path / "other", steps=1, **{**kwargs, "val": [str(NEON)]})


def test_a_time_budget_stops_validates_and_exports_and_the_next_call_continues(tmp_path):
    """What `make models DEVICE=cuda` relies on (here on the CPU, with a budget of one step): the call stops
    when its time is up, validates at that step, saves its state and exports; the next call continues."""
    val = tmp_path / "val.png"
    Image.fromarray(read_rgb(eo("rgb/test/pdok_nl_test_tiled.tif"))[:128, :128]).save(val)
    kwargs = dict(batch_size=1, crop=64, channels=(32, 48), data=[str(NEON)], val=[str(val)], threads=1,
                  export=tmp_path / "m.pt", progress=False, checkpoint_every=100, val_every=100, storage="int8")
    with pytest.raises(ValueError, match="--max-minutes"):
        train("bmshj2018-hyperprior", 0.013, tmp_path / "r", steps=5, max_wall_s=0, **kwargs)
    train("bmshj2018-hyperprior", 0.013, tmp_path / "r", steps=5, max_wall_s=1e-9, **kwargs)
    assert torch.load(tmp_path / "r" / "state.pt", weights_only=True)["step"] == 1
    assert [line.split(",")[0] for line in (tmp_path / "r" / "val_log.csv").read_text().splitlines()] == ["1"]
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert payload["selected_step"] == 1 and payload["storage"] == "int8"
    train("bmshj2018-hyperprior", 0.013, tmp_path / "r", steps=3, **kwargs)
    assert torch.load(tmp_path / "r" / "state.pt", weights_only=True)["step"] == 3
    assert torch.load(tmp_path / "m.pt", weights_only=True)["steps"] in (1, 3)  # the validation's choice


def test_device_choice():
    from dlrc_agents.codecs.train import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="--device"):
        resolve_device("banana")
    with pytest.raises(ValueError, match="--device"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_a_moving_average_of_the_weights_is_validated_resumed_and_exported(tmp_path):
    """--ema: after the first step the average is the weights themselves; one step later it is
    d·w1 + (1 − d)·w2 with the warmed-up decay d = min(decay, 2/11) (the definition, checked on the raw
    weights each state holds); the export is the average at the step the validation chose, and a run
    keeps its decay."""
    val = tmp_path / "val.png"
    Image.fromarray(read_rgb(eo("rgb/test/pdok_nl_test_tiled.tif"))[:128, :128]).save(val)
    decay = 0.75
    kwargs = dict(batch_size=1, crop=64, lr=1e-2, channels=(32, 48), data=[str(NEON)], val=[str(val)], threads=1,
                  export=tmp_path / "m.pt", progress=False, checkpoint_every=1, ema=decay, precision="bf16")
    with pytest.raises(ValueError, match="--ema"):
        train("bmshj2018-hyperprior", 0.013, tmp_path / "bad", steps=1, **{**kwargs, "ema": 1.0})
    out = tmp_path / "r"
    train("bmshj2018-hyperprior", 0.013, out, steps=1, **kwargs)
    first = torch.load(out / "state.pt", weights_only=True)
    assert torch.equal(first["ema_model"]["module.g_a.0.weight"], first["model"]["g_a.0.weight"])
    train("bmshj2018-hyperprior", 0.013, out, steps=2, **kwargs)
    second = torch.load(out / "state.pt", weights_only=True)
    w1, w2 = first["model"]["g_a.0.weight"], second["model"]["g_a.0.weight"]
    assert not torch.equal(w1, w2)
    average = second["ema_model"]["module.g_a.0.weight"]
    d = min(decay, 2 / 11)
    assert torch.allclose(average, d * w1 + (1 - d) * w2, atol=1e-7)
    # what was validated at step 2 is the average (in fp32), computed here from its weights alone
    model = build_model("bmshj2018-hyperprior", 32, 48)
    model.load_state_dict({k.removeprefix("module."): v for k, v in second["ema_model"].items() if k != "n_averaged"})
    tiles = validation_tiles([read_rgb(val)], 128)
    logged = float((out / "val_log.csv").read_text().splitlines()[-1].split(",")[1])
    assert validation_loss(model, tiles, 0.013)["loss"] == pytest.approx(logged, rel=1e-5)
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert payload["ema"] == decay
    exported = payload["state_dict"]["g_a.0.weight"].float()
    chosen, raw = {1: (w1, w1), 2: (average, w2)}[payload["selected_step"]]
    assert (exported - chosen).abs().max() < 1e-3 * chosen.abs().max()  # fp16 storage
    if payload["selected_step"] == 2:  # the average, not the raw weights of that step (nearer the average)
        assert (exported - chosen).abs().max() < 0.5 * (raw - chosen).abs().max()
    with pytest.raises(ValueError, match="--ema"):
        train("bmshj2018-hyperprior", 0.013, out, steps=3, **{**kwargs, "ema": None})


def test_the_average_warms_up_then_keeps_its_decay():
    """ema_decay: (1 + n) / (10 + n) until it reaches the decay d, at n = (10·d − 1) / (1 − d), then d;
    an average held at 0 that then sees 1 at every update keeps the product of the decays of 0."""
    assert ema_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_decay(0.999, 1) == pytest.approx(2 / 11)
    assert ema_decay(0.999, 8990) == pytest.approx(0.999)  # (1 + n)/(10 + n) = 0.999 at n = 8990
    assert ema_decay(0.999, 10**6) == 0.999
    assert ema_decay(0.5, 3) == pytest.approx(4 / 13)
    assert ema_decay(0.5, 8) == 0.5
    update = warmed_ema_multi_avg_fn(0.999)
    averaged, current = [torch.zeros(3)], [torch.ones(3)]
    kept = 1.0
    for n in range(1, 50):
        update(averaged, current, torch.tensor(n))
        kept *= (1 + n) / (10 + n)
    assert torch.allclose(averaged[0], torch.full((3,), 1 - kept))

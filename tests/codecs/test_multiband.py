"""N-band learned codecs (issue 15, part 2's registry half): 1-, 4- and 13-band models built from
CompressAI's architectures, their per-band normalisation kept in the checkpoint, and DLRC on them
unchanged and bit-exact (hyperprior and autoregressive context model)."""

import numpy as np
import pytest
import torch

from dlrc_agents.codecs.registry import (BandNormalisation, CodecError, build_model, codec_from_model, export_checkpoint, load_checkpoint)
from dlrc_agents.dlrc.alone import decode_alone, encode_alone
from dlrc_agents.dlrc.bitstream import BitstreamError
from dlrc_agents.dlrc.onboard import DLRCConfig, encode_group
from dlrc_agents.dlrc.reconstructor import reconstruct


def multiband_scene(bands: int, size: int = 320, seed: int = 0) -> np.ndarray:
    """A 16-bit reflectance-like scene (H, W, B): smooth fields that differ by band, and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    out = [2000 + 900 * np.sin(yy / (9 + b) + b) * np.cos(xx / (13 - 0.3 * b)) + rng.normal(0, 40, (size, size))
           for b in range(bands)]
    return np.clip(np.stack(out, -1), 0, 65535).astype(np.uint16)


def _codec(architecture: str, bands: int, scene: np.ndarray):
    torch.manual_seed(bands)
    return codec_from_model(build_model(architecture, 32, 48, bands), architecture, 32, 48,
                            bands=BandNormalisation.from_samples(scene))


@pytest.mark.parametrize("architecture,bands,patch", [("bmshj2018-hyperprior", 4, 128), ("bmshj2018-hyperprior", 13, 128),
                                                      ("bmshj2018-hyperprior", 1, 128), ("mbt2018", 4, 128)])
def test_dlrc_on_n_band_codecs_decodes_bit_exactly(architecture, bands, patch):
    scene = multiband_scene(bands)
    codec = _codec(architecture, bands, scene)
    offsets = [(0, 0), (0, 32), (32, 16)]  # on the 16-pixel latent grid: overlapping ground lines up
    images = {s: codec.bands.to_model(scene[y:y + patch, x:x + patch]) for s, (y, x) in enumerate(offsets)}
    assert images[0].shape == (1, bands, patch, patch)
    cfg = DLRCConfig(map_transport="references", context_fill="prediction" if architecture == "mbt2018" else "representative")
    group = encode_group(codec, images, cfg)
    out = reconstruct(codec, list(group.streams.values()))
    for s in images:
        assert torch.equal(out[s]["y_tilde"], group.intended[s])
        assert out[s]["x_hat"].shape == (1, bands, patch, patch)
    assert len(group.arbitration.retained[2]) < (patch // 16) ** 2  # the third satellite drops shared ground


def test_n_band_codec_alone_and_checkpoint_round_trip(tmp_path):
    scene = multiband_scene(13)
    codec = _codec("bmshj2018-hyperprior", 13, scene)
    x = codec.bands.to_model(scene[:128, :128])
    data = encode_alone(codec, x, satellite=0, capture=3).to_bytes()
    x_hat = decode_alone(codec, data, capture=3)
    out = codec.model.compress(x)
    assert torch.equal(x_hat, codec.model.decompress(out["strings"], out["shape"])["x_hat"].clamp(0, 1))
    raw = codec.bands.to_raw(x_hat)
    assert raw.shape == (128, 128, 13) and raw.dtype == np.uint16
    path = export_checkpoint(codec.model, tmp_path / "m13.pt", architecture="bmshj2018-hyperprior", N=32, M=48,
                             lmbda=0.01, steps=0, seed=0, data=[], bands=codec.bands)
    loaded = load_checkpoint(path)
    assert loaded.in_channels == 13 and loaded.bands == codec.bands
    assert decode_alone(loaded, encode_alone(loaded, x, capture=3).to_bytes(), capture=3).shape == (1, 13, 128, 128)
    # the checkpoint stores fp16 weights: another model, and the ground says so rather than decode
    with pytest.raises(BitstreamError, match="made by model"):
        decode_alone(loaded, data, capture=3)


def test_band_normalisation_by_hand():
    samples = np.stack([np.linspace(0, 1000, 1001), np.linspace(100, 4100, 1001)], -1)
    norm = BandNormalisation.from_samples(samples, low=0, high=100)
    assert norm.offset == (0.0, 100.0) and norm.scale == (1000.0, 4000.0)
    x = norm.to_model(np.array([[[500, 2100]]], dtype=np.uint16))
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([0.5, 0.5]))
    assert norm.to_raw(x).tolist() == [[[500, 2100]]]
    with pytest.raises(CodecError, match="scale must be > 0"):
        BandNormalisation((0.0,), (0.0,))
    with pytest.raises(CodecError, match="built for"):
        build_model("cheng2020-anchor", 64, 64, 4)

"""Predictive inter-satellite coding (dlrc.mode: predict): references from the shared grid, residual
coding through CompressAI's Gaussian conditional, exact decoding from bytes, identity with the codec
alone, the lost-stream path and refusals."""

import numpy as np
import pytest
import torch

from dlrc_agents.codecs.registry import build_model, codec_from_model, load_codec
from dlrc_agents.dlrc import predict
from dlrc_agents.dlrc.bitstream import BitstreamError, SatelliteBitstream, pack_container, split_container
from dlrc_agents.dlrc.onboard import DLRCConfig, encode_group, needed_streams
from dlrc_agents.dlrc.reconstructor import reconstruct

from tests.conftest import crops

PREDICT = DLRCConfig(mode="predict")


@pytest.fixture(scope="module", params=["bmshj2018-hyperprior", "mbt2018-mean"])
def small_codec(request):
    torch.manual_seed(1)
    return codec_from_model(build_model(request.param, 32, 48), request.param, 32, 48)


@pytest.fixture(scope="module")
def shipped():
    return load_codec("bmshj2018-hyperprior", lmbda=0.0067)


def _noisy(images: dict, sigma: float, seed: int = 0) -> dict:
    """The same captures with independent sensor noise of σ DN per satellite, requantised to 8 bits."""
    rng = np.random.default_rng(seed)
    out = {}
    for s, x in images.items():
        noise = torch.from_numpy(rng.normal(0.0, sigma, x.shape)).float() / 255.0
        out[s] = torch.round(((x + noise).clamp(0, 1)) * 255.0) / 255.0
    return out


# ----------------------------------------------------------------------- references


def test_grid_references_by_hand():
    # three 4×4-position tiles (64 px, stride 16): 1 lies one cell right of 0, 2 one cell down of 0
    # and 3 px off the stride (shares no latent cell with anyone)
    origins = {0: (0, 0), 1: (0, 16), 2: (16, 0), 3: (5, 0)}
    refs = predict.grid_references(origins, [0, 1, 2, 3], 4, 4, 16)
    n = 16
    assert np.array_equal(refs[0], np.arange(n))  # the first satellite references nothing
    # satellite 1: its column c is satellite 0's column c + 1, for c = 0..2; its last column is its own
    r1 = refs[1].reshape(4, 4)
    assert np.array_equal(r1[:, :3], 0 * n + (np.arange(4)[:, None] * 4 + np.arange(1, 4)[None]))
    assert np.array_equal(r1[:, 3], 1 * n + np.arange(4) * 4 + 3)
    # satellite 2: rows 0..2 from satellite 0 (higher priority than 1, which also holds some)
    r2 = refs[2].reshape(4, 4)
    assert np.all(r2[:3] // n == 0) and np.array_equal(r2[:3] % n, np.arange(4, 16).reshape(3, 4))
    # its last row: satellite 1 holds columns 1..3 of it (ground row 4 is outside 0 and 1), so own
    assert np.all(r2[3] // n == 2)
    assert np.array_equal(refs[3], 3 * n + np.arange(n))
    # priority order decides the holder
    refs_b = predict.grid_references(origins, [1, 0, 2, 3], 4, 4, 16)
    assert np.all(refs_b[0].reshape(4, 4)[:, 1:] // n == 1)


def test_grid_references_preferred_peer():
    # three tiles on the same ground: by priority every position of 2 references 0; with 1 preferred
    # for 2, every position 1 holds references 1, the same cell, and the rest still fall back to 0
    n = 16
    origins = {0: (0, 0), 1: (0, 16), 2: (0, 0)}
    plain = predict.grid_references(origins, [0, 1, 2], 4, 4, 16)
    assert np.array_equal(plain[2], np.arange(n))
    refs = predict.grid_references(origins, [0, 1, 2], 4, 4, 16, preferred={2: 1})
    r2 = refs[2].reshape(4, 4)
    # ground column c of tile 2 is tile 1's column c - 1, held for c = 1..3
    assert np.array_equal(r2[:, 1:], 1 * n + (np.arange(4)[:, None] * 4 + np.arange(0, 3)[None]))
    assert np.array_equal(r2[:, 0], 0 * n + np.arange(4) * 4)  # column 0: only satellite 0 holds it
    assert np.array_equal(refs[1], plain[1])  # the others are unchanged
    # a preferred peer of lower priority is never a reference (the ground decodes in priority order)
    low = predict.grid_references(origins, [0, 1, 2], 4, 4, 16, preferred={1: 2})
    assert np.array_equal(low[1], plain[1])


def test_needed_streams_follow_chains():
    n = 4
    refs = {0: np.arange(4), 1: np.array([0, 1, 1 * n + 2, 1 * n + 3]), 2: np.array([1 * n, 2 * n + 1, 2 * n + 2, 2 * n + 3])}
    assert needed_streams(refs, 0, n) == set()
    assert needed_streams(refs, 1, n) == {0}
    assert needed_streams(refs, 2, n) == {0, 1}  # 2 references 1, which references 0


def test_scale_indexes_equal_compressai(shipped):
    gc = shipped.model.gaussian_conditional
    torch.manual_seed(0)
    scales = torch.exp(torch.randn(1, 192, 8, 8) * 3)
    scales[0, 0, 0, :4] = torch.tensor([0.0, gc.scale_table[5].item(), gc.scale_table[-1].item(), 1e9])
    assert torch.equal(predict.scale_indexes(gc, scales), gc.build_indexes(scales))


def test_flags_round_trip():
    """Flags in patches (as where prediction fails) round-trip through their contexts, and cost less than
    one frequency for all would (the binary entropy of their mean, computed here independently)."""
    rng = np.random.default_rng(0)
    H, W = 24, 20
    predicted = np.ones((H, W), dtype=bool)
    for _ in range(8):  # rectangular patches of failed prediction
        r, c = rng.integers(0, H - 4), rng.integers(0, W - 4)
        predicted[r:r + rng.integers(2, 5), c:c + rng.integers(2, 5)] = False
    predicted = predicted.ravel()
    positions = np.sort(rng.choice(H * W, 400, replace=False))  # the positions with a reference
    grid = np.zeros(H * W, dtype=bool)
    grid[positions] = predicted[positions]
    flags = grid[positions]
    contexts = predict.flag_contexts(grid, positions, W)
    # by hand: the first position has no neighbour; one whose left neighbour was predicted has bit 0 set
    assert contexts[0] == 0 or positions[0] >= W
    for k, ctx in zip(positions[:50], contexts[:50]):
        assert ctx == int(k % W > 0 and grid[k - 1]) + 2 * int(k >= W and grid[k - W])
    model = predict.fit_flag_model(flags, contexts)
    data = predict.encode_flags(flags, contexts, model)
    p = flags.mean()
    assert 8 * len(data) < flags.size * -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    assert np.array_equal(predict.decode_flags(data, positions, H * W, W, model), flags)


# ----------------------------------------------------------------------- coding


@pytest.mark.parametrize("sigma", [0.0, 2.0])
def test_predict_decodes_exactly_and_equals_codec_alone(small_codec, scene, sigma):
    origins = {0: (0, 0), 1: (0, 64), 2: (64, 32)}
    images = _noisy(crops(scene, list(origins.values()), 128), sigma)
    group = encode_group(small_codec, images, PREDICT, origins=origins)
    decoded = reconstruct(small_codec, list(group.streams.values()))
    for s, x in images.items():
        out = small_codec.model.compress(x)  # the codec alone, CompressAI's own path
        alone = small_codec.model.decompress(out["strings"], out["shape"])["x_hat"]
        assert torch.equal(decoded[s]["y_tilde"], group.latents[s].y_hat[0])
        assert torch.equal(decoded[s]["x_hat"], alone)
    assert group.predictions[0].candidates == 0
    for s in (1, 2):  # a satellite where prediction pays nowhere sends no map and no flags
        p = SatelliteBitstream.from_bytes(group.streams[s])
        if not group.predictions[s].predicted.any():
            assert p.maps == {} and len(p.side_string) == 1 and group.predictions[s].candidates == 0
        else:
            assert s in p.maps and group.predictions[s].candidates == (8 * 4 if s == 1 else group.predictions[s].candidates)
    assert group.exchange_bytes[0] == 0 and group.exchange_bytes[1] == len(group.streams[0])
    assert group.exchange_bytes[2] == len(group.streams[0]) + len(group.streams[1])


def test_predict_saves_on_overlap_under_noise(shipped, scene):
    """Real weights, four overlapping 256² captures with σ = 2 DN noise each: predict sends fewer
    bytes than the codec alone, and than copy, which loses its matches to the noise."""
    origins = {0: (256, 256), 1: (320, 288), 2: (224, 352), 3: (384, 256)}
    images = _noisy(crops(scene, list(origins.values())), 2.0)
    alone = sum(len(s[0]) for x in images.values() for s in shipped.model.compress(x)["strings"])
    pred = encode_group(shipped, images, PREDICT, origins=origins)
    copy = encode_group(shipped, images, DLRCConfig())
    sent_pred = sum(map(len, pred.streams.values()))
    sent_copy = sum(map(len, copy.streams.values()))
    assert sent_pred < 0.85 * alone  # every byte: containers, maps and side strings included
    assert sent_pred < sent_copy
    assert all(pred.predictions[s].predicted.sum() > 0.5 * pred.predictions[s].candidates for s in (1, 2, 3))


def test_aligned_identical_captures_cost_almost_nothing(shipped, scene):
    images = crops(scene, [(0, 0), (0, 0)], 128)
    group = encode_group(shipped, images, PREDICT, origins={0: (0, 0), 1: (0, 0)})
    assert group.predictions[1].predicted.all()
    assert len(SatelliteBitstream.from_bytes(group.streams[1]).y_string) < 0.1 * len(
        SatelliteBitstream.from_bytes(group.streams[0]).y_string)


def test_predict_from_a_preferred_peer(shipped, scene):
    """Three captures of one ground: the first noisy, the other two identical. By priority the third
    predicts from the noisy first; told to prefer the second, it predicts from it, costs almost nothing
    and still decodes exactly."""
    origins = {0: (0, 0), 1: (0, 0), 2: (0, 0)}
    clean = crops(scene, list(origins.values()), 128)
    images = {0: _noisy({0: clean[0]}, 4.0)[0], 1: clean[1], 2: clean[2]}
    plain = encode_group(shipped, images, PREDICT, origins=origins)
    pref = encode_group(shipped, images, PREDICT, origins=origins, preferred={2: 1})
    y_bytes = {k: len(SatelliteBitstream.from_bytes(g.streams[2]).y_string) for k, g in (("plain", plain), ("pref", pref))}
    assert pref.predictions[2].predicted.all()
    assert y_bytes["pref"] < 0.5 * y_bytes["plain"]
    assert pref.streams[0] == plain.streams[0] and pref.streams[1] == plain.streams[1]
    decoded = reconstruct(shipped, list(pref.streams.values()))
    assert all(torch.equal(decoded[s]["y_tilde"], pref.latents[s].y_hat[0]) for s in images)


def test_predict_without_origins_uses_the_arbiters_matches(shipped, scene):
    images = crops(scene, [(0, 0), (0, 0), (32, 64)], 128)
    group = encode_group(shipped, images, PREDICT)
    assert group.arbitration is not None and group.predictions[1].candidates == 64
    assert group.predictions[1].predicted.all()  # identical captures: every position from the peer
    decoded = reconstruct(shipped, list(group.streams.values()))
    assert all(torch.equal(decoded[s]["y_tilde"], group.latents[s].y_hat[0]) for s in images)


def test_lost_reference_stream(shipped, scene):
    origins = {0: (0, 0), 1: (0, 64)}
    images = _noisy(crops(scene, list(origins.values()), 128), 1.0)
    group = encode_group(shipped, images, PREDICT, origins=origins)
    with pytest.raises(BitstreamError, match="missing"):
        reconstruct(shipped, [group.streams[1]])
    out = reconstruct(shipped, [group.streams[1]], lost="predict")[1]
    predicted = torch.as_tensor(group.predictions[1].predicted)
    assert predicted.any() and not predicted.all()
    C = group.latents[1].y_hat.shape[1]
    own = group.latents[1].y_hat[0].reshape(C, -1)
    got = out["y_tilde"].reshape(C, -1)
    # positions coded alone decode exactly; positions predicted from the lost stream take μ (0 for BMSHJ)
    assert torch.equal(got[:, ~predicted], own[:, ~predicted])
    assert torch.all(got[:, predicted] == 0)
    assert out["predicted"] == 8 * 4  # positions that referenced the lost stream


# ----------------------------------------------------------------------- calibration


def _gained(images: dict, gains: dict, bias: float = 0.0) -> dict:
    """Captures with a per-satellite radiometric gain (and bias), requantised to 8 bits."""
    return {s: torch.round((x * gains.get(s, 1.0) + (bias if s in gains else 0.0)).clamp(0, 1) * 255) / 255
            for s, x in images.items()}


def test_calibration_bytes_round_trip():
    c = predict.Calibration((1.25, 0.5, 2.0), (-0.125, 0.0, 0.25))
    back, used = predict.Calibration.from_bytes(c.to_bytes() + b"rest")
    assert back == c and used == 1 + 4 * 3
    for bad in (b"", b"\x03\x00", b"\x00"):
        with pytest.raises(BitstreamError, match="calibration"):
            predict.Calibration.from_bytes(bad)
    negative = bytes([1]) + np.asarray([-1.0, 0.0], dtype="<f2").tobytes()
    with pytest.raises(BitstreamError, match="gain"):
        predict.Calibration.from_bytes(negative)


def test_random_side_strings_are_read_or_refused():
    """2,000 random side strings: each parses (β, flags, a calibration with positive finite gains) or is
    refused with a BitstreamError, never another exception."""
    rng = np.random.default_rng(0)
    for _ in range(2000):
        data = rng.integers(0, 256, int(rng.integers(0, 24)), dtype=np.uint8).tobytes()
        try:
            beta, _, _ = predict.parse_side(data)
            c = predict.side_calibration(data)
        except BitstreamError:
            continue
        assert all(0 <= b < len(predict.BETA_LEVELS) for b in (beta if isinstance(beta, tuple) else [beta]))
        assert not isinstance(beta, tuple) or len(beta) == len(predict.SCALE_BANDS) + 1
        assert c is None or (all(g > 0 and np.isfinite(g) for g in c.gain) and all(np.isfinite(c.bias)))


def test_fit_recovers_a_known_gain_and_bias(shipped, scene):
    """own = 1.2·reference − 0.05 exactly (no clipping on this scene): the moment fit returns it."""
    x = crops(scene, [(0, 0)], 128)[0]
    own = x * 1.2 - 0.05
    mask = np.ones(64, dtype=bool)
    c = predict.fit_calibration(own, x, mask)
    np.testing.assert_allclose(c.gain, [1.2] * 3, rtol=2e-3)
    np.testing.assert_allclose(c.bias, [-0.05] * 3, atol=2e-3)


def test_calibrated_prediction_is_exact_and_pays_under_gain(shipped, scene):
    """A 20 % gain between the satellites: the calibrated prediction is chosen, saves bytes against the
    plain one, and the ground decodes every ŷ exactly (the image is the codec alone's). (At 1–6 % the
    plain prediction is as good: the gain moves few latents by half a step.)"""
    origins = {0: (0, 0), 1: (32, 64)}
    images = _gained(crops(scene, list(origins.values())), {1: 0.8})
    plain = encode_group(shipped, images, PREDICT, origins=origins)
    cal = encode_group(shipped, images, DLRCConfig(mode="predict", calibration="gain_bias"), origins=origins)
    side = SatelliteBitstream.from_bytes(cal.streams[1]).side_string
    assert predict.side_calibration(side) is not None
    assert predict.side_calibration(SatelliteBitstream.from_bytes(plain.streams[1]).side_string) is None
    assert len(cal.streams[1]) < len(plain.streams[1])
    decoded = reconstruct(shipped, list(cal.streams.values()))
    for s in images:
        assert torch.equal(decoded[s]["y_tilde"], cal.latents[s].y_hat[0])
    assert "calibration" in cal.timings_s
    # lost reference: every position predicted from it takes μ, the rest decode exactly
    out = reconstruct(shipped, [cal.streams[1]], lost="predict")[1]
    predicted = torch.as_tensor(cal.predictions[1].predicted)
    C = cal.latents[1].y_hat.shape[1]
    got, own = out["y_tilde"].reshape(C, -1), cal.latents[1].y_hat[0].reshape(C, -1)
    assert torch.equal(got[:, ~predicted], own[:, ~predicted]) and torch.all(got[:, predicted] == 0)


def _displaced(scene, amplitude: float, seed: int = 0):
    """The scene resampled through a smooth displacement field (rows and columns, up to ``amplitude`` px,
    varying over ~200 px: the parallax a constant-height orthorectification leaves), as uint8."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    rng = np.random.default_rng(seed)
    P, Q = scene.shape[:2]
    field = [gaussian_filter(rng.normal(size=(P, Q)), 60) for _ in range(2)]
    field = [amplitude * f / np.abs(f).max() for f in field]
    r, c = np.mgrid[0:P, 0:Q].astype(np.float64)
    out = [map_coordinates(scene[..., k].astype(np.float64), [r + field[0], c + field[1]], order=3, mode="nearest")
           for k in range(scene.shape[2])]
    return np.clip(np.round(np.stack(out, -1)), 0, 255).astype(np.uint8), field


def test_registration_bytes_round_trip_and_refusals():
    reg = predict.Registration(32, np.arange(-8, 8, dtype=np.int8).reshape(4, 4), np.full((4, 4), 3, np.int8))
    back, used = predict.Registration.from_bytes(reg.to_bytes() + b"rest")
    assert used == len(reg.to_bytes()) and back.block == 32
    assert np.array_equal(back.dy, reg.dy) and np.array_equal(back.dx, reg.dx)
    cal = predict.Calibration((1.0,), (0.0,), reg)
    again, used = predict.Calibration.from_bytes(cal.to_bytes())
    assert used == len(cal.to_bytes()) and np.array_equal(again.registration.dy, reg.dy)
    # the field covers a 128² frame in 32-pixel blocks, and nothing else
    fy, fx = reg.field(128, 128)
    assert fy.shape == (128, 128) and np.allclose(fx, 0.75)
    with pytest.raises(BitstreamError, match="does not cover"):
        reg.field(256, 128)
    def field_bytes(head: bytes, string: bytes = b"") -> bytes:
        return (len(head) + len(string)).to_bytes(2, "little") + head + string

    for bad in (b"", b"\x05\x00abc", b"\x03\x00" + b"xyz",  # truncated; shorter than its head
                field_bytes(bytes([3, 1, 1, 0x11])),  # an 8-pixel block (finer than a latent cell)
                field_bytes(bytes([5 | 0x20, 1, 1, 0x11])),  # a reserved bit set
                field_bytes(bytes([5, 0, 4, 0x11]))):  # an empty field
        with pytest.raises(BitstreamError, match="registration"):
            predict.Registration.from_bytes(bad)
    # decoding is bounded by the head's u8 sizes: a 255×255 field declared over 2 bytes decodes (from the
    # zero padding) to int8 values and is then refused against the frame it does not cover
    big, used = predict.Registration.from_bytes(field_bytes(bytes([5, 255, 255, 0x33]), b"\x01\x02"))
    assert big.dy.shape == (255, 255) and big.dy.dtype == np.int8 and used == 2 + 6
    with pytest.raises(BitstreamError, match="does not cover"):
        big.field(128, 128)
    # the Laplace scale is the encoder's choice: a wide field takes a wide scale, a flat one the narrowest
    wide = predict.Registration(64, np.full((4, 4), -100, np.int8), np.full((4, 4), 90, np.int8)).to_bytes()
    flat = predict.Registration(64, np.zeros((4, 4), np.int8), np.zeros((4, 4), np.int8)).to_bytes()
    assert wide[2 + 3] >> 4 > 8 and flat[2 + 3] == 0 and len(flat) < len(wide)


def test_scale_band_betas_round_trip():
    betas = tuple(range(len(predict.SCALE_BANDS) + 1))
    assert predict._unpack_betas(predict._pack_betas(betas)) == betas
    sigma = torch.tensor([0.1, 0.3, 5.0, 50.0])
    expected = sigma * torch.tensor([predict.BETA_LEVELS[b] for b in (0, 1, 7, 9)])
    assert torch.allclose(predict.residual_scales(sigma, betas), expected)
    assert torch.allclose(predict.residual_scales(sigma, 2), sigma * predict.BETA_LEVELS[2])


def test_fit_registration_recovers_a_known_shift(scene):
    """A frame displaced by (1.25, −2.5) px everywhere: every 64-pixel block's displacement is found
    within a quarter pixel (most exactly), and resampling through it brings the frame back onto the capture."""
    from scipy.ndimage import shift as nd_shift

    x = crops(scene, [(200, 200)], 256)[0]
    moved = torch.from_numpy(np.stack([nd_shift(x[0, k].double().numpy(), (1.25, -2.5), order=3, mode="nearest")
                                       for k in range(3)])[None]).float()
    reg = predict.fit_registration(x, moved, np.ones(256, dtype=bool), 64)
    # quarter pixels: sample the frame 1.25 px down and 2.5 px left
    assert np.all(np.abs(reg.dy - 5) <= 1) and np.all(np.abs(reg.dx + 10) <= 1)
    assert np.mean((reg.dy == 5) & (reg.dx == -10)) >= 0.75
    back = predict.warp(moved, reg)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert float((back - x)[inner].abs().mean()) < 0.2 * float((moved - x)[inner].abs().mean())


def test_least_squares_fit_recovers_a_known_gain_and_bias(scene):
    x = crops(scene, [(0, 0)], 128)[0]
    c = predict.fit_calibration(x * 0.9 + 0.03, x, np.ones(64, dtype=bool), "least_squares")
    np.testing.assert_allclose(c.gain, [0.9] * 3, rtol=2e-3)
    np.testing.assert_allclose(c.bias, [0.03] * 3, atol=2e-3)


def test_registered_prediction_is_exact_and_pays_under_parallax(shipped, scene):
    """The second satellite sees the ground displaced by a smooth field of up to 6 px (parallax): the
    registered prediction is chosen, its stream is smaller than the gain-and-bias one's, and the ground
    decodes every ŷ exactly from the bytes (the image is the codec alone's)."""
    displaced, _ = _displaced(scene[:512, :512], 6.0)
    images = {0: crops(scene, [(0, 0)])[0], 1: crops(displaced, [(16, 32)])[0]}
    origins = {0: (0, 0), 1: (16, 32)}
    gb = encode_group(shipped, images, DLRCConfig(mode="predict", calibration="gain_bias"), origins=origins)
    reg = encode_group(shipped, images, DLRCConfig(mode="predict", calibration="registered"), origins=origins)
    side = SatelliteBitstream.from_bytes(reg.streams[1]).side_string
    cal = predict.side_calibration(side)
    assert cal is not None and cal.registration is not None and cal.registration.block in predict.REGISTRATION_BLOCKS
    assert len(reg.streams[1]) < 0.97 * len(gb.streams[1])
    decoded = reconstruct(shipped, list(reg.streams.values()))
    for s in images:
        assert torch.equal(decoded[s]["y_tilde"], reg.latents[s].y_hat[0])
    # a registration that does not cover the latent is refused before any resampling
    wrong = predict.Calibration(cal.gain, cal.bias, predict.Registration(cal.registration.block,
                                                                          cal.registration.dy[:1], cal.registration.dx[:1]))
    beta, p1, flags = predict.parse_side(side)
    head = side[0] & 0xC0
    by = head & predict._BY_SCALE
    bad_side = (predict._SIDE.pack(head | (0 if by else beta), *p1) + (predict._pack_betas(beta) if by else b"")
                + wrong.to_bytes() + flags)
    assert predict.side_calibration(bad_side).registration.dy.shape[0] == 1
    c = split_container(reg.streams[1])
    bad = pack_container(type(c)(c.fields, c.members, c.map_sats, [c.strings[0], c.strings[1], bad_side], c.map_section))
    with pytest.raises(BitstreamError, match="registration"):
        reconstruct(shipped, [reg.streams[0], bad])


def test_calibration_config():
    from edgespacecom.config import ScenarioError, validate_scenario

    base = {"kind": "rd", "name": "t", "codec": {"architecture": "bmshj2018-hyperprior", "lambdas": [0.0067]}}
    ok = validate_scenario({**base, "dlrc": {"mode": ["copy", "predict"], "calibration": ["none", "gain_bias"]}})
    assert ok.dlrc.calibrations() == ["none", "gain_bias"] and ok.dlrc.core()["calibration"] == "none"
    with pytest.raises(ScenarioError, match="calibration.*no predict"):
        validate_scenario({**base, "dlrc": {"mode": "copy", "calibration": "gain_bias"}})
    with pytest.raises(ScenarioError, match="registered.*no predict"):
        validate_scenario({**base, "dlrc": {"mode": "copy", "calibration": ["none", "registered"]}})


# ----------------------------------------------------------------------- refusals


def test_predictive_container_checks(small_codec, scene):
    origins = {0: (0, 0), 1: (0, 64)}
    group = encode_group(small_codec, crops(scene, list(origins.values()), 128), PREDICT, origins=origins)
    data = group.streams[1]
    c = split_container(data)
    # a side string naming a residual scale past the table
    bad = pack_container(type(c)(c.fields, c.members, c.map_sats, [c.strings[0], c.strings[1], b"\xff" + c.strings[2][1:]],
                                 c.map_section))
    with pytest.raises(BitstreamError, match="scale index"):
        reconstruct(small_codec, [group.streams[0], bad])
    # predictive and codec-alone flags together
    both = pack_container(type(c)(dict(c.fields, flags=c.fields["flags"] | 1), c.members, c.map_sats, c.strings,
                                  c.map_section))
    with pytest.raises(BitstreamError, match="codec-alone"):
        SatelliteBitstream.from_bytes(both)
    # the predictive flag on a two-string stream
    two = pack_container(type(c)(c.fields, c.members, c.map_sats, c.strings[:2], c.map_section))
    with pytest.raises(BitstreamError, match="predictive stream"):
        SatelliteBitstream.from_bytes(two)
    # predictive and copy streams in one round
    copy = encode_group(small_codec, crops(scene, list(origins.values()), 128), DLRCConfig(map_transport="references"))
    with pytest.raises(BitstreamError, match="mix predictive"):
        reconstruct(small_codec, [group.streams[0], copy.streams[1]])


def test_predict_config():
    from pydantic import ValidationError

    from dlrc_agents.mission.config import MissionScenario
    from dlrc_agents.studies.config import RDScenario

    rd = RDScenario.model_validate({"kind": "rd", "name": "x", "dlrc": {"mode": ["copy", "predict", "copy"]}})
    assert rd.dlrc.modes() == ["copy", "predict"] and rd.dlrc.core()["mode"] == "copy"
    with pytest.raises(ValidationError, match="context model"):
        RDScenario.model_validate({"kind": "rd", "name": "x", "codec": {"architecture": "mbt2018"},
                                   "dlrc": {"mode": "predict"}})
    with pytest.raises(ValidationError, match="at least one mode"):
        RDScenario.model_validate({"kind": "rd", "name": "x", "dlrc": {"mode": []}})
    with pytest.raises(ValidationError, match="one mode"):  # a mission flies one; a sweep compares
        MissionScenario.model_validate({"kind": "mission", "name": "x", "dlrc": {"mode": ["copy", "predict"]}})
    with pytest.raises(ValidationError, match="titan_v"):
        MissionScenario.model_validate({"kind": "mission", "name": "x", "dlrc": {"mode": "predict"},
                                        "mission": {"compute": {"profile": "titan_v"}}})


def test_the_configs_hyperprior_family_is_the_registrys():
    from dlrc_agents.codecs.registry import ARCHITECTURES, family
    from dlrc_agents.common.config import HYPERPRIOR_ARCHITECTURES

    assert set(HYPERPRIOR_ARCHITECTURES) == {a for a in ARCHITECTURES if family(a) == "hyperprior"}

"""8-bit weight storage (registry.pack_int8): the shipped checkpoints' format."""

import pytest
import torch

from dlrc_agents.codecs.registry import (REBUILT_BUFFERS, CodecError, build_model, export_checkpoint, load_checkpoint,
                                         pack_int8, repack_checkpoint, unpack_int8)


def _model(arch="bmshj2018-hyperprior", seed=5):
    torch.manual_seed(seed)
    model = build_model(arch, 32, 48)
    model.update(force=True)
    return model


def test_pack_int8_codes_every_kernel_within_half_a_step():
    model = _model()
    parameters = {k for k, _ in model.named_parameters()}
    state, scales = pack_int8(model.state_dict(), parameters)
    assert not any(k.endswith(REBUILT_BUFFERS) for k in state)  # rebuilt on load, not stored
    back = unpack_int8(state, scales)
    for k, v in model.state_dict().items():
        if k in scales:
            assert state[k].dtype == torch.int8 and int(state[k].abs().max()) <= 127
            step = scales[k].reshape(-1, *([1] * (v.dim() - 1)))
            # each slice's largest weight is coded exactly at ±127 steps; every other within half a step
            assert torch.all((back[k] - v).abs() <= step / 2 + 1e-7), k
            peak = v.abs().reshape(v.shape[0], -1).amax(1)
            assert torch.allclose(peak[peak > 0], 127 * scales[k][peak > 0], rtol=1e-6), k
            assert torch.all(scales[k][peak == 0] == 1), k  # an all-zero slice: codes 0, any scale
        elif k in parameters:
            assert state[k].dtype == torch.float16 and v.dim() < 2
    assert sum(v.numel() for k, v in model.named_parameters() if k in scales) > 0.99 * sum(
        v.numel() for v in model.parameters())


@pytest.mark.parametrize("arch", ["bmshj2018-hyperprior", "mbt2018"])
def test_int8_checkpoint_loads_the_dequantised_weights_and_decodes_bit_exactly(tmp_path, arch):
    model = _model(arch)
    fp16 = export_checkpoint(model, tmp_path / "a.pt", architecture=arch, N=32, M=48, lmbda=0.0067, steps=1,
                             seed=0, data=["x"])
    int8 = export_checkpoint(model, tmp_path / "b.pt", architecture=arch, N=32, M=48, lmbda=0.0067, steps=1,
                             seed=0, data=["x"], storage="int8")
    assert int8.stat().st_size < 0.62 * fp16.stat().st_size
    if arch == "mbt2018":  # the masked convolution's mask is the architecture's, not stored
        assert "context_prediction.mask" not in torch.load(int8, weights_only=True)["state_dict"]
    state, scales = pack_int8(model.state_dict(), {k for k, _ in model.named_parameters()})
    expected = unpack_int8(state, scales)
    sat, ground = load_checkpoint(int8, arch), load_checkpoint(int8, arch)
    for k, v in sat.model.named_parameters():
        assert torch.equal(v, expected[k].float()), k
    assert sat.fingerprint == ground.fingerprint != load_checkpoint(fp16, arch).fingerprint
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = sat.model.compress(x)
        again = ground.model.compress(x)
        assert out["strings"] == again["strings"]  # the entropy tables rebuilt alike on both sides
        a = sat.model.decompress(out["strings"], out["shape"])["x_hat"]
        b = ground.model.decompress(out["strings"], out["shape"])["x_hat"]
    assert torch.equal(a, b)


def test_repack_keeps_the_metadata_and_names_its_source(tmp_path):
    model = _model()
    src = export_checkpoint(model, tmp_path / "a.pt", architecture="bmshj2018-hyperprior", N=32, M=48, lmbda=0.013,
                            steps=7, seed=3, data=["eo:x"], extra={"selected_step": 7})
    dst = repack_checkpoint(src, tmp_path / "b.pt")
    payload = torch.load(dst, weights_only=True)
    source = torch.load(src, weights_only=True)
    assert payload["storage"] == "int8" and payload["selected_step"] == 7 and payload["steps"] == 7
    assert payload["repacked_from"] == {"file": "a.pt", "storage": "fp16", "tensors_sha256": source["tensors_sha256"]}
    assert load_checkpoint(dst).lmbda == 0.013


def test_a_flipped_code_or_a_missing_scale_is_refused(tmp_path):
    model = _model()
    path = export_checkpoint(model, tmp_path / "a.pt", architecture="bmshj2018-hyperprior", N=32, M=48, lmbda=0.0067,
                             steps=1, seed=0, data=["x"], storage="int8")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["g_a.0.weight"].view(-1)[0] += 1
    torch.save(payload, tmp_path / "flipped.pt")
    with pytest.raises(CodecError, match="do not match their recorded sha256"):
        load_checkpoint(tmp_path / "flipped.pt")
    payload = torch.load(path, weights_only=True)
    del payload["int8_scales"]["g_a.0.weight"]
    del payload["tensors_sha256"]
    torch.save(payload, tmp_path / "noscale.pt")
    with pytest.raises(CodecError, match="'g_a.0.weight' has codes but no scales"):
        load_checkpoint(tmp_path / "noscale.pt", allow_unverified=True)
    with pytest.raises(CodecError, match="storage must be one of fp16, int8"):
        export_checkpoint(model, tmp_path / "c.pt", architecture="bmshj2018-hyperprior", N=32, M=48, lmbda=0.0067,
                          steps=1, seed=0, data=["x"], storage="int4")

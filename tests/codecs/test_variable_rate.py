"""The variable-rate BMSHJ (dlrc_agents.codecs.variable_rate): gain units, a checkpoint for every λ, bit-exact
coding at any level in between, rate control on its level, and training one network at several λ."""

import math

import pytest
import torch
from PIL import Image

from dlrc_agents.codecs import rate
from dlrc_agents.codecs.files import SHIPPED_ARCHITECTURES, shipped_checkpoint
from dlrc_agents.codecs.registry import (ARCHITECTURES, CodecError, at_lambda, build_model, export_checkpoint,
                                         load_codec, load_checkpoint)
from dlrc_agents.codecs.train import rate_distortion_loss, train
from dlrc_agents.codecs.variable_rate import (DEFAULT_LAMBDAS, Gain, VariableRateHyperprior, lambda_of_level,
                                              level_of_lambda)
from dlrc_agents.common.data import read_rgb
from dlrc_agents.common.imaging import to_tensor
from dlrc_agents.studies.config import CodecRDScenario

from tests.conftest import eo

VR = "bmshj2018-hyperprior-vr"
SHIPPED = "dlrc_agents/codecs/weights/bmshj2018-hyperprior_lambda0.013.pt"


def test_gains_interpolate_geometrically_between_levels():
    gain = Gain(3, 2)
    with torch.no_grad():
        gain.log_gain.copy_(torch.log(torch.tensor([[1.0, 4.0], [4.0, 1.0], [9.0, 16.0]])))
    assert torch.allclose(gain.vector(0), torch.tensor([1.0, 4.0]))
    assert torch.allclose(gain.vector(0.5), torch.tensor([2.0, 2.0]))  # sqrt(1·4), sqrt(4·1)
    assert torch.allclose(gain.vector(1.5), torch.tensor([6.0, 4.0]))  # sqrt(4·9), sqrt(1·16)
    assert torch.allclose(gain.vector(2), torch.tensor([9.0, 16.0]))
    x = torch.ones(2, 2, 1, 1)
    assert torch.allclose(gain(x, torch.tensor([2, 0])).flatten(), torch.tensor([9.0, 16.0, 1.0, 4.0]))
    with pytest.raises(ValueError, match="outside"):
        gain.vector(2.01)
    with pytest.raises(ValueError, match="at least 2"):
        Gain(1, 2)


def test_levels_and_lambdas_map_linearly_in_log_lambda():
    lambdas = DEFAULT_LAMBDAS
    for i, lmbda in enumerate(lambdas):
        assert level_of_lambda(lambdas, lmbda) == pytest.approx(i)
    mid = math.sqrt(lambdas[1] * lambdas[2])  # the geometric mean of two trained λ: half-way between levels
    assert level_of_lambda(lambdas, mid) == pytest.approx(1.5)
    assert lambda_of_level(lambdas, 1.5) == pytest.approx(mid)
    assert lambda_of_level(lambdas, level_of_lambda(lambdas, 0.02)) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="outside"):
        level_of_lambda(lambdas, 0.06)
    with pytest.raises(ValueError, match="ascend"):
        level_of_lambda([0.013, 0.0067], 0.01)


def test_parameter_names_are_bmshjs_plus_the_gains_so_a_fixed_model_warm_starts_every_layer():
    fixed = build_model("bmshj2018-hyperprior", 32, 48)
    vr = build_model(VR, 32, 48)
    assert set(vr.state_dict()) - set(fixed.state_dict()) == {"gain.log_gain", "inverse_gain.log_gain"}
    assert set(fixed.state_dict()) <= set(vr.state_dict())
    assert vr.gain.log_gain.shape == (len(DEFAULT_LAMBDAS), 48)
    vr.initialise_gains(DEFAULT_LAMBDAS, 0.013)  # level of the warm start's λ: gain 1
    assert torch.allclose(vr.gain.vector(1), torch.ones(48)) and torch.allclose(vr.inverse_gain.vector(1), torch.ones(48))
    assert vr.gain.vector(3)[0].item() == pytest.approx(math.sqrt(0.0483 / 0.013), rel=1e-5)
    with pytest.raises(CodecError, match="RGB only"):
        build_model(VR, 32, 48, in_channels=4)


def test_per_image_levels_give_each_image_its_own_lambda_in_the_loss():
    torch.manual_seed(0)
    model = build_model(VR, 32, 48)
    x = torch.rand(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        both = model(x, levels=torch.tensor([0, 3]))
        model.set_level(0)
        first = model(x[:1])
        model.set_level(3)
        second = model(x[1:])
    assert torch.allclose(both["x_hat"][0], first["x_hat"][0], atol=1e-5)
    assert torch.allclose(both["x_hat"][1], second["x_hat"][0], atol=1e-5)
    lambdas = torch.tensor([0.0067, 0.0483])
    loss = rate_distortion_loss(both, x, lambdas)
    each = [rate_distortion_loss({"x_hat": both["x_hat"][i:i + 1],
                                  "likelihoods": {k: v[i:i + 1] for k, v in both["likelihoods"].items()}},
                                 x[i:i + 1], float(lambdas[i]))["loss"] for i in range(2)]
    assert loss["loss"].item() == pytest.approx((each[0].item() + each[1].item()) / 2, rel=1e-5)


@pytest.fixture(scope="module")
def warm_vr(tmp_path_factory):
    """The shipped λ 0.013 BMSHJ as a variable-rate checkpoint (gains at sqrt(λ_i / 0.013)), untrained."""
    fixed = load_checkpoint(SHIPPED, "bmshj2018-hyperprior").model
    model = build_model(VR, 128, 192)
    model.load_state_dict(fixed.state_dict(), strict=False)
    model.initialise_gains(DEFAULT_LAMBDAS, 0.013)
    model.update(force=True)
    path = tmp_path_factory.mktemp("vr") / "vr.pt"
    export_checkpoint(model, path, architecture=VR, N=128, M=192, lmbda=None, steps=0, seed=0, data=[],
                      lambdas=DEFAULT_LAMBDAS, storage="fp16")
    return path


@pytest.fixture(scope="module")
def patch():
    return to_tensor(read_rgb(eo("rgb/test/inria_bellingham1_1024.tif"))[256:512, 512:768])


def test_one_checkpoint_codes_at_any_lambda_in_its_range_and_nowhere_else(warm_vr):
    codecs = [load_codec(VR, lmbda=l, checkpoint=warm_vr) for l in (0.0067, 0.02, 0.0483)]
    assert [c.model.level for c in codecs] == pytest.approx([0, level_of_lambda(DEFAULT_LAMBDAS, 0.02), 3])
    assert len({c.fingerprint for c in codecs}) == 3  # a stream names the level it was coded at
    assert codecs[1].lambdas == DEFAULT_LAMBDAS and codecs[1].lmbda == 0.02
    with pytest.raises(CodecError, match="outside"):
        at_lambda(codecs[0], 0.1)
    with pytest.raises(CodecError, match="codes at a λ"):
        load_codec(VR, checkpoint=warm_vr)
    with pytest.raises(CodecError, match="fixed-λ"):
        at_lambda(load_checkpoint(SHIPPED), 0.013)
    assert ARCHITECTURES[VR]["family"] == "hyperprior"


def test_a_fractional_level_decodes_from_bytes_to_what_the_encoder_meant(warm_vr, patch):
    """CompressAI's compress()/decompress() at a level between 1 and 2, against the reconstruction computed
    from the encoder's own latent: ŷ = round(g_a'(x)·gain(level)) (no means: the scales do not move ŷ),
    x̂ = g_s'(ŷ·inverse_gain(level)), with g_a', g_s' the ungained transforms."""
    code = rate.level_code(1.37, 4)
    level = rate.level_of(code, 4)  # the level a rate-controlled stream can name
    codec = load_codec(VR, lmbda=lambda_of_level(DEFAULT_LAMBDAS, level), checkpoint=warm_vr)
    model = codec.model
    model.set_level(level)
    with torch.no_grad():
        enc = model.compress(patch)
        dec = model.decompress(enc["strings"], enc["shape"])["x_hat"]
        y = torch.nn.Sequential.forward(model.g_a, patch) * model.gain.vector(level).reshape(1, -1, 1, 1)
        y_hat = torch.round(y) * model.inverse_gain.vector(level).reshape(1, -1, 1, 1)
        expected = torch.nn.Sequential.forward(model.g_s, y_hat).clamp(0, 1)
    assert torch.equal(dec, expected)
    # rate control's own coder at that level (step 1) writes CompressAI's bytes and decodes identically
    coded = rate.code_at_step(codec, rate.analyse(codec, patch, code), rate.step_code(1.0), 0, 256 * 256, code)
    assert coded.y_string == enc["strings"][0][0] and coded.z_string == enc["strings"][1][0]
    assert torch.equal(rate.decode(codec, coded), expected)


def test_rate_control_hits_every_target_on_the_level_and_counts_four_side_bytes(warm_vr, patch):
    codec = load_codec(VR, lmbda=0.013, checkpoint=warm_vr)
    rates = [rate.code_at_step(codec, rate.analyse(codec, patch, c), rate.STEP_OFFSET, 0, 256 * 256, c).bpp
             for c in (0, 20000, 40000, rate.LEVEL_CODES)]
    assert rates == sorted(rates) and rates[-1] > 1.5 * rates[0]  # rate rises with the level
    psnrs = []
    for target in (0.1, 0.25, 0.5, 1.0):
        coded = rate.code_at_rate([codec], patch, target)
        assert abs(coded.bpp / target - 1) <= 0.02, (target, coded.bpp)
        assert coded.bpp == pytest.approx(8 * (len(coded.y_string) + len(coded.z_string) + 4) / (256 * 256))
        assert coded.level_code is not None
        x_hat = rate.decode(codec, coded)
        psnrs.append(-10 * math.log10(torch.mean((x_hat - patch) ** 2).item()))
    assert psnrs == sorted(psnrs)
    with pytest.raises(ValueError, match="variable-rate stream"):
        rate.decode(load_checkpoint(SHIPPED), coded)


def test_dlrc_codes_overlapping_patches_at_a_fractional_level_and_the_ground_decodes_them_exactly(warm_vr):
    from dlrc_agents.dlrc.bitstream import split_container
    from dlrc_agents.dlrc.onboard import DLRCConfig, encode_group
    from dlrc_agents.dlrc.reconstructor import reconstruct

    codec = load_codec(VR, lmbda=0.02, checkpoint=warm_vr)
    scene = to_tensor(read_rgb(eo("rgb/test/inria_bellingham1_1024.tif"))[:192, :192])
    images = {s: scene[..., y:y + 128, x:x + 128] for s, (y, x) in enumerate([(0, 0), (0, 32), (32, 16)])}
    group = encode_group(codec, images, DLRCConfig(map_transport="references"))
    streams = list(group.streams.values())
    assert split_container(streams[0]).fields["architecture"] == 8  # bmshj2018-hyperprior-vr's code, appended to the format's list
    out = reconstruct(codec, streams)
    for s in images:
        assert torch.equal(out[s]["y_tilde"], group.intended[s])
    assert len(group.arbitration.retained[2]) < 8 * 8  # the third satellite drops shared ground


def test_a_codec_rd_scenario_names_the_variable_rate_checkpoint_with_rate_targets(warm_vr):
    sc = CodecRDScenario.model_validate({"name": "vr", "kind": "codec_rd", "models": [
        {"architecture": VR, "checkpoint": str(warm_vr), "lambdas": [0.0067, 0.02], "target_bpp": [0.25]}]})
    assert sc.models[0].model_lambdas == [0.0067, 0.02]


def test_training_one_network_at_every_lambda_resumes_and_exports_a_variable_rate_checkpoint(tmp_path):
    val = tmp_path / "val.png"
    Image.fromarray(read_rgb(eo("rgb/test/pdok_nl_test_tiled.tif"))[:128, :128]).save(val)
    kwargs = dict(batch_size=2, crop=64, lr=1e-4, channels=(128, 192), data=[eo("rgb/train/neon_SOAP_031.png")],
                  val=[str(val)], checkpoint_every=1, threads=1, export=tmp_path / "vr.pt", progress=False,
                  init=SHIPPED, lambdas=[0.0067, 0.0483])
    train(VR, None, tmp_path / "run", steps=1, **kwargs)
    path = train(VR, None, tmp_path / "run", steps=2, **kwargs)
    rows = [line.split(",") for line in (tmp_path / "run" / "val_levels.csv").read_text().splitlines()]
    assert [(r[0], r[1]) for r in rows] == [("1", "0.0067"), ("1", "0.0483"), ("2", "0.0067"), ("2", "0.0483")]
    assert float(rows[0][3]) < float(rows[1][3])  # the low-λ level codes at the lower rate
    payload = torch.load(path, weights_only=True)
    assert payload["lambdas"] == [0.0067, 0.0483] and payload["lambda"] is None
    codec = load_codec(VR, lmbda=0.02, checkpoint=path)
    assert isinstance(codec.model, VariableRateHyperprior) and codec.model.levels == 2
    with pytest.raises(ValueError, match="belongs to"):
        train(VR, None, tmp_path / "run", steps=3, **{**kwargs, "lambdas": [0.0067, 0.013]})
    with pytest.raises(ValueError, match="fixed-λ"):
        train("bmshj2018-hyperprior", 0.013, tmp_path / "other", steps=1, **kwargs)


def test_the_torch_free_list_of_variable_rate_architectures_is_the_registrys():
    from dlrc_agents.codecs.registry import is_variable_rate
    from dlrc_agents.common.config import HYPERPRIOR_ARCHITECTURES, VARIABLE_RATE_ARCHITECTURES

    assert set(VARIABLE_RATE_ARCHITECTURES) == {a for a in ARCHITECTURES if is_variable_rate(a)}
    assert set(VARIABLE_RATE_ARCHITECTURES) <= set(HYPERPRIOR_ARCHITECTURES)
    assert set(SHIPPED_ARCHITECTURES) == {a for a, spec in ARCHITECTURES.items() if spec["shipped"]}


def test_missing_variable_rate_weights_say_how_to_train_one_file(monkeypatch, tmp_path):
    from dlrc_agents.codecs import files

    monkeypatch.setenv("EDGESPACECOM_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(files, "WEIGHTS_DIR", tmp_path / "no-shipped-weights")
    assert not shipped_checkpoint(VR, 0.013).is_file()
    with pytest.raises(CodecError, match=f"train --arch {VR} --export .*{VR}.pt"):
        load_codec(VR, lmbda=0.013)

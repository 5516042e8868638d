"""Rate control of the hyperprior codecs (dlrc_agents.codecs.rate): a quantisation step on the latent and
the λ ladder bring a stream to a requested rate, decoded from its strings alone."""

import math

import numpy as np
import pytest
import torch
import yaml

from dlrc_agents.codecs import rate
from dlrc_agents.codecs.registry import build_model, codec_from_model, load_codecs
from dlrc_agents.common.config import CodecConfig
from dlrc_agents.common.data import read_rgb
from dlrc_agents.common.imaging import quality, to_tensor
from edgespacecom.cli import main

from tests.conftest import eo


@pytest.fixture(scope="module")
def ladder():
    return load_codecs(CodecConfig())  # the shipped BMSHJ λ ladder


@pytest.fixture(scope="module")
def patch():
    return to_tensor(read_rgb(eo("rgb/test/inria_bellingham1_1024.tif"))[256:512, 512:768])


@pytest.mark.parametrize("arch,N,M", [("bmshj2018-hyperprior", 32, 48), ("mbt2018-mean", 32, 48)])
def test_step_one_is_compressais_own_compress(arch, N, M, patch):
    torch.manual_seed(0)
    model = build_model(arch, N, M)
    model.update(force=True)
    codec = codec_from_model(model, arch, N, M)
    coded = rate.code_at_step(codec, rate.analyse(codec, patch), rate.step_code(1.0), 0, 256 * 256)
    ref = model.compress(patch)
    assert coded.y_string == ref["strings"][0][0] and coded.z_string == ref["strings"][1][0]
    assert torch.equal(rate.decode(codec, coded), model.decompress(ref["strings"], ref["shape"])["x_hat"].clamp(0, 1))


def test_a_step_decodes_to_what_the_encoder_meant(ladder, patch):
    """From the strings and the step code alone the decoder rebuilds ŷ = s·round((y − μ)/s) + μ, computed
    here from the encoder's own latent."""
    codec = ladder[0]
    code = rate.step_code(2.5)
    s = rate.step_of(code)
    assert abs(s - 2.5) / 2.5 < 1e-3 and rate.step_code(s) == code
    y, z_string, z_shape, scales, means = rate.analyse(codec, patch)
    coded = rate.code_at_step(codec, (y, z_string, z_shape, scales, means), code, 0, 256 * 256)
    mu = 0.0 if means is None else means
    expected = codec.model.g_s(s * torch.round((y - mu) / s) + mu).clamp(0, 1)
    assert torch.equal(rate.decode(codec, coded), expected)


def test_targets_are_hit_within_two_percent_and_quality_follows_rate(ladder, patch):
    results = []
    for target in (0.1, 0.25, 0.5, 1.0):
        coded = rate.code_at_rate(ladder, patch, target)
        assert abs(coded.bpp / target - 1) <= 0.02, (target, coded.bpp)
        # every byte: y and z strings and the 3 bytes of step code and model index
        assert coded.bpp == pytest.approx(8 * (len(coded.y_string) + len(coded.z_string) + 3) / (256 * 256))
        codec = sorted(ladder, key=lambda c: c.lmbda)[coded.ladder_index]
        results.append(quality(patch, rate.decode(codec, coded))[0])
    assert results == sorted(results) and results[-1] - results[0] > 5  # 10× the rate: far better quality


def test_a_target_out_of_reach_is_refused(ladder, patch):
    with pytest.raises(ValueError, match="target_bpp 0.0001"):
        rate.code_at_rate(ladder, patch, 1e-4)


def test_rate_control_in_the_codec_rd_kind(tmp_path, capsys):
    img = read_rgb(eo("rgb/test/inria_bellingham1_1024.tif"))[:256, :256]
    from PIL import Image

    Image.fromarray(img).save(tmp_path / "scene.png")
    sc = {"name": "rc", "kind": "codec_rd",
          "models": [{"architecture": "bmshj2018-hyperprior", "lambdas": [0.0067, 0.0483], "target_bpp": [0.3, 0.8]}],
          "data": {"scenes": [str(tmp_path / "scene.png")]}, "jpeg": {"qualities": [30, 70]},
          "jpeg2000": {"enabled": False}}
    (tmp_path / "rc.yaml").write_text(yaml.safe_dump(sc))
    assert main(["run", str(tmp_path / "rc.yaml"), "--out", str(tmp_path / "out")]) == 0
    import json

    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["rate_control"]["within_tolerance"] is True
    assert [r["target_bpp"] for r in s["rate_control"]["rows"]] == [0.3, 0.8]
    assert all(abs(r["rate_error"]) <= 0.02 and math.isfinite(r["psnr"]) for r in s["rate_control"]["rows"])
    assert "Rate control" in capsys.readouterr().out
    sc["models"][0]["architecture"] = "mbt2018"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(sc))
    assert main(["validate", str(tmp_path / "bad.yaml")]) == 2
    assert "target_bpp" in capsys.readouterr().err

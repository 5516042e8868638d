"""DLRC on context-model codecs (mbt2018, cheng2020-anchor/-attn, ELIC): copies enter the
context identically on board and on the ground, so the decoded ỹ is bit-exact.

Randomly initialised models (after update()), small widths so the tests run in seconds.
"""

import numpy as np
import pytest
import torch

from dlrc_agents.codecs.registry import build_model, codec_from_model, family
from dlrc_agents.dlrc.bitstream import BitstreamError, SatelliteBitstream
from dlrc_agents.dlrc.context import (FillPlan, check_plan, context_code, decode_order, decode_rank, decode_side,
                                      hyper_side, identity_plan)
from dlrc_agents.dlrc.onboard import DLRCConfig, encode_group
from dlrc_agents.dlrc.reconstructor import reconstruct
from dlrc_agents.dlrc.selector import select

from tests.conftest import crops, eo

#: (architecture, N, M): small widths; ELIC needs M > 128 for its default channel groups
SMALL = {
    "mbt2018": (32, 48),
    "cheng2020-anchor": (32, 32),
    "cheng2020-attn": (32, 32),
    "elic2022-official": (32, 160),
    "elic2022-chandelier": (32, 160),
}


def small_codec(arch, seed=1):
    torch.manual_seed(seed)
    N, M = SMALL[arch]
    return codec_from_model(build_model(arch, N, M), arch, N, M)


@pytest.fixture(scope="module", params=list(SMALL))
def codec(request):
    return small_codec(request.param)


# ------------------------------------------------------------ decoding order


def test_decoding_orders():
    np.testing.assert_array_equal(decode_order("autoregressive", 3, 4), np.arange(12))
    order = decode_order("checkerboard", 3, 4)
    h, w = order // 4, order % 4
    anchors = (h + w) % 2 == 0
    assert anchors[:6].all() and not anchors[6:].any()  # anchors first, then non-anchors
    assert sorted(order.tolist()) == list(range(12))
    rank = decode_rank("checkerboard", 3, 4)
    np.testing.assert_array_equal(order[rank], np.arange(12))


def test_selector_representative_is_decoded_first_under_checkerboard():
    # positions 1 (non-anchor) and 2 (anchor) of a 1×4 latent share a signature
    sig = np.array([7, 5, 5, 9], dtype=np.uint64)
    raster = select(sig)
    assert raster.representative.tolist() == [0, 1, 1, 3]
    cb = select(sig, decode_order("checkerboard", 1, 4))
    assert cb.representative.tolist() == [0, 2, 2, 3]  # the anchor represents, the non-anchor copies it
    assert cb.unique_positions.tolist() == [0, 2, 3]  # in decoding order: anchors 0, 2, then 3


def test_plan_check_refuses_forward_copies():
    ok = FillPlan(np.array([0, 0, 2, 2]), None)
    check_plan(ok, "autoregressive", 2, 2)
    with pytest.raises(ValueError, match="not coded before"):
        check_plan(FillPlan(np.array([1, 1, 2, 3]), None), "autoregressive", 2, 2)  # 0 copies later 1
    # checkerboard 1×4: anchors 0, 2; non-anchors 1, 3. An anchor may not copy a non-anchor.
    check_plan(FillPlan(np.array([0, 0, 2, 2]), None), "checkerboard", 1, 4)
    with pytest.raises(ValueError, match="not coded before"):
        check_plan(FillPlan(np.array([0, 1, 1, 3]), None), "checkerboard", 1, 4)


# ------------------------------------------------------------- the coding walk


def test_identity_walk_is_the_codec_itself(codec, scene):
    """With nothing pruned, the walk decodes the same ŷ as CompressAI's own decompress
    (and, for the autoregressive family, writes the very same bytes)."""
    x = crops(scene, [(0, 0)], size=128)[0]
    with torch.no_grad():
        y = codec.model.g_a(x)
        lat = hyper_side(codec.model, codec.family, y)
        _, _, H, W = y.shape
        y_string, y_tilde = context_code(codec.model, codec.family, lat.side, identity_plan(H, W), y=y)
        side = decode_side(codec.model, codec.family, lat.z_strings, lat.z_shape)
        _, y_dec = context_code(codec.model, codec.family, side, identity_plan(H, W), y_string=y_string)
        ref = codec.model.compress(x)
        x_ref = codec.model.decompress(ref["strings"], ref["shape"])["x_hat"]
    assert torch.equal(y_tilde, y_dec)
    assert torch.equal(codec.model.g_s(y_dec).clamp(0, 1), x_ref.clamp(0, 1))
    if codec.family == "autoregressive":
        assert y_string == ref["strings"][0][0]


# ------------------------------------------------------------- whole groups

#: overlapping 128² crops at 16-px multiples (whole latent shifts) plus one twin of
#: satellite 0: every position of the twin, borders included, is a duplicate of satellite 0
OFFSETS = [(0, 0), (32, 48), (64, 16), (0, 0), (96, 96)]


@pytest.mark.parametrize("strategy,rotation", [("original", "dense"), ("mean", "dense"), ("original", "hadamard")])
@pytest.mark.parametrize("priority", [None, {4: 0, 2: 1, 0: 2, 3: 3, 1: 4}])
@pytest.mark.parametrize("transport", ["joint", "references"])
def test_ground_decodes_exactly_what_satellites_intended(codec, scene, strategy, rotation, priority, transport):
    images = crops(scene, OFFSETS, size=128)
    cfg = DLRCConfig(rounds=8, seed=11, representative=strategy, priority=priority, map_transport=transport,
                     rotation=rotation)
    group = encode_group(codec, images, cfg)
    arb = group.arbitration
    total_positions = sum(a.size for a in arb.assignment.values())
    assert arb.total < 0.8 * total_positions  # overlap really removed vectors
    decoded = reconstruct(codec, list(group.streams.values())[::-1])  # arrival order does not matter
    for sat in images:
        assert torch.equal(decoded[sat]["y_tilde"], group.intended[sat]), sat
        assert torch.equal(decoded[sat]["x_hat"], codec.model.g_s(group.intended[sat][None]).clamp(0, 1))
    # the twin of satellite 0 (lower priority than 0 unless reordered) codes nothing of its own
    # when 0 is decoded first, and copies every position, borders included
    first, second = sorted([0, 3], key=arb.order.index)
    assert len(arb.retained[second]) == 0
    assert torch.equal(decoded[second]["y_tilde"], decoded[first]["y_tilde"])
    # within a satellite, copies point backwards in the decoding order
    rank = decode_rank(codec.family, *group.intended[0].shape[1:])
    for sat in images:
        st = SatelliteBitstream.from_bytes(group.streams[sat])
        assert st.retained == len(arb.retained[sat])
    for sat in images:
        a = arb.assignment[sat]
        own = (a >= arb.offsets[sat]) & (a < arb.offsets[sat] + len(arb.retained[sat]))
        reps = arb.retained[sat][a[own] - arb.offsets[sat]]
        assert np.all(rank[reps] <= rank[np.nonzero(own)[0]])


@pytest.mark.parametrize("transport", ["joint", "references"])
def test_prediction_fill_decodes_exactly_without_any_exchange(codec, scene, transport):
    """context_fill='prediction': foreign copies put the model's own μ into the context, so no
    satellite needs another's ŷ on board; the ground still copies the representatives into ỹ."""
    images = crops(scene, OFFSETS, size=128)
    rep = encode_group(codec, images, DLRCConfig(rounds=8, seed=11, map_transport=transport))
    pred = encode_group(codec, images, DLRCConfig(rounds=8, seed=11, map_transport=transport,
                                                  context_fill="prediction"))
    assert all(v == 0 for v in pred.exchange_bytes.values())
    assert sum(rep.exchange_bytes.values()) > 0  # the representative fill needs the vectors on board
    decoded = reconstruct(codec, list(pred.streams.values())[::-1])
    for sat in images:
        assert SatelliteBitstream.from_bytes(pred.streams[sat]).context_fill == "prediction"
        assert torch.equal(decoded[sat]["y_tilde"], pred.intended[sat]), sat
    # the top-priority satellite copies nobody, so both fills give it the same y string
    top = pred.arbitration.order[0]
    assert SatelliteBitstream.from_bytes(pred.streams[top]).y_string == SatelliteBitstream.from_bytes(rep.streams[top]).y_string
    assert torch.equal(decoded[top]["y_tilde"], rep.intended[top])
    # copied positions hold the representatives' ŷ in both worlds
    first, second = sorted([0, 3], key=pred.arbitration.order.index)
    assert torch.equal(decoded[second]["y_tilde"], decoded[first]["y_tilde"])


def test_group_without_overlap_codes_like_the_codec(codec, scene):
    images = crops(scene, [(0, 0), (512, 512)], size=128)
    group = encode_group(codec, images, DLRCConfig(rounds=20))
    decoded = reconstruct(codec, list(group.streams.values()))
    for sat in images:
        assert torch.equal(decoded[sat]["y_tilde"], group.intended[sat])


def test_context_streams_refuse_tampering(scene):
    codec = small_codec("mbt2018")
    group = encode_group(codec, crops(scene, OFFSETS[:3], size=128), DLRCConfig(rounds=8))
    good = list(group.streams.values())
    bad = bytearray(good[1])
    bad[len(bad) // 2] ^= 0x10
    with pytest.raises(BitstreamError, match="checksum"):
        reconstruct(codec, [good[0], bytes(bad), good[2]])
    other = small_codec("mbt2018", seed=5)
    with pytest.raises(BitstreamError, match="another model"):
        reconstruct(other, good)
    with pytest.raises(BitstreamError):
        reconstruct(codec, good[1:])  # the top-priority stream (and its joint map) is missing


def test_decoding_does_not_depend_on_thread_count(scene):
    codec = small_codec("elic2022-official")
    group = encode_group(codec, crops(scene, OFFSETS[:3], size=128), DLRCConfig(rounds=8))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = reconstruct(codec, list(group.streams.values()), synthesize=False)
        torch.set_num_threads(1)
        b = reconstruct(codec, list(group.streams.values()), synthesize=False)
    finally:
        torch.set_num_threads(threads)
    for sat in a:
        assert torch.equal(a[sat]["y_tilde"], b[sat]["y_tilde"])
        assert torch.equal(a[sat]["y_tilde"], group.intended[sat])


def test_families():
    assert family("mbt2018") == family("cheng2020-attn") == "autoregressive"
    assert family("elic2022-official") == "checkerboard"
    assert family("bmshj2018-hyperprior") == "hyperprior"


# ------------------------------------------------------------ configuration


def test_scenarios_accept_context_codecs_and_missions_refuse_them():
    import yaml

    from edgespacecom.config import ScenarioError, load_scenario, validate_scenario

    for name in ("rd_mbt2018", "rd_cheng2020", "rd_elic"):
        sc = load_scenario(f"scenarios/{name}.yaml")
        assert family(sc.codec.architecture) in ("autoregressive", "checkerboard")
    with open("scenarios/quickstart.yaml") as fh:
        raw = yaml.safe_load(fh)
    raw["codec"]["architecture"] = "mbt2018"
    with pytest.raises(ScenarioError, match="dlrc.context_fill.*context model"):
        validate_scenario(raw)


def test_missing_unshipped_weights_say_how_to_train(tmp_path, monkeypatch):
    from dlrc_agents.codecs.registry import CodecError, load_codec

    monkeypatch.setenv("EDGESPACECOM_WEIGHTS", str(tmp_path))
    with pytest.raises(CodecError, match="cheng2020-attn is not shipped|architecture is not shipped; train it with "
                                         "`edgespacecom train --arch cheng2020-attn"):
        load_codec("cheng2020-attn", lmbda=0.0067)
    with pytest.raises(CodecError, match="re-made by `make models-context`; train this one with `edgespacecom train "
                                         "--arch elic2022-official --lambda 0.013"):
        load_codec("elic2022-official", lmbda=0.013)
    with pytest.raises(CodecError, match="no pretrained weights for elic2022-official"):
        load_codec("elic2022-official", pretrained=True)


@pytest.mark.parametrize("arch", ["mbt2018", "elic2022-official"])
def test_rd_scenario_runs_on_a_context_codec_checkpoint(tmp_path, arch):
    """The rd kind end to end (CLI, baseline through CompressAI, DLRC, summary) on a checkpoint file."""
    import json
    from pathlib import Path

    from dlrc_agents.codecs.registry import export_checkpoint
    from edgespacecom.cli import main

    codec = small_codec(arch)
    N, M = SMALL[arch]
    ckpt = export_checkpoint(codec.model, tmp_path / "m.pt", architecture=arch, N=N, M=M, lmbda=0.0067, steps=0,
                             seed=0, data=[])
    out = tmp_path / "rd"
    scene = str(eo("rgb/test/inria_bellingham9_1024.tif"))
    root = Path(__file__).resolve().parents[2]
    code = main(["run", str(root / "scenarios" / "rd_mbt2018.yaml"), "--out", str(out),
                 "--set", f"codec.architecture={arch}", "--set", f"codec.checkpoint={ckpt}",
                 "--set", f"data.scenes=[{scene}]", "--set", "overlap.satellites=3", "--set", "overlap.draws=1",
                 "--set", "overlap.patch=128", "--set", "overlap.o_exp=[2.0]"])
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["model"] == arch and len(s["results"]) == 1
    r = s["results"][0]
    assert r["decode_exact"] is True and r["baseline"]["bpp_total"] > 0 and r["dlrc"]["bpp_total"] > 0
    assert r["exchange_bytes_per_satellite"] >= 0

"""The mission kind: SimPy agents with real DLRC, ground decoding, and G_down simulated vs analytic."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from dlrc_agents.codecs.registry import build_model, export_checkpoint
from edgespacecom.cli import main

from tests.conftest import eo

ROOT = Path(__file__).resolve().parents[2]
SCENE = str(eo("rgb/test/inria_bellingham1_1024.tif"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(4)
    m = build_model("bmshj2018-hyperprior", 32, 48)
    m.update(force=True)
    return export_checkpoint(m, tmp_path_factory.mktemp("ck") / "m.pt", architecture="bmshj2018-hyperprior", N=32,
                             M=48, lmbda=0.0067, steps=0, seed=0, data=[])


def _scenario(tmp_path, ckpt, **over) -> Path:
    sc = {
        "name": "m", "kind": "mission", "seed": 0,
        "constellation": {"walker": {"inclination_deg": 53.0, "total": 60, "planes": 6, "phasing": 1,
                                     "altitude_km": 550.0}},
        "time": {"start": "2026-01-01T00:00:00Z", "duration_h": 2, "step_s": 60},
        "participants": {"count": 3},
        "isl": {"d_max_km": 6000},  # a sparse test constellation: in-plane neighbours are 4300 km apart
        "codec": {"architecture": "bmshj2018-hyperprior", "checkpoint": str(ckpt)} if ckpt else None,
        "data": {"scenes": [SCENE]},
        "overlap": {"satellites": 3, "patch": 128, "o_exp": [2.0]},
        "mission": {"rounds": 2, "interval_s": 20, "compute": {"profile": "titan_v"}},
        "ground": {"downlink": {"windows_per_day": 12, "window_s": 300}, "rate_bps": 1e6},
    }
    sc = {k: v for k, v in sc.items() if v is not None}
    for key, value in over.items():
        node = sc
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(sc))
    return path


def _run(tmp_path, ckpt, **over) -> dict:
    out = tmp_path / "out"
    assert main(["run", str(_scenario(tmp_path, ckpt, **over)), "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text())


def test_rounds_mission_decodes_exactly_on_the_ground(tmp_path, checkpoint):
    s = _run(tmp_path, checkpoint)
    assert s["kind"] == "mission" and s["rounds_simulated"] == 2
    assert s["decode_exact"] is True
    assert s["rounds_decoded_on_ground"] == {"baseline": 2, "dlrc": 2}
    assert s["retained_fraction"] < 0.8  # o_exp = 2: overlapping vectors are coded once
    assert s["peer_timeouts"] == 0 and 0 < s["sync_round_s"]["mean"] < 1.0
    for key in ("g_down_analytic", "g_down_simulated", "psnr_baseline", "psnr_dlrc", "delivered_bits", "compute_model"):
        assert key in s
    assert s["compute_model"]["profile"] == "titan_v"
    # 128² patches at the paper's 256² times scaled by pixel count: 24.68 ms / 4
    assert s["time_per_patch_s"]["baseline"] == pytest.approx(24.68e-3 / 4)
    for name in ("mission_rounds.csv", "ground_rounds.csv", "backlog.csv", "sync_rounds.csv", "backlog.png",
                 "sync_rounds.png", "gdown.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_peer_timeout_leaves_rounds_decodable(tmp_path, checkpoint):
    """Every satellite gives up on its peers at once: each codes alone, and the ground still decodes."""
    s = _run(tmp_path, checkpoint, **{"mission.peer_timeout_s": 1e-9})
    assert s["peer_timeouts"] == 2 * 3
    assert s["decode_exact"] is True and s["rounds_decoded_on_ground"]["dlrc"] == 2
    (tmp_path / "x").mkdir()
    full = _run(tmp_path / "x", checkpoint)
    assert s["retained_fraction"] > full["retained_fraction"]  # without peers only in-image duplicates go


SHIPPED = {"codec": {"architecture": "bmshj2018-hyperprior", "lambdas": [0.0067]}}  # trained: unequal load
TWO_DAYS = {"time.duration_h": 48, "time.step_s": 600, "mission.capture": "continuous", "mission.rounds": 1,
            "mission.batch": 4000, "ground.downlink.windows_per_day": 4, "ground.downlink.window_s": 600}


@pytest.mark.slow
@pytest.mark.parametrize("rate_bps, regime", [(1e6, "D:downlink B:downlink"), (1e12, "D:compute B:compute"),
                                              (1e7, "D:compute B:downlink")])
def test_simulated_g_down_matches_the_formula(tmp_path, rate_bps, regime):
    """Two days of continuous production with the shipped model (fixed priority: the satellites carry
    unequal bpp); the last day's decodable volume against the bottleneck model, in each regime."""
    s = _run(tmp_path, None, **SHIPPED, **TWO_DAYS, **{"ground.rate_bps": rate_bps})
    assert s["g_down_regime"] == regime
    assert "g_down_analytic_paper" in s and len(s["per_satellite"]["bpp_dlrc"]) == 3
    bpp = s["per_satellite"]["bpp_dlrc"]
    assert max(bpp) > 1.2 * min(bpp)  # fixed priority: the satellites are unequally loaded
    # what the ground can decode, simulated, against the bottleneck model
    ratio_sim, ratio_formula = 1 + s["g_down_simulated"], 1 + s["g_down_analytic"]
    assert ratio_sim == pytest.approx(ratio_formula, rel=0.05), (s["g_down_simulated"], s["g_down_analytic"])
    for world in ("baseline", "dlrc"):
        lat = s["latency_s"][world]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["max"]


@pytest.mark.slow
def test_balanced_priorities_reach_the_ideal_where_the_downlink_limits(tmp_path):
    """Fixed priority loads the top satellite; what it keeps paces every patch that copies from it, so
    counting delivered bits overstates the gain. Rotating or backlog-driven priority spreads the load
    and brings the decodable gain to the balanced ideal (the mean-bpp ratio)."""
    runs = {}
    for policy in ("fixed", "rotate", "backlog"):
        (tmp_path / policy).mkdir()
        runs[policy] = _run(tmp_path / policy, None, **SHIPPED, **TWO_DAYS,
                            **{"ground.rate_bps": 1e6, "dlrc.priority": policy})
        assert runs[policy]["g_down_regime"] == "D:downlink B:downlink" and runs[policy]["priority"] == policy
    fixed = runs["fixed"]
    # baseline: at most the patches in flight at the end; DLRC: streams waiting for the top satellite
    assert fixed["undecodable_bits"]["dlrc"] > 1000 * fixed["undecodable_bits"]["baseline"]
    assert fixed["g_down_simulated"] < fixed["g_down_delivered"] - 0.05
    spread = lambda s: max(s["per_satellite"]["bpp_dlrc"]) / min(s["per_satellite"]["bpp_dlrc"])  # noqa: E731
    for policy in ("rotate", "backlog"):
        s = runs[policy]
        assert 1 + s["g_down_simulated"] == pytest.approx(1 + s["g_down_balanced_ideal"], rel=0.10), policy
        assert 1 + s["g_down_simulated"] == pytest.approx(1 + s["g_down_analytic"], rel=0.05), policy
        assert spread(s) < spread(fixed) and s["g_down_simulated"] > fixed["g_down_simulated"]


@pytest.mark.parametrize("policy", ["rotate", "backlog"])
def test_every_priority_policy_decodes_exactly(tmp_path, checkpoint, policy):
    """The satellites agree on the order from what the exchange carried; the ground decodes every stream."""
    import pandas as pd

    s = _run(tmp_path, checkpoint, **{"dlrc.priority": policy, "mission.rounds": 3})
    assert s["decode_exact"] is True and s["rounds_decoded_on_ground"] == {"baseline": 3, "dlrc": 3}
    rows = pd.read_csv(tmp_path / "out" / "mission_rounds.csv")
    top = rows[(rows["world"] == "dlrc") & (rows["priority_rank"] == 0)].sort_values("round")
    assert len(top) == 3  # one top satellite a round, agreed by all
    if policy == "rotate":
        assert list(top["slot"]) == [0, 1, 2]
    items = pd.read_csv(tmp_path / "out" / "decodable_items.csv")
    assert len(items) == 2 * 3 * 3 and (items["patches_decodable"] == 1).all()  # 2 worlds, 3 slots, 3 rounds
    assert s["undecodable_bits"] == {"baseline": 0.0, "dlrc": 0.0}


def test_priority_policies_are_for_missions(tmp_path, capsys):
    rd = str(ROOT / "scenarios" / "rd_bmshj2018.yaml")
    assert main(["validate", rd, "--set", "dlrc.priority=rotate"]) == 2
    assert "dlrc.priority" in capsys.readouterr().err


def test_mission_validation_names_the_field(tmp_path, checkpoint, capsys):
    path = _scenario(tmp_path, checkpoint, **{"overlap.satellites": 4})
    assert main(["validate", str(path)]) == 2
    assert "overlap.satellites (4) must equal participants.count (3)" in capsys.readouterr().err
    path = _scenario(tmp_path, checkpoint, **{"dlrc": {"map_transport": "joint"}})
    assert main(["validate", str(path)]) == 2
    assert "a mission needs 'references'" in capsys.readouterr().err


def _sweep_file(tmp_path, ckpt) -> Path:
    path = _scenario(tmp_path, ckpt, **{"mission.rounds": 1})
    raw = yaml.safe_load(path.read_text())
    raw["sweep"] = {"grid": {"ground.rate_bps": [1e3, 1e6], "ground.downlink.windows_per_day": [6]}}
    path.write_text(yaml.safe_dump(raw))
    return path


def test_sweep_runs_in_parallel_resumes_and_matches_dask(tmp_path, checkpoint, capsys):
    import shutil

    import pandas as pd

    weights = Path(shutil.copy(checkpoint, tmp_path / "weights.pt"))
    path = _sweep_file(tmp_path, weights)
    assert main(["validate", str(path)]) == 0
    assert "sweep: 2 points, all valid" in capsys.readouterr().out
    local = tmp_path / "local"
    assert main(["run", str(path), "--out", str(local), "--workers", "2"]) == 0
    table = pd.read_csv(local / "sweep.csv")
    assert len(table) == 2 and list(table["ground.rate_bps"]) == [1e3, 1e6]
    assert (table["decode_exact"]).all()
    assert (local / "sweep.png").stat().st_size > 0
    # resume: a finished point is not run again
    first = sorted((local / "points").iterdir())[0]
    (first / "summary.json").unlink()
    assert main(["run", str(path), "--out", str(local)]) == 0
    assert json.loads((local / "summary.json").read_text())["resumed"] == 1
    assert pd.read_csv(local / "sweep.csv").equals(table)
    # the same sweep on a local Dask cluster gives the same table
    dask = tmp_path / "dask"
    assert main(["run", str(path), "--out", str(dask), "--executor", "dask", "--workers", "2"]) == 0
    assert (dask / "sweep.csv").read_bytes() == (local / "sweep.csv").read_bytes()
    # re-trained weights at the same path: no finished point is reused
    torch.manual_seed(5)
    m = build_model("bmshj2018-hyperprior", 32, 48)
    m.update(force=True)
    export_checkpoint(m, weights, architecture="bmshj2018-hyperprior", N=32, M=48, lmbda=0.0067, steps=1, seed=0,
                      data=[])
    assert main(["run", str(path), "--out", str(local), "--workers", "2"]) == 0
    assert json.loads((local / "summary.json").read_text())["resumed"] == 0


def test_a_bad_sweep_point_is_named_before_any_run(tmp_path, checkpoint, capsys):
    path = _sweep_file(tmp_path, checkpoint)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["grid"]["ground.rate_bps"] = [1e6, -5]
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "ground.rate_bps=-5]: invalid scenario" in err and "ground.rate_bps: Input should be greater than 0" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("arch,N,M", [("mbt2018", 32, 48), ("elic2022-official", 32, 160)])
def test_context_codec_missions_fly_with_the_prediction_fill(tmp_path, arch, N, M):
    """A context model flies with context_fill 'prediction' (no peer ŷ on board); with peer timeouts
    each satellite codes for its own view and the ground still decodes every stream exactly."""
    torch.manual_seed(6)
    m = build_model(arch, N, M)
    m.update(force=True)
    ckpt = export_checkpoint(m, tmp_path / "ctx.pt", architecture=arch, N=N, M=M, lmbda=0.0067, steps=0, seed=0,
                             data=[])
    over = {"codec.architecture": arch, "dlrc.context_fill": "prediction", "dlrc.map_transport": "references",
            "mission.compute.profile": "measured"}
    s = _run(tmp_path, ckpt, **over)
    assert s["decode_exact"] is True and s["rounds_decoded_on_ground"] == {"baseline": 2, "dlrc": 2}
    assert s["retained_fraction"] < 0.8
    s = _run(tmp_path, ckpt, **over, **{"mission.peer_timeout_s": 1e-9})
    # measured on-board times: a satellite whose own front stages took longer than a peer's header took
    # to arrive has it already and does not time out, so how many of the 2 × 3 waits time out depends
    # on the machine's load; some always do, and every stream still decodes exactly
    assert 0 < s["peer_timeouts"] <= 2 * 3 and s["decode_exact"] is True


def test_context_codec_missions_need_the_prediction_fill(tmp_path, checkpoint, capsys):
    path = _scenario(tmp_path, checkpoint, **{"codec.architecture": "mbt2018"})
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "dlrc.context_fill" in capsys.readouterr().err
    path = _scenario(tmp_path, checkpoint, **{"codec.architecture": "mbt2018", "dlrc.context_fill": "prediction",
                                              "dlrc.map_transport": "references"})
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "mission.compute.profile" in capsys.readouterr().err


@pytest.mark.slow
def test_pipelined_schedule_hides_the_signature_wait(tmp_path):
    """Event by event (one round a step): with two rounds in flight the processor analyses the next
    capture while a round waits for its peers, so a satellite produces about twice as fast; each
    round then waits longer for the processor. In batches, the lockstep period follows the same rule."""
    runs = {}
    for schedule in ("serial", "pipelined"):
        (tmp_path / schedule).mkdir()
        runs[schedule] = _run(tmp_path / schedule, None, **SHIPPED, **{
            "time.duration_h": 20 / 3600, "time.step_s": 10, "mission.capture": "continuous", "mission.rounds": 1,
            "mission.batch": 1, "ground.rate_bps": 1e12, "mission.schedule": schedule, "mission.in_flight": 2})
    serial, piped = runs["serial"]["t_dlrc_parts_s"], runs["pipelined"]["t_dlrc_parts_s"]
    assert runs["pipelined"]["in_flight"]["rounds"] == 2 and runs["serial"]["schedule"] == "serial"
    assert serial["period"] == pytest.approx(serial["latency"])
    compute = piped["front"] + piped["modelling"] + piped["back"]
    assert piped["period"] == pytest.approx(max(compute, serial["latency"] / 2), rel=0.1)
    assert piped["latency"] > serial["latency"]
    assert runs["pipelined"]["decode_exact"] is True
    assert runs["pipelined"]["g_down_simulated"] > runs["serial"]["g_down_simulated"]  # compute-limited
    # two days in batches: the lockstep period of a pipelined group, and the bottleneck model still holds
    (tmp_path / "days").mkdir()
    s = _run(tmp_path / "days", None, **SHIPPED, **TWO_DAYS, **{"ground.rate_bps": 1e12,
                                                                 "mission.schedule": "pipelined"})
    p = s["t_dlrc_parts_s"]  # the sync waits of two days of drifting satellites, not those of t = 0
    latency = p["front"] + max(p["modelling"], p["sync_wait"]) + p["back"]
    compute = p["front"] + p["modelling"] + p["back"]
    assert s["time_per_patch_s"]["dlrc"] == pytest.approx(max(compute, latency / 2), rel=0.1)
    assert 1 + s["g_down_simulated"] == pytest.approx(1 + s["g_down_analytic"], rel=0.05)


def test_in_flight_rounds_are_bounded_by_memory(tmp_path, checkpoint):
    s = _run(tmp_path, checkpoint, **{"mission.schedule": "pipelined", "mission.in_flight": 8,
                                      "mission.in_flight_memory_mb": 0.5})
    per_round = s["in_flight"]["memory_mb_per_round"]  # 128² float image + latents of the 32/48 test model
    assert s["in_flight"]["rounds"] == int(0.5 // per_round) < 8 and s["in_flight"]["memory_mb"] <= 0.5
    assert s["decode_exact"] is True


def test_a_failed_satellite_takes_only_its_own_streams(tmp_path):
    """Slot 0 (top priority: the others copy from it) fails with its streams still on board: the
    ground decodes every other stream, degraded where it copied from slot 0; nothing else is lost."""
    import pandas as pd

    over = {"mission.rounds": 3, "ground.downlink.phase_s": 3600.0, "codec": {"architecture": "bmshj2018-hyperprior",
                                                                             "lambdas": [0.0067]}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base = _run(tmp_path / "a", None, **over)
    failed = _run(tmp_path / "b", None, **over,
                  **{"mission.losses": {"failures": [{"satellite": base["slots"][0], "at_s": 1800.0}]}})
    loss = failed["losses"]
    assert loss["failures"][0]["slot"] == 0
    assert loss["streams_lost"] == {"baseline": 3, "dlrc": 3}
    for world in ("baseline", "dlrc"):  # exactly the failed satellite's patches are lost, no more
        assert failed["patches_decodable"][world] == base["patches_decodable"][world] - 3
    items = pd.read_csv(tmp_path / "b" / "out" / "decodable_items.csv")
    kept = items[~items["lost"]]
    assert (kept["patches_decodable"] == kept["rounds"]).all()
    assert (items.loc[items["lost"], "slot"] == 0).all()
    copies_from_0 = kept[(kept["world"] == "dlrc") & kept["copies_from"].fillna("").astype(str).str.contains("0")]
    assert len(copies_from_0) and kept.loc[copies_from_0.index, "degraded"].all()
    assert loss["rounds_degraded"] == copies_from_0["first_round"].nunique()
    assert failed["rounds_decoded_on_ground"] == base["rounds_decoded_on_ground"]
    assert failed["decode_exact"] is True  # every stream that copied nothing from slot 0 is bit-exact
    assert loss["psnr_degraded"] < base["psnr_dlrc"]
    assert base["losses"]["streams_lost"] == {"baseline": 0, "dlrc": 0} and base["losses"]["rounds_degraded"] == 0


def test_stream_losses_are_seeded_and_the_same_in_both_worlds(tmp_path):
    import pandas as pd

    s = _run(tmp_path, None, **{"mission.rounds": 6, "mission.losses": {"stream_loss_rate": 0.4},
                                "codec": {"architecture": "bmshj2018-hyperprior", "lambdas": [0.0067]}})
    items = pd.read_csv(tmp_path / "out" / "decodable_items.csv")
    lost = {w: set(map(tuple, g.loc[g["lost"], ["slot", "first_round"]].to_numpy().tolist()))
            for w, g in items.groupby("world")}
    assert lost["baseline"] == lost["dlrc"] and 0 < len(lost["dlrc"]) < len(items) / 2
    assert s["losses"]["streams_lost"]["dlrc"] == len(lost["dlrc"])
    kept = items[~items["lost"]]
    assert (kept["patches_decodable"] == kept["patches_arrived"]).all()  # arrived and not lost: decodable


def test_a_mission_key_authenticates_both_worlds(tmp_path, checkpoint, monkeypatch):
    """With a mission key in the environment every container of both worlds carries its HMAC (32 bytes
    more, counted on the downlink), the ground verifies each and still decodes bit-exactly."""
    import pandas as pd

    for name in ("plain", "keyed"):
        (tmp_path / name).mkdir()
    plain = _run(tmp_path / "plain", checkpoint)
    monkeypatch.setenv("DLRC_MISSION_KEY", "00" * 32)
    keyed = _run(tmp_path / "keyed", checkpoint)
    assert plain["authentication"] == "none" and keyed["authentication"] == "hmac-sha256"
    assert keyed["decode_exact"] is True
    assert keyed["rounds_decoded_on_ground"] == plain["rounds_decoded_on_ground"] == {"baseline": 2, "dlrc": 2}
    a = pd.read_csv(tmp_path / "plain" / "out" / "mission_rounds.csv")
    b = pd.read_csv(tmp_path / "keyed" / "out" / "mission_rounds.csv")
    assert ((b["bits_per_patch"] - a["bits_per_patch"]) == 8 * 32).all()
    monkeypatch.setenv("DLRC_MISSION_KEY", "0011")
    assert main(["run", str(_scenario(tmp_path, checkpoint)), "--out", str(tmp_path / "short")]) == 2
    assert not (tmp_path / "short" / "summary.json").exists()


def test_a_mission_flies_the_hadamard_recognizer(tmp_path, checkpoint):
    s = _run(tmp_path, checkpoint, **{"dlrc.rotation": "hadamard"})
    assert s["decode_exact"] is True and s["retained_fraction"] < 0.8


def test_jpeg2000_baseline_at_equal_quality(tmp_path, checkpoint):
    """The baseline world flies JPEG 2000 at the rate that matches the learned codec's PSNR on each patch;
    the ground decodes its codestreams from the bytes sent, through the library that wrote them."""
    s = _run(tmp_path, checkpoint, **{"mission.baseline": {"codec": "jpeg2000"}, "mission.compute.profile": "measured"})
    assert s["baseline_codec"]["codec"] == "jpeg2000" and s["baseline_codec"]["jpeg2000_bpp_mean"] > 0
    assert s["decode_exact"] is True
    # equal quality by construction: JPEG 2000 reaches at least the learned codec's PSNR, the DLRC world
    # decodes the learned codec (ΔPSNR of DLRC itself is tiny)
    assert s["psnr_baseline"] >= s["psnr_dlrc"] - 0.1
    fixed = _run(tmp_path, checkpoint, **{"mission.baseline": {"codec": "jpeg2000", "jpeg2000_bpp": 2.0},
                                          "mission.compute.profile": "measured"})
    assert fixed["baseline_codec"]["jpeg2000_rate"] == "fixed"
    assert abs(fixed["baseline_codec"]["jpeg2000_bpp_mean"] - 2.0) < 1e-9


def test_jpeg2000_baseline_needs_measured_times(tmp_path, checkpoint, capsys):
    path = _scenario(tmp_path, checkpoint, **{"mission.baseline": {"codec": "jpeg2000"}})
    assert main(["validate", str(path)]) == 2
    assert "no JPEG 2000 time" in capsys.readouterr().err


def test_jpeg2000_containers_are_checked_like_the_others():
    import numpy as np

    from dlrc_agents.dlrc.alone import decode_alone, decode_alone_jpeg2000, encode_alone_jpeg2000
    from dlrc_agents.dlrc.bitstream import BitstreamError
    from dlrc_agents.codecs.registry import codec_from_model

    rng = np.random.default_rng(0)
    image = (rng.random((64, 96, 3)) * 255).astype(np.uint8)
    key = bytes(range(16))
    data = encode_alone_jpeg2000(image, 4.0, satellite=2, capture=7, members=(1, 2)).to_bytes(key)
    assert decode_alone_jpeg2000(data, key, capture=7).shape == (64, 96, 3)
    with pytest.raises(BitstreamError, match="ground expects 6"):
        decode_alone_jpeg2000(data, key, capture=6)
    altered = bytearray(data)
    altered[-40] ^= 1  # inside the codestream, under the tag
    for k in (key, None):  # the CRC catches it before the tag is looked at
        with pytest.raises(BitstreamError, match="checksum mismatch"):
            decode_alone_jpeg2000(bytes(altered), k, capture=7)
    with pytest.raises(BitstreamError, match="authentication failed"):  # signed under another key
        decode_alone_jpeg2000(data, bytes(16), capture=7)
    torch.manual_seed(0)
    m = build_model("bmshj2018-hyperprior", 32, 48)
    m.update(force=True)
    with pytest.raises(BitstreamError, match="made by model jpeg2000"):
        decode_alone(codec_from_model(m, "bmshj2018-hyperprior", 32, 48), data, key)


def test_mission_with_misregistered_captures_and_the_shared_grid(tmp_path):
    """Captures 0–15 px off the latent grid: as captured DLRC finds (almost) nothing to drop; on the
    shared grid it drops again; the grid's resampling time is charged on board in both worlds."""
    off = _run(tmp_path, None, **{"captures": {"perturbation": {"offset": 15}}})  # the shipped weights
    grid = _run(tmp_path, None, **{"captures": {"perturbation": {"offset": 15}, "geo_grid": True}})
    assert off["decode_exact"] is True and grid["decode_exact"] is True
    assert off["bpp_reduction"] < 0.05 < 0.2 < grid["bpp_reduction"]



LOSSY = {"participants.count": 4, "overlap.satellites": 4, "mission.rounds": 2, "mission.capture": "continuous",
         "mission.batch": 200, "dlrc.priority": "rotate", "time.duration_h": 0.5,
         "codec": {"architecture": "bmshj2018-hyperprior", "lambdas": [0.0067]}}


@pytest.fixture(scope="module")
def lossless_slots(tmp_path_factory):
    """The catalogue ids of the lossy missions' slots (a failure names its satellite by id)."""
    return _run(tmp_path_factory.mktemp("lossless"), None, **LOSSY)["slots"]


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.9])
@pytest.mark.parametrize("failing", [False, True])
def test_stream_losses_at_any_rate_with_and_without_failures(tmp_path, lossless_slots, rate, failing):
    """The lost-stream model on 4 satellites whose top slot rotates (copies reach every slot), with
    trained weights so that streams do copy: the mission runs and its losses block equals the seeded
    draws, recomputed here from their definition (one draw per slot and capture step), in both worlds;
    a failed satellite loses, besides, what it still held."""
    import numpy as np
    import pandas as pd

    losses = {"stream_loss_rate": rate}
    if failing:
        losses["failures"] = [{"satellite": lossless_slots[0], "at_s": 900.0}]
    s = _run(tmp_path, None, **dict(LOSSY, **{"mission.losses": losses}))
    items = pd.read_csv(tmp_path / "out" / "decodable_items.csv")
    drawn = np.array([np.random.default_rng([0, 7919, int(sl), int(r)]).random() < rate
                      for sl, r in items[["slot", "first_round"]].to_numpy()], dtype=bool)
    others = (items["slot"] != 0).to_numpy() if failing else np.ones(len(items), dtype=bool)
    lost = items["lost"].to_numpy(bool)
    for world in ("baseline", "dlrc"):
        w = (items["world"] == world).to_numpy()
        assert lost[w & others].tolist() == drawn[w & others].tolist()  # exactly the drawn streams
        assert np.all(lost[w & drawn])  # a drawn loss is lost on the failed satellite too
        assert s["losses"]["streams_lost"][world] == int(lost[w].sum())
    assert 0 < int(drawn.sum()) < len(items)
    assert s["losses"]["stream_loss_rate"] == rate
    assert s["decode_exact"] is True  # every stream that copied nothing from a lost one is bit-exact
    if failing:
        assert s["losses"]["failures"][0]["slot"] == 0
        assert lost[~others].sum() > drawn[~others].sum()  # the failure lost more than the draws

"""Predictive inter-satellite coding in missions (``dlrc.mode: predict``): the streams a satellite
predicts from cross the ISLs as routed flows, the ground rebuilds every patch as the codec alone codes
it, and what crosses the ISLs is counted."""

import json

import numpy as np
import pandas as pd
import pytest

from edgespacecom.cli import main

from tests.mission.test_mission import _scenario

SHIPPED = {"codec": {"architecture": "bmshj2018-hyperprior", "lambdas": [0.0067]}}  # trained: prediction pays
REALISTIC = {"captures": {"perturbation": {"offset": 15, "radiometric": 0.01, "noise": 1.0}, "geo_grid": True},
             "mission.compute": {"profile": "measured"}}


def _run(tmp_path, name, **over):
    out = tmp_path / name
    assert main(["run", str(_scenario(tmp_path, None, **over)), "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text()), out


@pytest.fixture(scope="module")
def both_modes(tmp_path_factory):
    """The same 4-satellite mission (rotating priority, realistic captures on the grid, continuous and
    pipelined) flown in copy and in predict mode."""
    tmp = tmp_path_factory.mktemp("predict")
    over = dict(SHIPPED, **REALISTIC, **{"participants.count": 4, "overlap.satellites": 4, "dlrc.priority": "rotate",
                                         "mission.capture": "continuous", "mission.batch": 20, "mission.rounds": 2,
                                         "mission.schedule": "pipelined", "mission.in_flight": 4,
                                         "time.duration_h": 0.1})
    return {mode: _run(tmp, mode, **dict(over, **{"dlrc.mode": mode})) for mode in ("copy", "predict")}


def test_predict_mission_rebuilds_the_codec_alone_and_saves(both_modes):
    s, out = both_modes["predict"]
    assert s["dlrc_mode"] == "predict" and s["decode_exact"] is True
    ground = pd.read_csv(out / "ground_rounds.csv")
    by = ground.pivot_table(index="round", columns="world", values="psnr")
    assert len(by.dropna()) > 0
    # the baseline world flies the codec alone: every decoded patch is the same image, to the bit
    assert np.array_equal(by.dropna()["dlrc"].to_numpy(), by.dropna()["baseline"].to_numpy())
    assert s["bpp_reduction"] > 0.05 and 0 < s["predicted_fraction"] < 1
    copy = both_modes["copy"][0]
    assert s["bpp_reduction"] > copy["bpp_reduction"]  # noise and gain break copy's exact matches


def test_predict_mission_counts_the_streams_it_sends(both_modes):
    """Each satellite's received bytes are the streams of every satellite its predictions rest on
    (transitively), as stored in the same round; the ISL bytes per round are the four-byte tile
    origins to each peer plus one stream per satellite that needs it."""
    s, out = both_modes["predict"]
    rows = pd.read_csv(out / "mission_rounds.csv")
    dl = rows[rows["world"] == "dlrc"]
    sync = pd.read_csv(out / "sync_rounds.csv")
    checked = 0
    for r, g in dl.groupby("round"):
        if len(g) < 4:  # a round the run's end cut short (measured times: how far it gets varies)
            continue
        size = dict(zip(g["slot"], g["bits_per_patch"] / 8))
        deps = {int(sl): {int(u) for u in str(c).split()} if isinstance(c, str) else set()
                for sl, c in zip(g["slot"], g["copies_from"])}
        sent = 0
        for slot in deps:
            need, todo = set(), list(deps[slot])
            while todo:
                u = todo.pop()
                if u not in need:
                    need.add(u)
                    todo.extend(deps[u])
            received = int(g.loc[g["slot"] == slot, "streams_received_bytes"].iloc[0])
            assert received == sum(size[u] for u in need)
            sent += received
            checked += len(need)
        assert sync.loc[sync["round"] == r, "isl_bytes"].iloc[0] == 4 * 4 * 3 + sent
    assert checked > 0
    copy, copy_out = both_modes["copy"]
    copy_rows = pd.read_csv(copy_out / "mission_rounds.csv")
    complete = [r for r, g in copy_rows[copy_rows["world"] == "dlrc"].groupby("round") if len(g) == 4]
    copy_sync = pd.read_csv(copy_out / "sync_rounds.csv").set_index("round")
    assert len(complete) and all(copy_sync.loc[r, "isl_bytes"] == 4 * 3 * 8 * (128 // 16) ** 2 for r in complete)
    # (signatures: 8 bytes a position, from each of 4 satellites to 3 peers)
    # the chain of streams makes predict's exchange longer than copy's signatures
    assert s["sync_round_s"]["mean"] > copy["sync_round_s"]["mean"]
    assert s["t_dlrc_parts_s"]["peer_decode"] > 0


def test_a_stream_that_misses_the_timeout_is_coded_without(tmp_path):
    """Every peer times out: each satellite codes its patch as the codec alone would (no prediction, no
    references), the ground still decodes every round exactly."""
    s, _ = _run(tmp_path, "alone", **dict(SHIPPED, **REALISTIC, **{"dlrc.mode": "predict",
                                                                  "mission.peer_timeout_s": 1e-9}))
    # measured on-board times: a satellite whose own stages took longer than a peer's header took to
    # arrive has it already, so how many of the 2 × 3 waits time out depends on the machine's load;
    # the fastest satellite of a round always does, and every stream decodes exactly either way
    assert 0 < s["peer_timeouts"] <= 2 * 3 and s["decode_exact"] is True
    assert s["rounds_decoded_on_ground"]["dlrc"] == 2
    if s["peer_timeouts"] == 2 * 3:  # nobody heard anybody: no prediction, the codec alone's strings
        assert s["predicted_fraction"] == 0.0
        assert abs(s["bpp_reduction"]) < 0.01  # the container's own fields aside


@pytest.mark.parametrize("over, field", [
    ({"dlrc.mode": ["copy", "predict"]}, "dlrc.mode"),
    ({"dlrc.mode": "predict", "mission.compute": {"profile": "titan_v"}}, "mission.compute.profile"),
    ({"dlrc.mode": "predict", "codec": {"architecture": "mbt2018", "lambdas": [0.0067]},
      "dlrc.context_fill": "prediction", "mission.compute": {"profile": "measured"}}, "dlrc.mode"),
])
def test_predict_mission_settings_are_checked(tmp_path, capsys, over, field):
    assert main(["validate", str(_scenario(tmp_path, None, **over))]) != 0
    assert field in capsys.readouterr().err

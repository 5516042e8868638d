"""The command line end to end: outputs, overrides, determinism, refusals."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from edgespacecom.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = [
    "constellation.walker.total=200", "constellation.walker.planes=10",
    "time.duration_h=0.5", "sync.payloads_kib=[2,32]", "participants.count=5",
]


def test_run_writes_all_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", str(ROOT / "scenarios" / "paper_table_a1.yaml"), "--out", str(out), "--workers", "1"]
    assert main(args + [f"--set={s}" for s in SMALL]) == 0
    printed = capsys.readouterr().out
    assert "T_round mean" in printed and str(out) in printed
    for name in ("summary.json", "config.resolved.yaml", "sync_rounds.csv", "sync_satellites.csv",
                 "topology.csv", "flows.parquet", "fig10_sync_time.png", "link_budget.png", "topology_events.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["satellites"] == 200 and summary["samples"] == 30 and summary["participants"] == 5
    assert set(summary["sync_round_s"]) == {"2", "32"}
    assert summary["sync_round_s"]["32"]["max"] >= summary["sync_round_s"]["32"]["mean"] > 0.03
    assert summary["wall_s"] > 0
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["constellation"]["walker"]["total"] == 200 and resolved["sync"]["payloads_kib"] == [2.0, 32.0]
    per_sat = pd.read_csv(out / "sync_satellites.csv")
    assert len(per_sat) == 30 * 2 * 5
    assert {"time_utc", "satellite", "payload_kib", "t_send_s", "t_recv_s", "t_sync_s", "hops_max", "path_delay_max_s"} <= set(per_sat.columns)
    rounds = pd.read_csv(out / "sync_rounds.csv")
    assert len(rounds) == 60 and rounds["omega_topo_s"].isna().sum() == 2  # first sample, both payloads


def test_same_scenario_same_bytes(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["run", str(ROOT / "scenarios" / "paper_table_a1.yaml"), "--out", str(out), "--workers", "2"]
                    + [f"--set={s}" for s in SMALL]) == 0
        outs.append(out)
    for name in ("sync_rounds.csv", "sync_satellites.csv", "topology.csv", "flows.parquet", "config.resolved.yaml", "fig10_sync_time.png"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_bad_scenario_refused_before_any_output(tmp_path, capsys):
    out = tmp_path / "never"
    code = main(["run", str(ROOT / "scenarios" / "paper_table_a1.yaml"), "--out", str(out), "--set", "participants.count=5000"])
    assert code == 2
    assert "participants.count" in capsys.readouterr().err
    assert not out.exists()
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "no such scenario file" in capsys.readouterr().err


def test_validate_prints_resolved(capsys):
    assert main(["validate", str(ROOT / "scenarios" / "paper_table_a1.yaml"), "--set", "link.delta=0.3"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["link"]["delta"] == 0.3


@pytest.mark.slow
def test_full_table_a1_scenario(tmp_path):
    """The full Table A1 run: 1000 satellites, 720 samples, 8 participants, 4 payloads."""
    out = tmp_path / "a1"
    assert main(["run", str(ROOT / "scenarios" / "paper_table_a1.yaml"), "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert (s["satellites"], s["samples"], s["participants"]) == (1000, 720, 8)
    means = [s["sync_round_s"][p]["mean"] for p in ("2", "8", "32", "128")]
    assert means == sorted(means) and 0.03 < means[0] < means[-1] < 0.1
    assert s["unreachable_flows"] == 0


@pytest.mark.slow
def test_quickstart_runs_on_the_shipped_weights(tmp_path, capsys, monkeypatch):
    """What `make demo` runs, from the repository root, on the embedded sample and shipped BMSHJ weights."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "qs"
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for label in ("bpp", "PSNR [dB] (ground)", "sync round (agents)", "delivered [MB]", "G_down analytic"):
        assert label in printed
    s = json.loads((out / "summary.json").read_text())
    assert s["weights"].endswith("bmshj2018-hyperprior_lambda0.0067.pt")
    assert s["decode_exact"] is True and s["rounds_decoded_on_ground"] == {"baseline": 4, "dlrc": 4}
    assert s["bpp_dlrc"] < s["bpp_baseline"] and abs(s["psnr_dlrc"] - s["psnr_baseline"]) < 0.1
    assert s["downlink"]["stations"] == ["Miyun", "Sanya", "Svalbard"]

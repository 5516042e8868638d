"""The command line end to end: outputs, overrides, determinism, refusals."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from edgespacecom.cli import main

ROOT = Path(__file__).resolve().parents[2]
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
    view = (out / "view.html").read_text()  # the globe of the run, offline, within the page budget
    assert len(view.encode()) < 20e6 and "1000 satellites" in view and "ISLs: the 3000 nearest" in view


@pytest.mark.slow
def test_quickstart_runs_on_the_shipped_weights(tmp_path, capsys, monkeypatch):
    """What `make demo` runs, from the repository root, on the embedded sample and shipped BMSHJ weights."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "qs"
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for label in ("bpp", "PSNR [dB] (ground)", "sync round (agents)", "delivered [MB]",
                  "G_down (decodable) simulated", "why: both worlds are downlink-limited"):
        assert label in printed
    s = json.loads((out / "summary.json").read_text())
    assert s["weights"].endswith("bmshj2018-hyperprior_lambda0.0067.pt")
    assert s["decode_exact"] is True and min(s["rounds_decoded_on_ground"].values()) > 0
    assert s["bpp_dlrc"] < s["bpp_baseline"] and abs(s["psnr_dlrc"] - s["psnr_baseline"]) < 0.2
    # the demo's point: where the downlink limits, DLRC gains, short of the balanced ideal
    assert s["g_down_regime"] == "D:downlink B:downlink"
    assert 0 < s["g_down_simulated"] <= s["g_down_balanced_ideal"]
    assert s["downlink"]["stations"] == ["Miyun", "Sanya", "Svalbard"]
    view = (out / "view.html").read_text()
    assert all(f'"name":"{n}"' in view for n in ("ground stations", "contacts", "capturing", "participants"))


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[edgespacecom]")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


SYNC = str(ROOT / "scenarios" / "paper_table_a1.yaml")


def test_os_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["run", SYNC, "--out", str(blocker / "out")] + [f"--set={s}" for s in SMALL]) == 2
    assert str(blocker) in _one_error_line(capsys.readouterr().err)
    # a position cache that cannot be made is skipped with one line, and the run goes on
    monkeypatch.setenv("EDGESPACECOM_CACHE", str(blocker / "cache"))
    assert main(["run", SYNC, "--out", str(tmp_path / "out")] + [f"--set={s}" for s in SMALL]) == 0
    assert "running without it" in capsys.readouterr().err


def test_ctrl_c_is_one_line_130_and_leaves_no_stale_summary(tmp_path, capsys, monkeypatch):
    import edgespacecom.sync_kind as sync_kind

    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text('{"stale": true}')
    (out / "config.resolved.yaml").write_text("old: true\n")

    def interrupted(scenario, run):
        run.begin()
        raise KeyboardInterrupt

    monkeypatch.setattr(sync_kind, "run_sync", interrupted)
    assert main(["run", SYNC, "--out", str(out)] + [f"--set={s}" for s in SMALL]) == 130
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("interrupted")
    assert not (out / "summary.json").exists()
    assert "old: true" not in (out / "config.resolved.yaml").read_text()


def test_validate_checks_the_files_a_scenario_names(tmp_path, capsys):
    rd = str(ROOT / "scenarios" / "rd_bmshj2018.yaml")
    assert main(["validate", rd, "--set", "codec.checkpoint=nowhere/model.pt"]) == 2
    assert "codec.checkpoint" in _one_error_line(capsys.readouterr().err)
    assert main(["validate", rd, "--set", "data.scenes=[eo:revisit/naip/naip_*_2019*.tif]"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "not fetched" in line and "edgespacecom data fetch eo:revisit/naip/naip_*_2019*.tif" in line
    assert main(["validate", rd, "--set", "data.scenes=[no/such/*.tif]"]) == 2
    assert "matches no file" in _one_error_line(capsys.readouterr().err)


def test_relative_paths_resolve_against_the_scenario_folder(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "study"
    folder.mkdir()
    raw = yaml.safe_load((ROOT / "scenarios" / "paper_table_a1.yaml").read_text())
    raw["compute"] = {"cache_dir": "orbit-cache"}
    (folder / "s.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)  # another folder than the scenario's
    assert main(["validate", "study/s.yaml"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["compute"]["cache_dir"] == str(folder / "orbit-cache")


def test_summary_records_its_provenance(tmp_path):
    import hashlib

    out = tmp_path / "run"
    assert main(["run", SYNC, "--out", str(out), "--workers", "1"] + [f"--set={s}" for s in SMALL]) == 0
    text = (out / "summary.json").read_text()
    p = json.loads(text)["provenance"]
    assert p["version"] and p["libraries"]["numpy"] and p["libraries"]["skyfield"] and p["libraries"]["sgp4"]
    assert p["config_sha256"] == hashlib.sha256((out / "config.resolved.yaml").read_bytes()).hexdigest()
    assert p["started_utc"].endswith("+00:00") and "git_commit" in p
    assert str(ROOT) not in text and str(tmp_path) not in text  # names, never host paths


def test_version_and_shipped_scenarios(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("edgespacecom ")
    assert main(["scenarios", "list"]) == 0
    listed = capsys.readouterr().out
    for name in ("quickstart", "paper_table_a1", "rd_bmshj2018", "codec_rd_test", "paper_gdown"):
        assert name in listed
    assert main(["scenarios", "copy", "quickstart", str(tmp_path)]) == 0
    assert (tmp_path / "quickstart.yaml").read_bytes() == (ROOT / "scenarios" / "quickstart.yaml").read_bytes()
    assert main(["scenarios", "copy", "quickstart", str(tmp_path)]) == 2  # never overwrites
    assert main(["scenarios", "copy", "nonesuch", str(tmp_path)]) == 2
    assert "no shipped scenario" in capsys.readouterr().err


def test_sync_sweep_on_dask_never_nests_pools_and_an_interrupted_point_is_rerun(tmp_path, capsys, monkeypatch):
    """A sync sweep (whose points would start their own pools) runs on a local Dask cluster and in
    one process with the same table; a point killed after writing its new config is run again."""
    import edgespacecom.sync_kind as sync_kind

    raw = yaml.safe_load((ROOT / "scenarios" / "paper_table_a1.yaml").read_text())
    raw["sweep"] = {"grid": {"participants.count": [3, 5]}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    small = [f"--set={s}" for s in SMALL if not s.startswith("participants")]
    dask, local = tmp_path / "dask", tmp_path / "local"
    assert main(["run", str(path), "--out", str(dask), "--executor", "dask", "--workers", "2"] + small) == 0
    assert "dashboard http://127.0.0.1:" in capsys.readouterr().err
    assert main(["run", str(path), "--out", str(local)] + small) == 0
    assert (dask / "sweep.csv").read_bytes() == (local / "sweep.csv").read_bytes()
    # change a key that is not swept; the first point is killed after it wrote its new config
    real = sync_kind.run_sync

    def killed(scenario, run):
        if scenario.participants.count == 3:
            run.begin()
            raise KeyboardInterrupt
        return real(scenario, run)

    monkeypatch.setattr(sync_kind, "run_sync", killed)
    changed = small + ["--set=link.delta=0.3"]
    assert main(["run", str(path), "--out", str(local)] + changed) == 130
    monkeypatch.setattr(sync_kind, "run_sync", real)
    assert main(["run", str(path), "--out", str(local)] + changed) == 0
    assert json.loads((local / "summary.json").read_text())["resumed"] == 0
    fresh = tmp_path / "fresh"
    assert main(["run", str(path), "--out", str(fresh)] + changed) == 0
    assert (fresh / "sweep.csv").read_bytes() == (local / "sweep.csv").read_bytes()


@pytest.mark.slow
def test_a_sweep_killed_at_random_moments_resumes_to_the_same_table(tmp_path):
    """SIGKILL a 6-point sweep several times at seeded random moments; each finished point is kept
    as it is (never run twice) and the final table equals an uninterrupted run's."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    raw = yaml.safe_load((ROOT / "scenarios" / "paper_table_a1.yaml").read_text())
    raw["sweep"] = {"grid": {"participants.count": [3, 4, 5, 6, 7, 8]}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    small = [f"--set={s}" for s in SMALL if not s.startswith("participants")]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert main(["run", str(path), "--out", str(reference)] + small) == 0
    command = [sys.executable, "-m", "edgespacecom", "-q", "run", str(path), "--out", str(killed)] + small
    env = {**os.environ, "EDGESPACECOM_CACHE": str(tmp_path / "orbits")}
    rng = random.Random(7)
    seen: dict = {}
    unfinished_after_first = None
    for kill in range(3):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(rng.uniform(0.5, 2.0) if kill == 0 else rng.uniform(1.5, 4.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for done in killed.glob("points/*/summary.json"):
            stamp = (done.stat().st_mtime_ns, done.read_bytes())
            assert seen.setdefault(done.parent.name, stamp) == stamp  # a finished point never ran again
        if unfinished_after_first is None:
            unfinished_after_first = 6 - len(seen)
    assert unfinished_after_first > 0  # the first kill landed before the end
    final = subprocess.run(command, env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr[-2000:]
    assert json.loads((killed / "summary.json").read_text())["resumed"] == len(seen)
    for name, stamp in seen.items():
        done = killed / "points" / name / "summary.json"
        assert (done.stat().st_mtime_ns, done.read_bytes()) == stamp
    assert (killed / "sweep.csv").read_bytes() == (reference / "sweep.csv").read_bytes()

"""Streaming time (edgespacecom.stream): chunks equal one pass, exactly, on every executor."""

import numpy as np
import pandas as pd
import pytest

from edgespacecom.config import validate_scenario
from edgespacecom.orbits import constellation_satellites, propagate_itrs
from edgespacecom.participants import select_participants
from edgespacecom.runner import run_scenario
from edgespacecom.stream import TableAppender, chunk_bounds, default_chunk_samples, run_chunks, sync_chunk
from edgespacecom.sync import compute_sync_rounds, topology_overhead

TABLES = ("sync_rounds.csv", "sync_satellites.csv", "topology.csv")


def _scenario(tmp_path, **compute):
    raw = {
        "name": "stream", "kind": "sync",
        "constellation": {"walker": {"total": 200, "planes": 10, "phasing": 1, "inclination_deg": 53.0,
                                     "altitude_km": 550.0}},
        "time": {"start": "2026-01-01T00:00:00Z", "duration_h": 0.5, "step_s": 60},
        "region": {"lat_deg": 30.5, "lon_deg": 114.3},
        "participants": {"count": 5},
        "isl": {"d_max_km": 3000},
        "sync": {"payloads_kib": [2, 128]},
        "compute": {"workers": 1, "cache_dir": str(tmp_path / "cache"), **compute},
    }
    return validate_scenario(raw)


def test_chunk_bounds_cover_the_window_once():
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(3, 5) == [(0, 3)]
    with pytest.raises(ValueError, match="chunk_samples"):
        chunk_bounds(3, 0)
    assert default_chunk_samples(1000, 720) == 90  # 8 chunks: work for a pool, whatever its size
    assert default_chunk_samples(10_000, 86_400) == 1118  # 256 MiB of positions a chunk
    assert default_chunk_samples(10, 3) == 1


def test_a_chunk_propagates_the_same_numbers_as_the_window(tmp_path):
    sc = _scenario(tmp_path)
    sats = constellation_satellites(sc.constellation, sc.time.start)
    whole = propagate_itrs(sats, sc.time)
    for start, stop in [(0, 7), (7, 19), (29, 30)]:
        np.testing.assert_array_equal(propagate_itrs(sats, sc.time, range(start, stop)), whole[start:stop])


def test_chunks_give_the_single_pass_rounds_and_link_events_across_borders(tmp_path):
    """Every chunk's flows, link counts and Ω_topo (all ISLs and the participants' links) equal one pass
    over the whole window with the in-memory path, including at each chunk's first sample."""
    sc = _scenario(tmp_path)
    sats = constellation_satellites(sc.constellation, sc.time.start)
    pos = propagate_itrs(sats, sc.time)
    part = select_participants(pos, 30.5, 114.3, 5)
    whole = compute_sync_rounds(pos, part, [2, 128], sc.isl, sc.link, sc.network, progress=False)
    omega, omega_local = topology_overhead(whole, sc.network), topology_overhead(whole, sc.network, "participants")
    for start, stop in chunk_bounds(sc.time.samples, 7):
        got = sync_chunk(sc, start, stop, cache_dir=False)
        rounds = got.tables["per_round"]
        assert list(rounds["sample"].unique()) == list(range(start, stop))
        first = rounds[rounds["payload_kib"] == 2.0]
        np.testing.assert_array_equal(first["isl_links"], whole.n_links[start:stop])
        np.testing.assert_array_equal(first["link_setups"], whole.n_setup[start:stop])
        np.testing.assert_array_equal(first["omega_topo_s"], omega[start:stop])
        np.testing.assert_array_equal(first["omega_topo_participants_s"], omega_local[start:stop])
        np.testing.assert_array_equal(rounds["t_round_s"], whole.t_round_s[start:stop].ravel())
        flows = got.tables["flows"]
        K, P, n, _ = whole.t_flow_s[start:stop].shape
        off = ~np.eye(n, dtype=bool)
        np.testing.assert_array_equal(flows["t_flow_s"], whole.t_flow_s[start:stop][:, :, off].ravel())
    assert np.isnan(omega[0]) and np.isfinite(omega[1:]).all()


def test_tables_are_byte_identical_across_chunking_and_executors(tmp_path):
    """CSV tables are the same bytes for one chunk or many, in this process or a process pool; the
    Parquet flows are the same bytes for the same chunking on either executor, and the same rows
    whatever the chunking."""
    runs = {
        "one": {"chunk_samples": 1000},
        "chunks": {"chunk_samples": 7},
        "pool": {"chunk_samples": 7, "workers": 2},
    }
    for name, compute in runs.items():
        run_scenario(_scenario(tmp_path, **compute), tmp_path / name)
    for name in ("chunks", "pool"):
        for table in TABLES:
            assert (tmp_path / name / table).read_bytes() == (tmp_path / "one" / table).read_bytes(), (name, table)
    assert (tmp_path / "pool" / "flows.parquet").read_bytes() == (tmp_path / "chunks" / "flows.parquet").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one" / "flows.parquet"),
                                  pd.read_parquet(tmp_path / "chunks" / "flows.parquet"))


@pytest.mark.slow
def test_dask_gives_the_same_bytes(tmp_path):
    run_scenario(_scenario(tmp_path, chunk_samples=7), tmp_path / "local")
    summary, _ = run_scenario(_scenario(tmp_path, chunk_samples=7, executor="dask", workers=2), tmp_path / "dask")
    assert summary["executor"] == "dask" and summary["chunks"] == 5
    for table in TABLES + ("flows.parquet",):
        assert (tmp_path / "dask" / table).read_bytes() == (tmp_path / "local" / table).read_bytes(), table


def test_parquet_tables_and_summary_totals(tmp_path):
    summary, _ = run_scenario(_scenario(tmp_path, chunk_samples=4, tables="parquet"), tmp_path / "p")
    rounds = pd.read_parquet(tmp_path / "p" / "sync_rounds.parquet")
    assert len(rounds) == 2 * 30 and summary["chunks"] == 8
    for i, payload in enumerate(("2", "128")):
        sel = rounds[rounds["payload_kib"] == float(payload)]
        assert summary["sync_round_s"][payload]["mean"] == pytest.approx(sel["t_round_s"].mean(), rel=1e-12)
        assert summary["sync_round_s"][payload]["max"] == sel["t_round_s"].max()
    topo = pd.read_parquet(tmp_path / "p" / "topology.parquet")
    assert summary["omega_topo_s"]["max"] == topo["omega_topo_s"].max()
    assert summary["isl_links_mean"] == pytest.approx(topo["isl_links"].mean())


def test_an_interrupted_run_leaves_no_table(tmp_path):
    def boom(start, stop):
        if start >= 4:
            raise KeyboardInterrupt
        return start

    appender = TableAppender(tmp_path / "t.csv")
    with pytest.raises(KeyboardInterrupt):
        for start in run_chunks(boom, chunk_bounds(10, 2)):
            appender.append(pd.DataFrame({"a": [start]}))
    appender.discard()
    assert list(tmp_path.iterdir()) == []
    done = TableAppender(tmp_path / "t.parquet")
    done.append(pd.DataFrame({"a": [1.0]}))
    done.append(pd.DataFrame({"a": [2.0]}))
    assert pd.read_parquet(done.close())["a"].tolist() == [1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_a_pool_returns_chunks_in_order_whatever_finishes_first():
    got = list(run_chunks(_slow_first, chunk_bounds(12, 2), workers=2))
    assert got == [(a, b) for a, b in chunk_bounds(12, 2)]


def _slow_first(start, stop):
    import time

    time.sleep(0.3 if start == 0 else 0.0)
    return start, stop


@pytest.mark.parametrize("name", ["scale_10k_grid", "scale_10k_day"])
def test_the_scale_scenarios_run_on_a_short_window(tmp_path, name):
    """The shipped 10,000-satellite scenarios, cut to 5 samples (and run in this process)."""
    from pathlib import Path

    from edgespacecom.config import load_scenario

    path = Path(__file__).resolve().parents[2] / "edgespacecom" / "scenarios" / f"{name}.yaml"
    sc = load_scenario(path, overrides=["time.duration_h=0.0015", "compute.chunk_samples=4",
                                                       "compute.executor=local", "compute.workers=1"])
    summary, _ = run_scenario(sc, tmp_path / name)
    assert summary["satellites"] == 10_000 and summary["samples"] == sc.time.samples == 5 and summary["chunks"] == 2
    assert summary["isl_links_mean"] == 20_000 and summary["unreachable_flows"] == 0
    assert pd.read_parquet(tmp_path / name / "flows.parquet")["sample"].max() == 4

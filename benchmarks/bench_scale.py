"""Benchmark: a 10,000-satellite +Grid shell, streamed in time chunks, against the all-in-memory path.

    python benchmarks/bench_scale.py [--scenario scenarios/scale_10k_grid.yaml] [--workers 2]
                                     [--paths streamed dask in_memory] [--reference-hours H]
                                     [--out results/benchmarks]

Every path runs as a fresh process on the same scenario (default: ``scale_10k_grid``, 10,000
satellites, +Grid, 8 participants, 1 h at 1 s = 3600 samples, no position cache), and a monitor
samples the resident memory of the process and all its children every 0.1 s:

- ``streamed``: ``edgespacecom run`` (time chunks on a local process pool of ``--workers``);
- ``dask``: the same with ``--executor dask`` (a local Dask cluster of ``--workers`` processes);
- ``in_memory``: the path every run took before streaming, measured in this run as the baseline:
  the whole window propagated at once (:func:`edgespacecom.orbits.load_ephemeris`), participants,
  :func:`edgespacecom.sync.compute_sync_rounds` on a pool of ``--workers`` and the same tables.

Reported per path: wall time, the peak summed RSS of the process tree, the peak RSS of its largest
process, and the ratios to the in-memory baseline. The streamed and Dask tables are compared byte
for byte, and with the in-memory tables row for row. A window too long to run twice (the day:
``--scenario scenarios/scale_10k_day.yaml --paths dask --reference-hours 2``) is compared with one
process over its first hours instead: the same chunks, so the same rows. Results:
``results/benchmarks/scale.{json,md}`` (``<scenario>.{json,md}`` for another scenario).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgespacecom.outputs import atomic_write_text, write_json  # noqa: E402

SCENARIO = ROOT / "scenarios" / "scale_10k_grid.yaml"


def monitored(cmd: list[str]) -> dict:
    """Run ``cmd``; its wall time and the peak RSS of its process tree (summed and largest) [bytes]."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = {"sum": 0, "largest": 0}
    done = threading.Event()

    def watch():
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = [p.memory_info().rss for p in [root, *root.children(recursive=True)]]
            except psutil.Error:
                rss = []
            if rss:
                peak["sum"], peak["largest"] = max(peak["sum"], sum(rss)), max(peak["largest"], max(rss))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    done.set()
    watcher.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    return {"wall_s": time.perf_counter() - start, "peak_rss_sum_bytes": peak["sum"],
            "peak_rss_largest_bytes": peak["largest"]}


def in_memory_run(scenario_path: str, out: str, workers: int) -> None:
    """The pre-streaming path: every position of the window in memory at once (child process)."""
    from edgespacecom.config import load_scenario
    from edgespacecom.orbits import load_ephemeris
    from edgespacecom.outputs import write_table
    from edgespacecom.participants import select_participants
    from edgespacecom.sync import compute_sync_rounds, flows_table, per_round_table, per_satellite_table

    sc = load_scenario(scenario_path)
    with tempfile.TemporaryDirectory() as cache:  # never a cache hit: propagation is measured
        eph = load_ephemeris(sc.constellation, sc.time, Path(cache))
    part = select_participants(eph.positions_km, sc.region.lat_deg, sc.region.lon_deg, sc.participants.count,
                               sc.participants.selection)
    payloads = sc.sync.payloads_kib
    rounds = compute_sync_rounds(eph.positions_km, part, payloads, sc.isl, sc.link, sc.network, workers=workers,
                                 progress=False, constellation=sc.constellation)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "sync_rounds.parquet", per_round_table(rounds, eph.times_utc, payloads, sc.network))
    write_table(out / "sync_satellites.parquet", per_satellite_table(rounds, eph.times_utc, eph.names, payloads))
    write_table(out / "flows.parquet", flows_table(rounds, payloads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--paths", nargs="+", choices=["streamed", "dask", "in_memory"],
                        default=["streamed", "dask", "in_memory"])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks")
    parser.add_argument("--reference-hours", type=float, default=None,
                        help="also run the first H hours in one process (same chunks) and compare its rows with "
                             "each path's (for windows too long to run twice)")
    parser.add_argument("--in-memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_memory_child:
        from threadpoolctl import threadpool_limits

        # one BLAS thread, as every streamed chunk runs (edgespacecom.stream.sync_chunk), so the
        # tables can be compared row for row
        with threadpool_limits(limits=1, user_api="blas"):
            in_memory_run(*args.in_memory_child, args.workers)
        return

    import pandas as pd

    from edgespacecom.config import load_scenario

    sc = load_scenario(args.scenario)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = [sys.executable, "-m", "edgespacecom", "-q", "run", str(args.scenario), "--workers", str(args.workers)]
        commands = {
            "streamed": run + ["--out", str(tmp / "streamed")],
            "dask": run + ["--out", str(tmp / "dask"), "--executor", "dask"],
            "in_memory": [sys.executable, str(Path(__file__).resolve()), "--workers", str(args.workers),
                          "--in-memory-child", str(args.scenario), str(tmp / "in_memory")],
        }
        if args.reference_hours:
            hours = args.reference_hours
            commands["reference"] = [sys.executable, "-m", "edgespacecom", "-q", "run", str(args.scenario),
                                     "--out", str(tmp / "reference"), "--executor", "local", "--workers", "1",
                                     "--set", f"time.duration_h={hours:g}"]
        for path in args.paths + (["reference"] if args.reference_hours else []):
            print(f"{path}: running ...", flush=True)
            rows[path] = monitored(commands[path])
            print(f"{path}: {rows[path]['wall_s']:.1f} s, peak RSS {rows[path]['peak_rss_sum_bytes'] / 2**30:.2f} GiB "
                  f"(largest process {rows[path]['peak_rss_largest_bytes'] / 2**30:.2f} GiB)", flush=True)
        checks = {}
        if "streamed" in rows and "dask" in rows:
            checks["dask_tables_byte_identical"] = all(
                (tmp / "dask" / t).read_bytes() == (tmp / "streamed" / t).read_bytes()
                for t in ("sync_rounds.parquet", "sync_satellites.parquet", "topology.parquet", "flows.parquet"))
        if "streamed" in rows and "in_memory" in rows:
            checks["in_memory_rows_equal"] = all(
                pd.read_parquet(tmp / "streamed" / t).equals(pd.read_parquet(tmp / "in_memory" / t))
                for t in ("sync_rounds.parquet", "sync_satellites.parquet", "flows.parquet"))
        if args.reference_hours:
            ref = {t: pd.read_parquet(tmp / "reference" / f"{t}.parquet") for t in ("sync_rounds", "sync_satellites", "flows")}
            last = int(ref["sync_rounds"]["sample"].max())
            for path in args.paths:
                if path == "in_memory":
                    continue
                checks[f"{path}_first_{hours:g}_h_equal_one_process"] = all(
                    pd.read_parquet(tmp / path / f"{t}.parquet", filters=[("sample", "<=", last)])
                    .reset_index(drop=True).equals(frame) for t, frame in ref.items())
    base = rows.get("in_memory")
    for row in rows.values():
        if base:
            row["wall_over_in_memory"] = row["wall_s"] / base["wall_s"]
            row["rss_over_in_memory"] = row["peak_rss_sum_bytes"] / base["peak_rss_sum_bytes"]
    n_sat, samples = sc.constellation.walker.total, sc.time.samples
    command = "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:])
    result = {"command": command.strip(), "scenario": str(args.scenario.relative_to(ROOT)) if args.scenario.is_relative_to(ROOT) else str(args.scenario),
              "satellites": n_sat, "samples": samples, "isl_pattern": sc.isl.pattern, "workers": args.workers,
              "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
              "paths": rows, "checks": checks}
    lines = [f"# Scale: {n_sat} satellites ({sc.isl.pattern}), {samples} samples, {args.workers} workers", "",
             f"Command: `{result['command']}`", "", f"Machine: {result['machine']}", "",
             "| path | wall [s] | peak RSS, all processes [GiB] | peak RSS, largest process [GiB] | wall / in-memory | RSS / in-memory |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        ratios = [f"{row[k]:.2f}" if k in row else "–" for k in ("wall_over_in_memory", "rss_over_in_memory")]
        lines.append(f"| {name} | {row['wall_s']:.1f} | {row['peak_rss_sum_bytes'] / 2**30:.2f} | "
                     f"{row['peak_rss_largest_bytes'] / 2**30:.2f} | {ratios[0]} | {ratios[1]} |")
    lines += ["", "Checks: " + ", ".join(f"{k} = {v}" for k, v in checks.items())]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "scale" if args.scenario == SCENARIO else args.scenario.stem
    write_json(args.out / f"{stem}.json", result)
    atomic_write_text(args.out / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

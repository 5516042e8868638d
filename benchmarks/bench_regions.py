"""Benchmark: 100 regions at once on the Table A1 shell, their flows sharing the ISLs.

    python benchmarks/bench_regions.py [--scenario scenarios/many_regions.yaml] [--workers 2]
                                       [--out results/benchmarks]

Runs, each as a fresh process with its process tree's memory sampled every 0.1 s
(:func:`bench_scale.monitored`):

- ``regions``: the scenario as it is (100 regions over land, 8 participants each, 1000 satellites,
  12 h at 1 min, flows of all regions sharing every ISL direction max-min fairly);
- ``one region``, the baseline measured in the same run: the same scenario with ``regions: null``
  (its one default region), i.e. today's single-group run.

Reported: wall time, peak RSS, the ratio to the baseline and the time per region. Results:
``results/benchmarks/regions.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_scale import monitored  # noqa: E402

from edgespacecom.outputs import atomic_write_text, write_json  # noqa: E402

SCENARIO = ROOT / "scenarios" / "many_regions.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = [sys.executable, "-m", "edgespacecom", "-q", "run", str(args.scenario), "--workers", str(args.workers)]
        for name, extra in (("regions", []), ("one region", ["--set", "regions=null"])):
            print(f"{name}: running ...", flush=True)
            rows[name] = monitored(run + ["--out", str(tmp / name.replace(" ", "_"))] + extra)
            rows[name]["summary"] = json.loads((tmp / name.replace(" ", "_") / "summary.json").read_text())
            print(f"{name}: {rows[name]['wall_s']:.1f} s, peak RSS {rows[name]['peak_rss_sum_bytes'] / 2**30:.2f} GiB",
                  flush=True)
    summary = rows["regions"]["summary"]
    n_regions = summary["regions"]
    base = rows["one region"]["wall_s"]
    command = ("python benchmarks/bench_regions.py " + " ".join(sys.argv[1:])).strip()
    result = {"command": command, "regions": n_regions, "samples": summary["samples"],
              "satellites": summary["satellites"], "workers": args.workers,
              "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
              "wall_s": {k: v["wall_s"] for k, v in rows.items()},
              "peak_rss_sum_bytes": {k: v["peak_rss_sum_bytes"] for k, v in rows.items()},
              "regions_over_one_region": rows["regions"]["wall_s"] / base,
              "seconds_per_region": rows["regions"]["wall_s"] / n_regions,
              "sync_round_s": summary["sync_round_s"], "sync_round_alone_s": summary["sync_round_alone_s"],
              "slowdown": summary["slowdown"], "flows_on_shared_links_share": summary["flows_on_shared_links_share"],
              "peak_sessions_on_a_link": summary["peak_sessions_on_a_link"]}
    lines = [f"# Many regions: {n_regions} regions x {summary['participants']} participants, "
             f"{summary['satellites']} satellites, {summary['samples']} samples, {args.workers} workers", "",
             f"Command: `{command}`", "", f"Machine: {result['machine']}", "",
             "| run | wall [s] | peak RSS, all processes [GiB] | wall / one region |", "|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['wall_s']:.1f} | {row['peak_rss_sum_bytes'] / 2**30:.2f} | {row['wall_s'] / base:.1f} |")
    lines += ["", "| payload [KiB] | T_round, shared ISLs, mean [ms] | T_round alone, mean [ms] | slowdown mean | slowdown max |",
              "|---|---|---|---|---|"]
    for key, v in summary["sync_round_s"].items():
        lines.append(f"| {key} | {v['mean'] * 1e3:.2f} | {summary['sync_round_alone_s'][key]['mean'] * 1e3:.2f} | "
                     f"{summary['slowdown'][key]['mean']:.4f} | {summary['slowdown'][key]['max']:.3f} |")
    lines += ["", f"Flows crossing a link direction another region uses: {summary['flows_on_shared_links_share']:.1%}; "
                  f"at most {summary['peak_sessions_on_a_link']} regions on one link direction at once."]
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "regions.json", result)
    atomic_write_text(args.out / "regions.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

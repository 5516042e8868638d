"""Interchange: a scenario's constellation as TLEs, and its ISL graph per time step as edge lists.

``edgespacecom export tle SCENARIO --out FILE`` writes the constellation's SGP4 element sets in
the standard two-line format (three-line, with a name line), through ``sgp4.exporter`` (the
format's rounding: angles to 1e-4°, mean motion to 1e-8 rev/day, the epoch to 1e-8 day, so the
positions read back agree to tens of metres). ``constellation.tle_file`` reads it back.

``edgespacecom export isl SCENARIO --out DIR`` writes, in the manner of Hypatia's satgenpy (one
file per concept, plain columns), for the scenario's window and ISL rule:

- ``satellites.csv``: ``satellite`` (the index every other file uses), ``name``;
- ``samples.csv``: ``sample``, ``time_utc`` (ISO 8601, UTC), ``t_s`` (seconds from the start);
- ``isl_edges.parquet`` (or ``.csv``): one row per link and sample — ``sample``, ``sat_a`` <
  ``sat_b``, ``distance_km``, ``light_delay_s`` (d/c), ``rate_bps`` (the link budget's
  effective rate B·log2(1 + SNR)·(1 − δ) at that distance), sorted by sample, then pair.

Links follow the scenario's ``isl`` rule (the pattern, distance and the line of sight above the
Earth plus the margin, a terminal limit) exactly as the simulator uses them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .outputs import atomic_write_text, write_table

EDGE_COLUMNS = ("sample", "sat_a", "sat_b", "distance_km", "light_delay_s", "rate_bps")


def tle_text(scenario) -> str:
    """The scenario's constellation at its start time as three-line element sets."""
    from sgp4.exporter import export_tle

    from .orbits import constellation_satellites

    sats = constellation_satellites(scenario.constellation, scenario.time.start)
    lines = []
    for k, sat in enumerate(sats):
        line1, line2 = export_tle(sat.model)
        lines += [(sat.name or f"SAT-{k:04d}")[:24], line1, line2]  # the names the ephemeris gives them
    return "\n".join(lines) + "\n"


def write_tle(scenario, out: Path) -> Path:
    """Write :func:`tle_text` to ``out`` atomically."""
    return atomic_write_text(out, tle_text(scenario))


def isl_edges(positions_km: np.ndarray, isl, link, speed_of_light_m_s: float, constellation=None) -> pd.DataFrame:
    """Every ISL at every sample of ``positions_km`` (K, N, 3) as the rows of ``isl_edges``."""
    from .links import link_rate_bps, propagation_delay_s
    from .topology import IslRule

    rule = IslRule.from_config(isl, constellation)
    parts = []
    for k in range(len(positions_km)):
        links = rule.links(positions_km[k])
        parts.append(pd.DataFrame({
            "sample": np.full(len(links), k, dtype=np.int64), "sat_a": links.i, "sat_b": links.j,
            "distance_km": links.distance_km,
            "light_delay_s": propagation_delay_s(links.distance_km, speed_of_light_m_s),
            "rate_bps": link_rate_bps(links.distance_km, link),
        }))
    if not parts:
        return pd.DataFrame(columns=list(EDGE_COLUMNS))
    return pd.concat(parts, ignore_index=True)


def write_isl(scenario, out: Path, fmt: str = "parquet") -> dict:
    """Write the three files of the ISL export under ``out``; returns their paths and row counts."""
    from .orbits import load_ephemeris
    from .progress import stage

    eph = load_ephemeris(scenario.constellation, scenario.time, scenario.compute.cache_dir)
    stage(f"export: {eph.satellites} satellites x {eph.samples} samples, ISLs within {scenario.isl.d_max_km:g} km")
    edges = isl_edges(eph.positions_km, scenario.isl, scenario.link, scenario.network.speed_of_light_m_s,
                      scenario.constellation)
    times = pd.to_datetime(eph.times_utc)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "satellites.csv", pd.DataFrame({"satellite": np.arange(eph.satellites), "name": eph.names}))
    write_table(out / "samples.csv", pd.DataFrame({
        "sample": np.arange(eph.samples), "time_utc": times.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "t_s": (times - times[0]).total_seconds()}))
    edges_path = out / f"isl_edges.{fmt}"
    write_table(edges_path, edges)
    return {"satellites": eph.satellites, "samples": eph.samples, "edges": len(edges), "files": [
        str(out / "satellites.csv"), str(out / "samples.csv"), str(edges_path)]}

"""Print docs/results.md's Figure A2 tables (G_down per downlink and priority policy) from a sweep's table.

    python tools/gdown_table.py [RUN_DIR]     (default: results/paper_gdown/)

Reads ``sweep.csv``: per (windows a day, rate), the regime under the fixed policy, the old count of every
delivered bit, decodable G_down simulated / bottleneck model per policy, and the balanced ideal where
both worlds are downlink-limited. A sweep over the rate alone (``results/geometric_gdown``, the target's
share of the downlink in bit/s) prints the "Figure A2 twice" layout: one row per rate.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

POLICIES = ("fixed", "rotate", "backlog")


def _pct(v: float, minus: str) -> str:
    """A ratio as a signed percentage; ``minus`` is the sign's typesetting (the two docs tables differ)."""
    return f"{100 * v:+.1f} %".replace("-", minus)


def _points(sweep: pd.DataFrame, keys: list[str], minus: str):
    """Per point of ``keys`` with every policy: (key values, the fixed policy's row, its cells as text:
    regime, delivered, "simulated / model" per policy, and the balanced ideal where both worlds are
    downlink-limited)."""
    for key, g in sweep.sort_values(keys).groupby(keys, sort=False):
        by = {r["dlrc.priority"]: r for _, r in g.iterrows()}
        if not set(POLICIES) <= set(by):
            continue
        f = by["fixed"]
        cells = " | ".join(f"{_pct(by[p]['g_down_simulated'], minus)} / {_pct(by[p]['g_down_analytic'], minus)}"
                           for p in POLICIES)
        ideal = _pct(f["g_down_balanced_ideal"], minus) if f["g_down_regime"] == "D:downlink B:downlink" else "—"
        yield key, f["g_down_regime"], _pct(f["g_down_delivered"], minus), cells, ideal


def table(sweep: pd.DataFrame) -> str:
    """One row per (windows a day, rate [Mbit/s]): the paper's G_down sweep."""
    out = ["| N_w | x [Mbit/s] | regime (fixed) | fixed, delivered bits (old count) | fixed: decodable simulated / model "
           "| rotate | backlog | balanced ideal |", "|---|---|---|---|---|---|---|---|"]
    for (rate, windows), regime, delivered, cells, ideal in _points(sweep, ["ground.rate_bps", "ground.downlink.windows_per_day"], "-"):
        out.append(f"| {int(windows)} | {rate / 1e6:g} | {regime} | {delivered} | {cells} | {ideal} |")
    return "\n".join(out)


def table_by_rate(sweep: pd.DataFrame) -> str:
    """One row per downlink rate [bit/s] (a sweep that does not vary the windows)."""
    out = ["| x [bit/s] | regime (fixed) | fixed: decodable simulated / model | rotate | backlog "
           "| fixed, delivered bits | balanced ideal |", "|---|---|---|---|---|---|---|"]
    for (rate,), regime, delivered, cells, ideal in _points(sweep, ["ground.rate_bps"], "−"):
        out.append(f"| {rate:g} | {regime} | {cells} | {delivered} | {ideal} |")
    return "\n".join(out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else Path("results/paper_gdown")
    sweep = pd.read_csv(root / "sweep.csv")
    print(table(sweep) if "ground.downlink.windows_per_day" in sweep else table_by_rate(sweep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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


def _pct(v: float, minus: str = "-") -> str:
    """A ratio as a signed percentage; ``minus`` is the sign's typesetting (the two docs tables differ)."""
    return f"{100 * v:+.1f} %".replace("-", minus)


def table(sweep: pd.DataFrame) -> str:
    out = ["| N_w | x [Mbit/s] | regime (fixed) | fixed, delivered bits (old count) | fixed: decodable simulated / model "
           "| rotate | backlog | balanced ideal |", "|---|---|---|---|---|---|---|---|"]
    keys = ["ground.rate_bps", "ground.downlink.windows_per_day"]
    for (rate, windows), g in sweep.sort_values(keys).groupby(keys, sort=False):
        by = {r["dlrc.priority"]: r for _, r in g.iterrows()}
        if not set(POLICIES) <= set(by):
            continue
        f = by["fixed"]
        cells = [f"{_pct(by[p]['g_down_simulated'])} / {_pct(by[p]['g_down_analytic'])}" for p in POLICIES]
        ideal = _pct(f["g_down_balanced_ideal"]) if f["g_down_regime"] == "D:downlink B:downlink" else "—"
        out.append(f"| {int(windows)} | {rate / 1e6:g} | {f['g_down_regime']} | {_pct(f['g_down_delivered'])} | "
                   f"{' | '.join(cells)} | {ideal} |")
    return "\n".join(out)


def table_by_rate(sweep: pd.DataFrame) -> str:
    """One row per downlink rate [bit/s] (a sweep that does not vary the windows)."""
    out = ["| x [bit/s] | regime (fixed) | fixed: decodable simulated / model | rotate | backlog "
           "| fixed, delivered bits | balanced ideal |", "|---|---|---|---|---|---|---|"]
    for rate, g in sweep.sort_values("ground.rate_bps").groupby("ground.rate_bps", sort=False):
        by = {r["dlrc.priority"]: r for _, r in g.iterrows()}
        if not set(POLICIES) <= set(by):
            continue
        f = by["fixed"]
        cells = [f"{_pct(by[p]['g_down_simulated'], '−')} / {_pct(by[p]['g_down_analytic'], '−')}" for p in POLICIES]
        ideal = _pct(f["g_down_balanced_ideal"], "−") if f["g_down_regime"] == "D:downlink B:downlink" else "—"
        out.append(f"| {rate:g} | {f['g_down_regime']} | {' | '.join(cells)} | {_pct(f['g_down_delivered'], '−')} | {ideal} |")
    return "\n".join(out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else Path("results/paper_gdown")
    sweep = pd.read_csv(root / "sweep.csv")
    print(table(sweep) if "ground.downlink.windows_per_day" in sweep else table_by_rate(sweep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

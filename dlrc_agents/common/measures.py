"""R–D measures shared by the studies, below every one of them: R–D fronts and their interpolation,
Bjøntegaard deltas against a reference's strongest setting (image quality itself is
:mod:`.imaging`). Imports no study module, so that rd, codec_rd, multiview and the mission all use
the same definitions without importing each other."""

from __future__ import annotations

import numpy as np
import pandas as pd


def bd_pair(ref_bpp, ref_psnr, bpp, psnr) -> tuple[float | None, float | None]:
    """(BD-rate [%], BD-PSNR [dB]) of a curve against a reference (the bjontegaard package, Akima),
    over the span both cover; (None, None) where they overlap too little for an honest number."""
    import bjontegaard

    args = tuple(np.asarray(v, dtype=float) for v in (ref_bpp, ref_psnr, bpp, psnr))
    # A reference spans far wider than a λ ladder, so the package's overlap test (against the union)
    # is off; instead the reference must cover half of the ladder's own PSNR range (BD-rate is an
    # integral over PSNR) and half of its log-rate range (BD-PSNR): else the delta is extrapolation.
    def covered(ref, own) -> float:
        lo, hi = max(ref.min(), own.min()), min(ref.max(), own.max())
        return max(hi - lo, 0.0) / max(own.max() - own.min(), 1e-12)
    if covered(args[1], args[3]) < 0.5 or covered(np.log(args[0]), np.log(args[2])) < 0.5:
        return None, None
    try:
        rate = float(bjontegaard.bd_rate(*args, method="akima", require_matching_points=False, min_overlap=0))
        dist = float(bjontegaard.bd_psnr(*args, method="akima", require_matching_points=False, min_overlap=0))
    except Exception:
        return None, None
    return rate, dist


#: The column that tells a reference codec's configurations apart (one R–D curve each).
REFERENCE_SETTINGS = ("chroma", "mct")


def strongest_anchor(ref_rows: pd.DataFrame, bpp, psnr) -> tuple[float | None, float | None, object]:
    """(BD-rate, BD-PSNR, setting) of a curve against the reference's strongest configuration: BD is
    taken against each configuration's own curve (JPEG 4:2:0 and 4:4:4, JPEG 2000 with and without
    MCT) and the one with the highest BD-rate is kept. Not against a Pareto envelope of the
    configurations together: two settings at almost the same rate make a staircase that Akima
    interpolation turns into an overshoot (a BD-PSNR of −6.7 dB beside a BD-rate of −23 % on one
    256² patch pair)."""
    setting = next((c for c in REFERENCE_SETTINGS if c in ref_rows.columns), None)
    groups = ref_rows.groupby(setting) if setting else [(None, ref_rows)]
    best = (None, None, None)
    for value, g in groups:
        front = pareto_front(g)
        if len(front) < 2:
            continue
        rate, dist = bd_pair(front["bpp"], front["psnr"], bpp, psnr)
        if rate is not None and (best[0] is None or rate > best[0]):
            best = (rate, dist, value.item() if hasattr(value, "item") else value)
    return best


def pareto_front(points: pd.DataFrame, x: str = "bpp", y: str = "psnr") -> pd.DataFrame:
    """Rows not dominated (lower or equal bpp and higher PSNR) by another, sorted by bpp."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    best = -np.inf
    keep = []
    for position, value in enumerate(ordered[y]):  # by position: a concatenated table repeats index labels
        if value > best:
            keep.append(position)
            best = value
    return ordered.iloc[keep]


def interpolate_at(front: pd.DataFrame, bpp: float, y: str = "psnr") -> float | None:
    """``y`` of the front at ``bpp``, linear in log-rate (as the BD deltas' fits are); None outside the
    front's bpp range. PSNR is concave in rate: interpolating linearly in bpp between points about 2×
    apart under-estimates the reference between them and flatters the codec compared with it."""
    xs, ys = front["bpp"].to_numpy(), front[y].to_numpy()
    if not len(xs) or bpp < xs[0] or bpp > xs[-1] or bpp <= 0 or np.any(xs <= 0):  # empty: no finite point
        return None
    return float(np.interp(np.log(bpp), np.log(xs), ys))

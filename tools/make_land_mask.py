"""Derive the package's coarse land mask (edgespacecom/datasets/land_mask_0p5deg.npz) from GLOBE.

    pip install global-land-mask==1.0.0   # only to regenerate; the package ships the result
    python tools/make_land_mask.py

Source: the ``global-land-mask`` package (MIT licence, Todd Karin), whose 1 km mask is derived
from NOAA NGDC's GLOBE digital elevation model (public domain). Its mask is a (21600, 43200)
boolean array, True over the ocean (rows from 90°N, 1/120° steps) that takes 930 MB in memory, too much to load in a
simulation run, so the simulator ships this reduction: a 0.5° cell is land when at least half of
its 1 km pixels are. Rows run from 90°S (row 0: -90..-89.5) to 90°N, columns from 180°W.
"""

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "edgespacecom" / "datasets" / "land_mask_0p5deg.npz"
CELL = 60  # 1/120° pixels per 0.5° cell


def main() -> None:
    from global_land_mask import globe

    ocean, lat = globe._mask, globe._lat  # noqa: SLF001 - True over the ocean; no other handle on it
    rows = []
    for r in range(0, ocean.shape[0], CELL):  # strip by strip: the fraction of ocean in each cell
        strip = ocean[r:r + CELL].reshape(CELL, ocean.shape[1] // CELL, CELL)
        rows.append(strip.mean(axis=(0, 2)) <= 0.5)
    land = np.array(rows)
    if lat[0] > lat[-1]:  # rows from the north: flip to rows from 90°S
        land = land[::-1]
    np.savez_compressed(OUT, land=np.packbits(land, axis=1), shape=np.array(land.shape), step_deg=np.array(0.5))
    print(f"{OUT}: {land.shape}, land fraction {land.mean():.3f}")


if __name__ == "__main__":
    main()

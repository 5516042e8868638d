"""How much of a band set's held-out part lies outside the N-band models' normalisation range, and
the PSNR that clipping alone allows (no coding at all), with the same peak as band_sets_rd.csv.

Run from the repository root after `make -j2 models-multispectral`:
    python results/codec_rd_multispectral/clip_ceiling.py > results/codec_rd_multispectral/clip_ceiling.csv
"""

import numpy as np

from dlrc_agents.codecs.registry import load_codec
from dlrc_agents.common.data import read_band_set

SETS = {  # band count: (band set of scenarios/codec_rd_multispectral.yaml, rows)
    1: (["eo:segmentation/spacenet_pan_buildings/sample_geotiff.tif"], (704, 896)),
    4: (["eo:segmentation/sentinel2_oncloudn_cloud/chip_5/B0*.tif"], None),
    13: (["eo:multispectral/sentinel2_sen1floods11/*_S2Hand.tif"], (384, 512)),
}

print("bands,lambda,fraction_above_range,fraction_below_range,clip_only_psnr_db")
for bands, (files, rows) in SETS.items():
    raw = read_band_set(files, rows=rows)
    for lmbda in (0.0067, 0.0483):  # the shipped band models
        norm = load_codec("bmshj2018-hyperprior", lmbda=lmbda, bands=bands).bands
        lo, hi = np.asarray(norm.offset), np.asarray(norm.offset) + np.asarray(norm.scale)
        mse = np.mean((raw.astype(float) - np.clip(raw, lo, hi)) ** 2)
        psnr = float("inf") if mse == 0 else 10 * np.log10(float(raw.max()) ** 2 / mse)
        print(f"{bands},{lmbda},{np.mean(raw > hi):.4f},{np.mean(raw < lo):.4f},{psnr:.2f}")

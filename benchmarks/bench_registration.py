"""Choose predict mode's registration window on the validation split, not on the Pléiades views.

    python benchmarks/bench_registration.py [--windows 32 48 64 96 128] [--out DIR]

``calibration: registered`` fits a block-wise displacement field by phase correlation over a window of
at least :data:`dlrc_agents.dlrc.predict.WINDOW` pixels. The Pléiades multi-view sets are evaluation
data, so the window is chosen here: on the validation rows (512–703) of the panchromatic SpaceNet tile
(WorldView, 0.5 m; the 1-band model trains on rows 0–511), a second "view" is the strip resampled
through a smooth random displacement field (a Gaussian-filtered random field, σ 40 px, scaled to an
amplitude of 2, 4 or 8 px: the parallax a constant-height orthorectification leaves) with independent
noise (1 % of the range) and a 5 % gain, on the same grid. Each pair is coded in predict mode with the
registered calibration (every byte of both streams counted, decoded from bytes and checked identical to
the codec alone) for each candidate window, four fields per amplitude. The baseline, measured in the same
run on the same pairs, is the plain (unregistered) prediction: each window's saving is against it, and
the window with the largest mean saving is chosen. Printed, and written to ``DIR`` (default ``results/benchmarks/registration_window``):
``points.csv`` and ``summary.json`` (the command, the chosen window, provenance).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlrc_agents.codecs.registry import load_codec  # noqa: E402
from dlrc_agents.common.data import scene_names  # noqa: E402
from dlrc_agents.dlrc import predict  # noqa: E402
from dlrc_agents.dlrc.onboard import DLRCConfig, encode_group  # noqa: E402
from dlrc_agents.dlrc.reconstructor import reconstruct  # noqa: E402
from edgespacecom.outputs import write_json, write_table  # noqa: E402
from edgespacecom.provenance import provenance_of  # noqa: E402

PAN = "eo:segmentation/spacenet_pan_buildings/sample_geotiff.tif"
VALIDATION_ROWS = (512, 704)
AMPLITUDES_PX = (2.0, 4.0, 8.0)
FIELDS = 4


def displaced(image: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` (H, W) resampled through a smooth random displacement field of the given amplitude [px],
    with a 5 % gain and independent noise of 1 % of its range."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    H, W = image.shape
    field = [gaussian_filter(rng.normal(size=(H, W)), 40) for _ in range(2)]
    field = [amplitude * f / np.abs(f).max() for f in field]
    r, c = np.mgrid[0:H, 0:W].astype(np.float64)
    out = map_coordinates(image, [r + field[0], c + field[1]], order=3, mode="nearest") * 1.05
    return out + rng.normal(0.0, 0.01 * float(np.ptp(image)), out.shape)


def coded_bytes(codec, images: dict, calibration: str) -> tuple[int, bool]:
    group = encode_group(codec, images, DLRCConfig(mode="predict", calibration=calibration),
                         origins={s: (0, 0) for s in images})
    decoded = reconstruct(codec, list(group.streams.values()))
    exact = all(torch.equal(decoded[s]["y_tilde"], group.latents[s].y_hat[0]) for s in images)
    return sum(len(b) for b in group.streams.values()), exact


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, nargs="+", default=[32, 48, 64, 96, 128])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "registration_window")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    started = dt.datetime.now(dt.timezone.utc)
    import rasterio

    path = next(iter(scene_names([PAN]).values()))
    with rasterio.open(path) as src:
        strip = src.read(1)[VALIDATION_ROWS[0]:VALIDATION_ROWS[1]].astype(np.float64)
    strip = strip[:, :strip.shape[1] // 64 * 64]
    codec = load_codec("bmshj2018-hyperprior", lmbda=0.0067, bands=1)
    rng = np.random.default_rng(0)
    rows = []
    default = predict.WINDOW
    for amplitude in AMPLITUDES_PX:
        for k in range(FIELDS):
            other = displaced(strip, amplitude, rng)
            images = {0: codec.bands.to_model(strip[:, :, None]), 1: codec.bands.to_model(other[:, :, None])}
            plain, exact = coded_bytes(codec, images, "none")
            row = {"amplitude_px": amplitude, "field": k, "plain_bytes": plain, "plain_exact": exact}
            for w in args.windows:
                predict.WINDOW = w
                try:
                    row[f"registered_{w}_bytes"], row[f"registered_{w}_exact"] = coded_bytes(codec, images, "registered")
                finally:
                    predict.WINDOW = default
            rows.append(row)
            print({k_: v for k_, v in row.items() if not k_.endswith("exact")}, flush=True)
    table = pd.DataFrame(rows)
    saving = {w: float((1 - table[f"registered_{w}_bytes"] / table["plain_bytes"]).mean()) for w in args.windows}
    chosen = max(saving, key=saving.get)
    exact = bool(table[[c for c in table if c.endswith("exact")]].all().all())
    lines = [f"window {w:4d} px: {100 * s:+.2f} % of the pair's bytes against the plain prediction" for w, s in saving.items()]
    print("\n".join(lines) + f"\nchosen: {chosen} px (every stream decoded exactly: {exact})")
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(args.out / "points.csv", table)
    summary = {"command": "python benchmarks/bench_registration.py " + " ".join(argv or sys.argv[1:]),
               "data": f"{PAN} rows {VALIDATION_ROWS[0]}-{VALIDATION_ROWS[1] - 1} (validation)",
               "amplitudes_px": list(AMPLITUDES_PX), "fields_per_amplitude": FIELDS,
               "saving_vs_plain_prediction": {str(w): s for w, s in saving.items()},
               "chosen_window_px": chosen, "decode_exact": exact}
    summary["provenance"] = provenance_of({"command": summary["command"]}, {"pan": path}, started)
    write_json(args.out / "summary.json", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What limits multiview_pleiades' saving (docs/results.md, "Real simultaneous multi-view captures").

    python tools/multiview_limits.py [--lambda 0.0067] > results/multiview_pleiades/limits.txt

For each set with full overlap (Marseille, Giza; Ventoux's 18 % overlap is its own limit), on the views as
the scenario grids and corrects them:

- per pair of views, how alike they are on their common ground (PSNR of the normalised tiles), raw,
  after the 64-pixel block field predict mode's ``registered`` calibration fits, and with a gain and
  bias on top (view-angle radiometry); and the block shifts (parallax and the correction's error);
- each view's stream in registered predict mode, predicting from the peers' *decoded* tiles (what the
  ground can rebuild: the real mode) and, as a bound the ground cannot reach, from their *uncompressed*
  tiles (the peers' synthesis swapped for the captures); bytes against the codec alone's y and z strings.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlrc_agents.codecs.registry import load_codec  # noqa: E402
from dlrc_agents.dlrc import onboard  # noqa: E402
from dlrc_agents.dlrc.onboard import DLRCConfig, encode_group  # noqa: E402
from dlrc_agents.dlrc.predict import fit_registration, warp  # noqa: E402
from dlrc_agents.studies.multiview import common_window, grid_set, view_sets  # noqa: E402
from edgespacecom.config import load_scenario  # noqa: E402


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a - b) ** 2)))


def pair_likeness(g, a: int, b: int, lo: float, hi: float, block: int = 64) -> str:
    w = common_window(g.tiles[a], g.tiles[b])
    A = np.clip((g.images[a][w[0], w[1]] - lo) / (hi - lo), 0, 1)
    B = np.clip((g.images[b][w[2], w[3]] - lo) / (hi - lo), 0, 1)
    h, ww = (A.shape[0] // 16) * 16, (A.shape[1] // 16) * 16
    A, B = A[:h, :ww], B[:h, :ww]
    x, frame = torch.from_numpy(B)[None, None].float(), torch.from_numpy(A)[None, None].float()
    reg = fit_registration(x, frame, np.ones((h // 16) * (ww // 16), bool), block)
    warped = warp(frame, reg)[0, 0].numpy()
    d = np.hypot(reg.dy, reg.dx) / 4  # the field is in quarter pixels
    # view-angle radiometry: what a gain and a bias (least squares, over the whole common ground) add
    gain, bias = np.polyfit(warped.ravel(), B.ravel(), 1)
    return (f"views {a + 1}->{b + 1} on {h}x{ww} px: raw {_psnr(A, B):.1f} dB, registered {_psnr(warped, B):.1f} dB, "
            f"registered with gain {gain:.3f} and bias {bias:+.4f} {_psnr(gain * warped + bias, B):.1f} dB; "
            f"block shifts max {d.max():.1f} px, median {np.median(d):.1f} px")


def streams(codec, g, cfg, images: dict, uncompressed: bool) -> dict:
    """{sat: bytes of its stream} in ``cfg``'s predict mode, from decoded or (the bound) uncompressed peers."""
    origins = {s: t.origin for s, t in g.tiles.items()}
    real = onboard._decoded_images
    if uncompressed:  # the bound: the peers' captures in place of what their streams decode to
        onboard._decoded_images = lambda codec_, y_flat, owners, C, H, W: {u: images[u] for u in owners if u in y_flat}
    try:
        group = encode_group(codec, images, cfg, origins=origins, preferred=g.peers)
    finally:
        onboard._decoded_images = real
    return {s: len(group.streams[s]) for s in images}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lambda", dest="lmbda", type=float, default=0.0067)
    ap.add_argument("--scenario", default=str(ROOT / "edgespacecom/scenarios/multiview_pleiades.yaml"))
    args = ap.parse_args(argv)
    sc = load_scenario(args.scenario)
    codec = load_codec(sc.codec.architecture, lmbda=args.lmbda, bands=1)
    cfg = replace(DLRCConfig(**sc.dlrc.core()), mode="predict", calibration="registered")
    print(f"# python tools/multiview_limits.py --lambda {args.lmbda:g}")
    for vs in view_sets(sc):
        if vs.dem is not None:
            continue  # Ventoux: 18 % overlap
        g = grid_set(vs, sc)
        print(f"{vs.name}: corrected against {g.peers}; residual {', '.join(f'{v:.2f}' for v in g.residual_px.values())} px")
        lo, hi = np.percentile(g.images[0], [0.1, 99.9])
        for a, b in itertools.combinations(sorted(g.images), 2):
            print("  " + pair_likeness(g, a, b, lo, hi))
        images = {s: codec.bands.to_model(im[:, :, None]) for s, im in g.images.items()}
        alone = {s: sum(len(st[0]) for st in codec.model.compress(x)["strings"]) for s, x in images.items()}
        dec = streams(codec, g, cfg, images, uncompressed=False)
        unc = streams(codec, g, cfg, images, uncompressed=True)
        for s in alone:
            print(f"  view {s + 1}: alone {alone[s]} B (y+z); predicted from decoded peers {dec[s]} B, "
                  f"from uncompressed peers {unc[s]} B")
        tot = sum(alone.values())
        print(f"  set: {100 * (1 - sum(dec.values()) / tot):.1f} % saved from decoded peers, "
              f"{100 * (1 - sum(unc.values()) / tot):.1f} % from uncompressed (stream bytes against y+z alone)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

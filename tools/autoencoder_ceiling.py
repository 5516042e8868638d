"""What bounds an N-band model's quality at high rates: its transforms, or its quantisation?

    python tools/autoencoder_ceiling.py --band-set "eo:segmentation/sentinel2_oncloudn_cloud/chip_4/B0*.tif" \
        CHECKPOINT [CHECKPOINT ...] > results/training/candidates/high_rate_4band/ceiling.txt

For each checkpoint, on the band set (PSNR over all bands, peak the band set's largest sample, as
``codec_rd``'s band-set rows):

- **coded**: compress and decompress from the bytes (what the codec delivers);
- **finer quantisation**: ŷ = round(g·y)/g for a gain g > 1 on every latent, its rate *estimated*
  from the hyperprior's Gaussian likelihoods with the scales times g (what more bits could buy
  from these transforms without retraining; no bitstream is written);
- **transform ceiling**: the synthesis of the unquantised latent, g_s(g_a(x)): no rate can do better
  with this analysis transform;
- **decoder bound**: the latent optimised freely (Adam on the MSE of g_s(y), from g_a(x)): what this
  synthesis transform can reproduce at all, whatever the encoder.

When the last two sit close together and below the quality wanted, more λ or a better encoder cannot
help: the synthesis transform (its width and training) is the limit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlrc_agents.codecs.jpeg2000 import psnr as psnr_db  # noqa: E402
from dlrc_agents.codecs.registry import load_checkpoint  # noqa: E402
from dlrc_agents.common.data import read_band_set  # noqa: E402


def report(path: str, raw: np.ndarray, gains: list[float], steps: int) -> list[str]:
    codec = load_checkpoint(path)
    model, bands = codec.model.eval(), codec.bands
    peak, samples = float(raw.max()), raw.size
    x = bands.to_model(raw)
    to_raw = lambda t: bands.to_raw(t.detach().clamp(0, 1), raw.dtype)  # noqa: E731
    lines = [f"{path} (λ {codec.lmbda:g})"]
    with torch.no_grad():
        out = model.compress(x)
        decoded = model.decompress(out["strings"], out["shape"])["x_hat"]
        nbytes = sum(len(s[0]) for s in out["strings"])
        lines.append(f"  coded from bytes      {8 * nbytes / samples:.3f} bits/sample  {psnr_db(raw, to_raw(decoded), peak):.2f} dB")
        y = model.g_a(x)
        z_hat, z_likelihoods = model.entropy_bottleneck(model.h_a(torch.abs(y)))
        z_bits = float(-torch.log2(z_likelihoods).sum())
        scales = model.h_s(z_hat)
        for g in gains:
            _, y_likelihoods = model.gaussian_conditional(y * g, scales * g)
            bits = float(-torch.log2(y_likelihoods).sum()) + z_bits
            y_hat = torch.round(y * g) / g
            lines.append(f"  quantisation step 1/{g:<4g} {bits / samples:.3f} bits/sample  "
                         f"{psnr_db(raw, to_raw(model.g_s(y_hat)), peak):.2f} dB (rate estimated)")
        lines.append(f"  transform ceiling     unquantised            {psnr_db(raw, to_raw(model.g_s(y)), peak):.2f} dB")
    for p in model.parameters():
        p.requires_grad_(False)
    free = y.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([free], lr=0.05)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.mean((model.g_s(free) - x) ** 2)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        lines.append(f"  decoder bound         latent optimised, {steps} Adam steps  "
                     f"{psnr_db(raw, to_raw(model.g_s(free)), peak):.2f} dB")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="N-band checkpoints (project format)")
    ap.add_argument("--band-set", action="append", required=True,
                    help="a registry name or path pattern of the band set (repeat for more)")
    ap.add_argument("--gains", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    ap.add_argument("--steps", type=int, default=300, help="Adam steps of the decoder bound")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    raw = read_band_set(args.band_set)
    print(f"# {' '.join(args.band_set)}: {raw.shape[0]}x{raw.shape[1]} px, {raw.shape[2]} bands, peak {int(raw.max())}")
    for path in args.checkpoints:
        print("\n".join(report(path, raw, args.gains, args.steps)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

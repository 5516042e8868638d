"""Images as tensors and back, and their quality: what every codec, study and the mission measure
with, below all of them (numpy, torch, pytorch-msssim only)."""

from __future__ import annotations

import numpy as np
import torch
from pytorch_msssim import ms_ssim


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 → (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None] / 255.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] → (H, W, 3) uint8, as a sensor delivers it (the inverse of :func:`to_tensor`)."""
    return np.ascontiguousarray((x[0].clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).numpy())


def patch_tensor(scene: np.ndarray, y: int, x: int, size: int) -> torch.Tensor:
    return to_tensor(scene[y:y + size, x:x + size])


def quality(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[float, float]:
    """(PSNR [dB], MS-SSIM) of images in [0, 1], both quantised to integers 0..255.

    MS-SSIM (5 scales, 11-pixel window) needs both sides > 160 px; smaller images get NaN.
    """
    a = torch.round(x.clamp(0, 1) * 255.0)
    b = torch.round(x_hat.clamp(0, 1) * 255.0)
    mse = torch.mean((a - b) ** 2).item()
    psnr = float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
    if min(a.shape[-2:]) <= 160:
        return psnr, float("nan")
    return psnr, float(ms_ssim(a, b, data_range=255.0).item())

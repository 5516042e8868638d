"""Reconstructor (ground): decode every satellite's stream from bytes, copy duplicates, run g_s.

Streams are decoded in priority order. For satellite s (dense range
[offset_s, offset_s + R_s)), the assignment map is walked in raster order: a
number in its own range, met for the first time, is the next vector of its own
y string; any other number is copied from the pool of vectors already decoded
(its own earlier positions or higher-priority satellites). The result ỹ_s
goes through the synthesis transform g_s.
"""

from __future__ import annotations

import numpy as np
import torch

from .bitstream import BitstreamError, SatelliteBitstream
from .filter import decode_hyper, decode_positions


@torch.no_grad()
def reconstruct(codec, streams, synthesize: bool = True) -> dict:
    """{sat: {'y_tilde': (C, H, W), 'x_hat': (1, 3, H, W) or None}} from raw stream bytes."""
    parsed = [SatelliteBitstream.from_bytes(b, expect_fingerprint=codec.fingerprint) for b in streams]
    if not parsed:
        raise BitstreamError("no bitstream to decode")
    by_rank = sorted(parsed, key=lambda p: p.priority)
    if [p.priority for p in by_rank] != list(range(len(by_rank))):
        raise BitstreamError(f"priority ranks {[p.priority for p in by_rank]} are not 0..{len(by_rank) - 1}: a stream is missing or duplicated")
    maps = {}
    for p in parsed:
        maps.update(p.maps)
    pool = []  # list of (C, n) tensors in dense order
    decoded = 0
    out = {}
    for p in by_rank:
        if p.satellite not in maps:
            raise BitstreamError(f"no assignment map for satellite {p.satellite} in the streams")
        if p.offset != decoded:
            raise BitstreamError(f"satellite {p.satellite}: offset {p.offset} does not follow the {decoded} vectors decoded so far")
        amap = maps[p.satellite]
        C, H, W = p.y_shape
        own = (amap >= p.offset) & (amap < p.offset + p.retained)
        first_positions = np.unique(amap[own], return_index=True)[1]
        positions = np.nonzero(own)[0][first_positions]  # first occurrence of each own number, raster order
        if len(positions) != p.retained or np.any(amap >= p.offset + p.retained) or np.any(amap < 0):
            raise BitstreamError(f"satellite {p.satellite}: assignment map inconsistent with its header")
        scales, means = decode_hyper(codec.model, p.z_string, p.z_shape, codec.means)
        if tuple(scales.shape[1:]) != (C, H, W):
            raise BitstreamError(f"satellite {p.satellite}: latent shape {tuple(scales.shape[1:])} differs from header {(C, H, W)}")
        own_vectors = decode_positions(codec.model, p.y_string, scales, means, np.sort(positions))
        pool.append(own_vectors)
        decoded += p.retained
        table = torch.cat(pool, dim=1)
        y_tilde = table[:, torch.as_tensor(amap, dtype=torch.long)].reshape(C, H, W)
        x_hat = codec.model.g_s(y_tilde[None]).clamp_(0, 1) if synthesize else None
        out[p.satellite] = {"y_tilde": y_tilde, "x_hat": x_hat}
    return out

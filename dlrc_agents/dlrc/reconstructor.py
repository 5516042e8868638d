"""Reconstructor (ground): decode every satellite's stream from bytes, copy duplicates, run g_s.

Two map forms. Reference maps (``map_transport: references``): each position names
its owner satellite and raster position; a stream is decoded once every satellite it
copies from is, so any set of views (complete or not) decodes.

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


def _decode_own(codec, p: SatelliteBitstream, positions: np.ndarray) -> torch.Tensor:
    C, H, W = p.y_shape
    scales, means = decode_hyper(codec.model, p.z_string, p.z_shape, codec.means)
    if tuple(scales.shape[1:]) != (C, H, W):
        raise BitstreamError(f"satellite {p.satellite}: latent shape {tuple(scales.shape[1:])} differs from header {(C, H, W)}")
    return decode_positions(codec.model, p.y_string, scales, means, positions)


def _reconstruct_references(codec, parsed: list, synthesize: bool) -> dict:
    """Streams whose maps are (owner, position) references: decode each once its owners are done."""
    pending = {p.satellite: p for p in parsed}
    if len(pending) != len(parsed):
        raise BitstreamError("two streams for the same satellite")
    y_flat: dict = {}
    out = {}
    while pending:
        progressed = False
        for sat in sorted(pending):
            p = pending[sat]
            if sat not in p.maps:
                raise BitstreamError(f"satellite {sat}: stream carries no reference map")
            C, H, W = p.y_shape
            n = H * W
            refs = p.maps[sat]
            owners, q = refs // n, refs % n
            others = set(np.unique(owners[owners != sat]).tolist())
            missing = [u for u in others if u not in y_flat and u not in pending]
            if missing:
                raise BitstreamError(f"satellite {sat} copies vectors from satellite(s) {missing} whose streams are missing")
            if any(u in pending for u in others):
                continue  # an owner is not decoded yet
            own_positions = np.nonzero((owners == sat) & (q == np.arange(n)))[0]
            if len(own_positions) != p.retained or np.any(refs < 0):
                raise BitstreamError(f"satellite {sat}: reference map inconsistent with its header")
            flat = torch.zeros(C, n)
            flat[:, torch.as_tensor(own_positions, dtype=torch.long)] = _decode_own(codec, p, own_positions)
            own_copy = (owners == sat) & (q != np.arange(n))
            if np.any(q[own_copy] >= np.nonzero(own_copy)[0]) or np.any(~np.isin(q[own_copy], own_positions)):
                raise BitstreamError(f"satellite {sat}: a copy points at a position that is not coded before it")
            idx = torch.as_tensor(np.nonzero(own_copy)[0], dtype=torch.long)
            flat[:, idx] = flat[:, torch.as_tensor(q[own_copy], dtype=torch.long)]
            for u in others:
                hit = np.nonzero(owners == u)[0]
                src = y_flat[u]
                if src.shape[1] != n:
                    raise BitstreamError(f"satellite {sat} and satellite {u} have different latent sizes")
                flat[:, torch.as_tensor(hit, dtype=torch.long)] = src[:, torch.as_tensor(q[hit], dtype=torch.long)]
            y_flat[sat] = flat
            y_tilde = flat.reshape(C, H, W)
            x_hat = codec.model.g_s(y_tilde[None]).clamp_(0, 1) if synthesize else None
            out[sat] = {"y_tilde": y_tilde, "x_hat": x_hat}
            del pending[sat]
            progressed = True
        if not progressed:
            raise BitstreamError(f"satellites {sorted(pending)} copy from each other in a cycle")
    return out


@torch.no_grad()
def reconstruct(codec, streams, synthesize: bool = True) -> dict:
    """{sat: {'y_tilde': (C, H, W), 'x_hat': (1, 3, H, W) or None}} from raw stream bytes."""
    parsed = [SatelliteBitstream.from_bytes(b, expect_fingerprint=codec.fingerprint) for b in streams]
    if not parsed:
        raise BitstreamError("no bitstream to decode")
    forms = {p.map_form for p in parsed}
    if forms == {"references"}:
        return _reconstruct_references(codec, parsed, synthesize)
    if len(forms) > 1:
        raise BitstreamError("streams of one round mix dense and reference assignment maps")
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
        own_vectors = _decode_own(codec, p, np.sort(positions))
        pool.append(own_vectors)
        decoded += p.retained
        table = torch.cat(pool, dim=1)
        y_tilde = table[:, torch.as_tensor(amap, dtype=torch.long)].reshape(C, H, W)
        x_hat = codec.model.g_s(y_tilde[None]).clamp_(0, 1) if synthesize else None
        out[p.satellite] = {"y_tilde": y_tilde, "x_hat": x_hat}
    return out

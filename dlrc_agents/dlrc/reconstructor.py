"""Reconstructor (ground): decode every satellite's stream from bytes, copy duplicates, run g_s.

Every round becomes reference maps first: each position names the satellite that codes
its vector and the raster position there. Reference maps travel as they are
(``map_transport: references``); dense maps (the paper's shared numbering) are turned into
them by :func:`dense_to_references`. A stream is then decoded once every satellite it copies
from is, so any set of views (complete or not) decodes, and ỹ_s goes through g_s:

- hyperprior family: the satellite's own vectors come from its y string at the coded
  positions (independent given z), copies from its earlier positions or other satellites;
- context codecs (autoregressive, ELIC): the codec's decoding order is walked with the
  copies written into the context (:mod:`.context`).
"""

from __future__ import annotations

import numpy as np
import torch

from .alone import check_against_model
from .bitstream import BitstreamError, DecodeBounds, SatelliteBitstream
from .context import check_plan, context_code, decode_order, decode_side, plan_from_references
from ..codecs.hyperprior import decode_hyper
from .filter import decode_positions
from .onboard import decode_predictive_stream, predictive_references


def _decode_own(codec, p: SatelliteBitstream, positions: np.ndarray) -> torch.Tensor:
    C, H, W = p.y_shape
    scales, means = decode_hyper(codec.model, p.z_string, p.z_shape, codec.means)
    if tuple(scales.shape[1:]) != (C, H, W):
        raise BitstreamError(f"satellite {p.satellite}: latent shape {tuple(scales.shape[1:])} differs from header {(C, H, W)}")
    return decode_positions(codec.model, p.y_string, scales, means, positions)


def _in_dependency_order(codec, parsed: list, refs: dict, decode_one, synthesize: bool,
                         lost: str = "error") -> dict:
    """Decode every stream once the satellites it copies from are decoded.

    ``refs``: {sat: (H·W,) owner·H·W + q}; ``decode_one(p, refs_p, y_flat)`` returns the
    satellite's ỹ (C, H, W) given the ỹ (C, H·W) of the satellites decoded so far. A satellite
    it copies from whose stream is absent raises, or with ``lost='predict'`` its positions take
    the model's prediction (``decode_one`` fills what ``y_flat`` lacks); each output then says
    how many positions were predicted (``predicted``).
    """
    if len({p.satellite for p in parsed}) != len(parsed):
        raise BitstreamError("two streams for the same satellite")
    pending = {p.satellite: p for p in parsed}
    y_flat: dict = {}
    out = {}
    while pending:
        progressed = False
        for sat in sorted(pending, key=lambda s: (pending[s].priority, s)):
            p = pending[sat]
            C, H, W = p.y_shape
            n = H * W
            r = refs[sat]
            if r.size != n or np.any(r < 0):
                raise BitstreamError(f"satellite {sat}: reference map inconsistent with its header")
            owners = r // n
            others = set(np.unique(owners[owners != sat]).tolist())
            missing = [u for u in others if u not in y_flat and u not in pending]
            if missing and lost != "predict":
                raise BitstreamError(f"satellite {sat} copies vectors from satellite(s) {missing} whose streams are missing")
            if any(u in pending for u in others):
                continue  # an owner is not decoded yet
            for u in others - set(missing):
                if y_flat[u].shape[1] != n:
                    raise BitstreamError(f"satellite {sat} and satellite {u} have different latent sizes")
            y_tilde = decode_one(p, r, y_flat)
            y_flat[sat] = y_tilde.reshape(C, n)
            x_hat = codec.model.g_s(y_tilde[None]).clamp_(0, 1) if synthesize else None
            out[sat] = {"y_tilde": y_tilde, "x_hat": x_hat, "predicted": int(np.isin(owners, missing).sum())}
            del pending[sat]
            progressed = True
        if not progressed:
            raise BitstreamError(f"satellites {sorted(pending)} copy from each other in a cycle")
    return out


def _carried_references(parsed: list) -> dict:
    refs = {}
    for p in parsed:
        if p.satellite not in p.maps:
            raise BitstreamError(f"satellite {p.satellite}: stream carries no reference map")
        refs[p.satellite] = np.asarray(p.maps[p.satellite], dtype=np.int64)
    return refs


def _hyperprior_decoder(codec):
    """decode_one for :func:`_in_dependency_order`: own vectors from the y string, then the copies."""

    def decode_one(p, refs, y_flat):
        sat = p.satellite
        C, H, W = p.y_shape
        n = H * W
        owners, q = refs // n, refs % n
        own_positions = np.nonzero((owners == sat) & (q == np.arange(n)))[0]
        if len(own_positions) != p.retained:
            raise BitstreamError(f"satellite {sat}: reference map inconsistent with its header")
        flat = torch.zeros(C, n)
        flat[:, torch.as_tensor(own_positions, dtype=torch.long)] = _decode_own(codec, p, own_positions)
        own_copy = (owners == sat) & (q != np.arange(n))
        if np.any(q[own_copy] >= np.nonzero(own_copy)[0]) or np.any(~np.isin(q[own_copy], own_positions)):
            raise BitstreamError(f"satellite {sat}: a copy points at a position that is not coded before it")
        idx = torch.as_tensor(np.nonzero(own_copy)[0], dtype=torch.long)
        flat[:, idx] = flat[:, torch.as_tensor(q[own_copy], dtype=torch.long)]
        lost = [u for u in set(np.unique(owners[owners != sat]).tolist()) if u not in y_flat]
        if lost:  # a lost stream's positions: the model's prediction, the mean of this satellite's hyperprior
            _, means = decode_hyper(codec.model, p.z_string, p.z_shape, codec.means)
            hit = torch.as_tensor(np.nonzero(np.isin(owners, lost))[0], dtype=torch.long)
            flat[:, hit] = 0.0 if means is None else means.reshape(C, n)[:, hit]  # zero-mean models predict 0
        for u in set(np.unique(owners[owners != sat]).tolist()) - set(lost):
            hit = np.nonzero(owners == u)[0]
            flat[:, torch.as_tensor(hit, dtype=torch.long)] = y_flat[u][:, torch.as_tensor(q[hit], dtype=torch.long)]
        return flat.reshape(C, H, W)

    return decode_one


def _predictive_decoder(codec):
    """decode_one for :func:`_in_dependency_order`: predictive streams (:mod:`.predict`); positions
    predicted from a lost stream take the model's prediction μ."""

    def decode_one(p, refs, y_flat):
        C, H, W = p.y_shape
        n = H * W
        owners = refs // n
        missing = {u for u in np.unique(owners[owners != p.satellite]).tolist() if u not in y_flat}
        return decode_predictive_stream(codec, p, refs, y_flat, missing).reshape(C, H, W)

    return decode_one


def dense_to_references(by_rank: list, maps: dict, family: str) -> dict:
    """Dense maps (shared numbering) → reference maps {sat: owner·H·W + q}.

    Satellite s's own numbers [offset, offset + retained) are its coded positions, met
    for the first time when its map is walked in decoding order, in increasing order.
    """
    owner_of, position_of = [], []
    refs = {}
    for p in by_rank:
        if p.satellite not in maps:
            raise BitstreamError(f"no assignment map for satellite {p.satellite} in the streams")
        if p.offset != len(owner_of):
            raise BitstreamError(f"satellite {p.satellite}: offset {p.offset} does not follow the {len(owner_of)} vectors decoded so far")
        amap = np.asarray(maps[p.satellite], dtype=np.int64)
        if amap.size != p.y_shape[1] * p.y_shape[2]:
            raise BitstreamError(f"satellite {p.satellite}: its assignment map has {amap.size} positions, its header "
                                 f"declares a {p.y_shape[1]}x{p.y_shape[2]} latent")
        order = decode_order(family, p.y_shape[1], p.y_shape[2])
        walked = amap[order]
        own = (walked >= p.offset) & (walked < p.offset + p.retained)
        numbers, first = np.unique(walked[own], return_index=True)
        positions = order[np.nonzero(own)[0][first]]
        if (len(positions) != p.retained or np.any(amap >= p.offset + p.retained) or np.any(amap < 0)
                or np.any(np.diff(np.nonzero(own)[0][first]) <= 0)):
            raise BitstreamError(f"satellite {p.satellite}: assignment map inconsistent with its header")
        owner_of.extend([p.satellite] * p.retained)
        position_of.extend(positions.tolist())
        n = amap.size
        refs[p.satellite] = np.asarray(owner_of, dtype=np.int64)[amap] * n + np.asarray(position_of, dtype=np.int64)[amap]
    return refs


def _dense_round(parsed: list) -> tuple[list, dict]:
    """Streams of a round with dense maps: (streams in priority order, all maps they carry)."""
    by_rank = sorted(parsed, key=lambda p: p.priority)
    if [p.priority for p in by_rank] != list(range(len(by_rank))):
        raise BitstreamError(f"priority ranks {[p.priority for p in by_rank]} are not 0..{len(by_rank) - 1}: "
                             "a stream is missing or duplicated")
    maps = {}
    for p in parsed:
        maps.update(p.maps)
    return by_rank, maps


def _context_decoder(codec):
    """decode_one for :func:`_in_dependency_order`: walk the decoding order with the copies in the context."""
    fam = codec.family

    def decode_one(p, r, y_flat):
        C, H, W = p.y_shape
        try:
            plan = plan_from_references(r, p.satellite, y_flat, C, p.context_fill)
        except ValueError as exc:
            raise BitstreamError(f"satellite {p.satellite}: {exc}") from None
        try:
            check_plan(plan, fam, H, W)
        except ValueError as exc:
            raise BitstreamError(f"satellite {p.satellite}: {exc}") from None
        if int(plan.coded.sum()) != p.retained:
            raise BitstreamError(f"satellite {p.satellite}: reference map inconsistent with its header")
        side = decode_side(codec.model, fam, p.z_string, p.z_shape)
        if tuple(side.shape[2:]) != (H, W):
            raise BitstreamError(f"satellite {p.satellite}: latent shape {tuple(side.shape[2:])} differs from header {(H, W)}")
        return context_code(codec.model, fam, side, plan, y_string=p.y_string)[1][0]

    return decode_one


def check_capture(parsed: list, capture: int | None = None) -> None:
    """The streams of one decode belong to one capture: the same capture id (``capture``, when the
    ground knows which it expects) and member list, each from a member, none a codec-alone stream."""
    first = parsed[0]
    for p in parsed:
        if p.codec_alone:
            raise BitstreamError(f"satellite {p.satellite}: a codec-alone stream among DLRC streams")
        if capture is not None and p.capture != capture:
            raise BitstreamError(f"satellite {p.satellite}: stream of capture {p.capture}, the ground expects {capture}")
        if p.capture != first.capture or p.members != first.members:
            raise BitstreamError(f"satellite {p.satellite}: stream of capture {p.capture} (members {list(p.members)[:8]}) "
                                 f"mixed with capture {first.capture} (members {list(first.members)[:8]})")


def parse_round(codec, streams, key: bytes | None = None, capture: int | None = None,
                bounds: DecodeBounds | None = None) -> list[SatelliteBitstream]:
    """The containers of one round, parsed and checked against ``codec``, the ground's mission
    ``key`` and the ``capture`` it expects (None: any, but one for all). A failure that comes before
    a stream's header can be read (magic, version, length, CRC) names the stream by its place."""
    parsed = []
    for i, data in enumerate(streams):
        try:
            parsed.append(SatelliteBitstream.from_bytes(data, expect_fingerprint=codec.fingerprint, key=key,
                                                        bounds=bounds))
        except BitstreamError as exc:
            if str(exc).startswith("satellite "):
                raise
            raise BitstreamError(f"stream {i + 1} of {len(streams)}: {exc}") from None
    if not parsed:
        raise BitstreamError("no bitstream to decode")
    for p in parsed:
        check_against_model(codec, p)
    check_capture(parsed, capture)
    return parsed


@torch.no_grad()
def reconstruct(codec, streams, synthesize: bool = True, lost: str = "error", key: bytes | None = None,
                capture: int | None = None, bounds: DecodeBounds | None = None) -> dict:
    """{sat: {'y_tilde': (C, H, W), 'x_hat': (1, 3, H, W) or None, 'predicted': positions}} from raw
    stream bytes. ``lost``: when a stream the others copy from is absent, 'error' raises and
    'predict' decodes the others with the model's prediction at the positions it held (the
    hyperprior mean; for context codecs flown with context_fill 'prediction', the context
    model's μ, as on board). ``key``: the ground's mission key (every stream must then carry a
    valid HMAC); ``capture``: the capture id the ground expects (None: any, but one for all); ``bounds``:
    the image sizes and member count the ground expects (:class:`~.bitstream.DecodeBounds`; default: the
    absolute pixel limit alone), checked on each header before any work."""
    return reconstruct_parsed(codec, parse_round(codec, streams, key, capture, bounds), synthesize, lost)


@torch.no_grad()
def reconstruct_parsed(codec, parsed: list, synthesize: bool = True, lost: str = "error") -> dict:
    """:func:`reconstruct` of streams :func:`parse_round` already parsed and checked (a caller that
    also needs their maps or sizes parses them once)."""
    if len({p.predictive for p in parsed}) > 1:
        raise BitstreamError("streams of one round mix predictive and copy DLRC")
    if parsed[0].predictive:
        if codec.family != "hyperprior":
            raise BitstreamError(f"{codec.architecture}: predictive streams are for the hyperprior family")
        return _in_dependency_order(codec, parsed, {p.satellite: predictive_references(p) for p in parsed},
                                    _predictive_decoder(codec), synthesize, lost)
    forms = {p.map_form for p in parsed}
    if len(forms) > 1:
        raise BitstreamError("streams of one round mix dense and reference assignment maps")
    if forms == {"dense"}:
        refs = dense_to_references(*_dense_round(parsed), codec.family)
    else:
        refs = _carried_references(parsed)
    decode_one = _hyperprior_decoder(codec) if codec.family == "hyperprior" else _context_decoder(codec)
    return _in_dependency_order(codec, parsed, refs, decode_one, synthesize, lost)

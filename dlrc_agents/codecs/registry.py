"""Codec registry over CompressAI 1.2.8 models, and the project's checkpoint format.

A codec is named by its CompressAI architecture (``bmshj2018-hyperprior``,
``mbt2018-mean``, ...) and built with the channel widths (N, M) of a CompressAI
quality level. Weights come from, in order of precedence:

- ``checkpoint: PATH``: a checkpoint written by ``edgespacecom train`` (or a
  CompressAI-style ``state_dict`` file);
- ``pretrained: true``: CompressAI's model zoo (downloads from the internet);
- otherwise the checkpoint shipped with the package (``dlrc_agents/codecs/weights/``, found
  with :mod:`importlib.resources`) for that architecture and λ, or one that
  ``edgespacecom train`` wrote to the local weights folder (``$EDGESPACECOM_WEIGHTS``,
  default the platform's user cache, ``~/.cache/edgespacecom/weights`` on Linux): a
  user's own models. ``train`` writes into the package only when told to (``make models*``).

Checkpoints are loaded with ``torch.load(..., weights_only=True)``. The project's
format is a dict ``{"format": "dlrc-checkpoint", "version": 1, "architecture",
"N", "M", "lambda", "steps", "seed", "data", "state_dict"}`` (N-band models add
``in_channels``, ``band_offset`` and ``band_scale``: :class:`BandNormalisation`) with floating-point
parameters stored in fp16 (``storage: fp16``, the default) or, for the shipped weights, in 8 bits
(``storage: int8``: every kernel of two or more dimensions as int8 codes with one fp32 scale per
leading-axis slice, :func:`pack_int8`; the rest fp16). After loading, ``update(force=True)``
rebuilds the entropy coder's CDF tables from the loaded (dequantised) weights, so encoder and
decoder always share identical tables and decoding stays bit-exact.
"""

from __future__ import annotations

import hashlib
import os
import io
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from compressai.registry import MODELS as compressai_models
from compressai.zoo import image as zoo

from dlrc_agents.codecs.gmm import Cheng2020GMM
from dlrc_agents.codecs.variable_rate import VariableRateHyperprior, level_of_lambda

from edgespacecom.cache import user_cache
from edgespacecom.outputs import atomic_write_bytes

def atomic_torch_save(path: str | Path, obj) -> Path:
    """torch.save ``obj`` to ``path`` atomically (whole file or nothing)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


from dlrc_agents.codecs.files import (SHIPPED_ARCHITECTURES, TRAIN_MULTISPECTRAL, TRAIN_SHIPPED, WEIGHTS_DIR, CodecError, checkpoint_files, checkpoint_name, lambda_tag, local_checkpoint, local_weights_dir, missing_weights, portable_name, shipped_checkpoint)
LOG = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "dlrc-checkpoint"
CHECKPOINT_VERSION = 1

#: Architectures DLRC can drive. ``family`` says how (μ, σ) of ŷ are predicted, which fixes
#: the decoding order DLRC must respect (:mod:`dlrc_agents.dlrc.context`):
#:
#: - ``hyperprior``: from z alone (any order; positions are independent);
#: - ``autoregressive``: from z and the already-decoded neighbours in raster order
#:   (a 5×5 masked convolution), one position at a time;
#: - ``checkerboard``: ELIC's channel groups in order, each group's anchors ((h + w) even)
#:   from z and the earlier groups, then its non-anchors from the anchors as well.
#:
#: ``channels``: "NM" (CompressAI's (N, M) per quality), "N" (latent width M = N, cheng2020),
#: or a fixed (N, M) (ELIC uses one setting for every λ, as in the paper).
#: ``shipped``: RGB weights of at least one λ in ``dlrc_agents/codecs/weights/`` (8-bit storage; ELIC at
#: N = 128, M = 192, narrower than the paper's, to fit the wheel); the others are trained locally
#: (``edgespacecom train``) into :func:`local_weights_dir`.
ARCHITECTURES = {
    "bmshj2018-hyperprior": {"family": "hyperprior", "means": False, "channels": "NM", "shipped": True},
    "mbt2018-mean": {"family": "hyperprior", "means": True, "channels": "NM", "shipped": True},
    "mbt2018": {"family": "autoregressive", "means": True, "channels": "NM", "shipped": True},
    "cheng2020-anchor": {"family": "autoregressive", "means": True, "channels": "N", "shipped": True},
    "cheng2020-attn": {"family": "autoregressive", "means": True, "channels": "N", "shipped": False},
    "elic2022-official": {"family": "checkerboard", "means": True, "channels": (192, 320), "shipped": True},
    "elic2022-chandelier": {"family": "checkerboard", "means": True, "channels": (192, 320), "shipped": False},
    # The second study's model (dlrc_agents.codecs.gmm): a Gaussian mixture per latent, which DLRC's single
    # Gaussian per position cannot code; the codec comparison (codec_rd, downstream) only.
    "cheng2020-gmm": {"family": "mixture", "means": True, "channels": "N", "shipped": False, "zoo": "cheng2020-attn",
                      "constructor": Cheng2020GMM, "builds_bands": True},
    # One network for the whole λ range (dlrc_agents.codecs.variable_rate): BMSHJ with Cui et al.'s gain units;
    # one checkpoint (no λ in its name) whose ``lambdas`` are its trained levels; any λ between them codes.
    "bmshj2018-hyperprior-vr": {"family": "hyperprior", "means": False, "channels": "NM", "shipped": True,
                                "zoo": "bmshj2018-hyperprior", "constructor": VariableRateHyperprior,
                                "variable_rate": True},
}

#: The families DLRC drives (:mod:`dlrc_agents.dlrc.context`); ``mixture`` codecs are compared, not deduplicated.
DLRC_FAMILIES = ("hyperprior", "autoregressive", "checkerboard")


def _spec(architecture: str) -> dict:
    if architecture not in ARCHITECTURES:
        raise CodecError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture]


def family(architecture: str) -> str:
    """'hyperprior', 'autoregressive' or 'checkerboard' (see :data:`ARCHITECTURES`)."""
    return _spec(architecture)["family"]


def channels_for_quality(architecture: str, quality: int) -> tuple[int, int]:
    """(N, M) of CompressAI's model at ``quality`` (1..8); M is the latent width."""
    channels = _spec(architecture)["channels"]
    if isinstance(channels, tuple):
        return channels
    try:
        cfg = zoo.cfgs[_spec(architecture).get("zoo", architecture)][quality]
    except KeyError:
        raise CodecError(f"no CompressAI configuration for {architecture!r} at quality {quality}") from None
    return (cfg[0], cfg[0]) if channels == "N" else tuple(cfg)


#: Architectures whose image side is one convolution in (g_a[0]) and one out (g_s[-1]), so that an
#: N-band model is the same network with those two layers widened; cheng2020-gmm builds its own
#: residual input and sub-pixel output blocks for N bands.
BAND_FLEXIBLE = ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-gmm")


def is_variable_rate(architecture: str) -> bool:
    """True for the one-network-for-every-λ architectures (:mod:`dlrc_agents.codecs.variable_rate`)."""
    return bool(_spec(architecture).get("variable_rate"))


def build_model(architecture: str, N: int, M: int, in_channels: int = 3, levels: int | None = None) -> torch.nn.Module:
    """A randomly initialised CompressAI model for images of ``in_channels`` bands (call ``update()``
    before coding). Other than 3 bands, the first analysis and last synthesis layers are rebuilt
    with CompressAI's own shapes (5×5, stride 2) for that many bands, except for architectures
    whose ``constructor`` builds its own band blocks (``builds_bands``: cheng2020-gmm)."""
    spec = _spec(architecture)
    channels = spec["channels"]
    constructor = spec.get("constructor") or zoo.model_architectures.get(architecture) or compressai_models[architecture]
    if channels == "N" and M != N:
        raise CodecError(f"{architecture}: the latent width M must equal N (got N={N}, M={M})")
    if spec.get("builds_bands"):  # its own input and output blocks for any band count
        return constructor(N=N, in_channels=in_channels)
    if spec.get("variable_rate"):
        if in_channels != 3:
            raise CodecError(f"{architecture}: RGB only")
        return constructor(N=N, M=M, **({} if levels is None else {"levels": levels}))
    model = constructor(N) if channels == "N" else constructor(N=N, M=M)
    if in_channels == 3:
        return model
    if not 1 <= in_channels <= 64:
        raise CodecError(f"{architecture}: in_channels must be 1..64, got {in_channels}")
    if architecture not in BAND_FLEXIBLE:
        raise CodecError(f"{architecture}: {in_channels}-band models are built for {', '.join(BAND_FLEXIBLE)} only")
    from compressai.models.utils import conv, deconv

    model.g_a[0] = conv(in_channels, N, kernel_size=5, stride=2)
    model.g_s[-1] = deconv(N, in_channels, kernel_size=5, stride=2)
    return model


#: How a checkpoint stores its parameters (``storage`` in its metadata).
STORAGES = ("fp16", "int8")
#: A band adapter (``edgespacecom train --adapter``): the layers an N-band model trains on top of a frozen
#: RGB model of the same architecture (its *trunk*, shipped once for every band count). The first
#: analysis convolution and its GDN, the last synthesis IGDN and convolution (where the band count
#: enters and leaves), and the hyper-latent's factorised prior (its statistics change with the data);
#: the checkpoint stores only these and names its trunk by file and tensors sha256.
ADAPTER_LAYERS = ("g_a.0.", "g_a.1.", "g_s.5.", "g_s.6.", "entropy_bottleneck.")
#: Buffers that ``update(force=True)`` rebuilds from the weights (CompressAI's entropy models).
CDF_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length")
#: Buffers that are constants of the architecture (the masked convolutions' masks: a quarter of an
#: autoregressive model's size in fp32), taken from the freshly built model on load.
REBUILT_BUFFERS = CDF_BUFFERS + (".mask",)
#: Symmetric 8-bit codes: −127..127 (−128 unused, so that the code range is symmetric about 0).
INT8_LEVELS = 127


def pack_int8(state: dict, parameters: set[str]) -> tuple[dict, dict]:
    """8-bit storage of a state dict: every floating parameter of two or more dimensions (the
    convolutions' kernels and GDN's γ, over 99 % of a model's parameters) becomes int8 codes
    round(w / s) with one fp32 scale s = max|w| / 127 per slice of its leading axis (an output
    channel of a convolution, an input channel of a transposed one); other parameters fp16;
    buffers as they are, except the entropy coder's CDF tables (:data:`CDF_BUFFERS`, 0.8 MB of a
    hyperprior model), which loading rebuilds from the weights anyway, and the masked convolutions'
    masks (constants of the architecture, :data:`REBUILT_BUFFERS`). Returns (state, {name: scales}). Written here because no maintained
    library stores plain PyTorch kernels this way for ``weights_only`` loading (torch.ao's
    quantised tensors do not pickle under ``weights_only=True`` and need quantised kernels to run)."""
    out, scales = {}, {}
    for k, v in state.items():
        v = v.detach().cpu()
        if k.endswith(REBUILT_BUFFERS):
            continue  # the entropy coder's tables (rebuilt from the weights by update(force=True)), masks
        if k in parameters and v.is_floating_point() and v.dim() >= 2:
            w = v.float()
            s = w.abs().reshape(w.shape[0], -1).amax(dim=1) / INT8_LEVELS
            s = torch.where(s > 0, s, torch.ones_like(s))
            codes = torch.round(w / s.reshape(-1, *([1] * (w.dim() - 1))))
            out[k] = codes.clamp(-INT8_LEVELS, INT8_LEVELS).to(torch.int8)
            scales[k] = s.contiguous()
        elif k in parameters and v.is_floating_point():
            out[k] = v.to(torch.float16)
        else:
            out[k] = v
    return out, scales


def unpack_int8(state: dict, scales: dict) -> dict:
    """Float tensors back from :func:`pack_int8`'s codes and scales (every other tensor as it is)."""
    out = dict(state)
    for k, s in scales.items():
        codes = state.get(k)
        if codes is None or codes.dtype != torch.int8 or s.dim() != 1 or s.shape[0] != codes.shape[0]:
            raise CodecError(f"int8 weights: {k!r} has no codes of {tuple(s.shape)} slices")
        out[k] = codes.float() * s.float().reshape(-1, *([1] * (codes.dim() - 1)))
    stray = [k for k, v in state.items() if v.dtype == torch.int8 and k not in scales]
    if stray:
        raise CodecError(f"int8 weights: {stray[0]!r} has codes but no scales")
    return out


def export_checkpoint(model: torch.nn.Module, path: Path, *, architecture: str, N: int, M: int, lmbda: float,
                      steps: int, seed: int, data: list[str], extra: dict | None = None,
                      bands: "BandNormalisation | None" = None, storage: str = "fp16",
                      trunk: dict | None = None, lambdas=None) -> Path:
    """Write a compact checkpoint with its metadata (atomic): parameters in fp16 (``storage="fp16"``)
    or as 8-bit codes with per-slice scales (``"int8"``, :func:`pack_int8`; about half the size),
    buffers as they are. An N-band model (``bands``) records its band count and per-band
    normalisation with it. A band adapter (``trunk``: ``{"file", "tensors_sha256"}`` of the frozen RGB
    checkpoint it was trained on) stores only its :data:`ADAPTER_LAYERS`.

    Buffers stay in their own precision: they hold constants such as the likelihood lower
    bound (1e-9, which fp16 would flush to 0) and the scale table; they are a few kB.
    """
    if storage not in STORAGES:
        raise CodecError(f"checkpoint storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    parameters = {name for name, _ in model.named_parameters()}
    full = model.state_dict()
    if trunk is not None:
        if set(trunk) != {"file", "tensors_sha256"} or not all(isinstance(v, str) for v in trunk.values()):
            raise CodecError("an adapter's trunk is {'file': NAME, 'tensors_sha256': HEX}")
        full = {k: v for k, v in full.items() if k.startswith(ADAPTER_LAYERS) and not k.endswith(REBUILT_BUFFERS)}
    if storage == "int8":
        state, scales = pack_int8(full, parameters)
    else:
        scales = {}
        state = {
            k: (v.detach().to(torch.float16) if k in parameters and v.is_floating_point() else v.detach()).cpu()
            for k, v in full.items()
        }
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "architecture": architecture,
        "N": int(N),
        "M": int(M),
        "lambda": None if lmbda is None else float(lmbda),
        **({} if lambdas is None else {"lambdas": [float(l) for l in lambdas]}),
        "steps": int(steps),
        "seed": int(seed),
        "data": [str(d) for d in data],
        **(extra or {}),
        **({} if bands is None else {"in_channels": bands.channels, "band_offset": list(bands.offset),
                                     "band_scale": list(bands.scale)}),
        **({"storage": "int8", "int8_scales": scales} if storage == "int8" else {}),
        **({"trunk": dict(trunk)} if trunk is not None else {}),
        "tensors_sha256": stored_sha256(state, scales),
        "state_dict": state,
    }
    return atomic_torch_save(path, payload)


_CORE_KEYS = {"format", "version", "architecture", "N", "M", "lambda", "steps", "seed", "data", "in_channels",
              "band_offset", "band_scale", "storage", "int8_scales", "trunk", "tensors_sha256", "state_dict",
              "lambdas"}


def repack_checkpoint(source: str | Path, target: str | Path, storage: str = "int8") -> Path:
    """Re-export a verified checkpoint with another ``storage``, keeping its metadata (training
    history, validation choice) and naming the source's tensors sha256 (``repacked_from``)."""
    source = Path(source)
    payload = torch.load(source, map_location="cpu", weights_only=True)
    if not (isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT):
        raise CodecError(f"checkpoint {source}: only the project's format can be repacked")
    codec = load_checkpoint(source)
    extra = {k: v for k, v in payload.items() if k not in _CORE_KEYS}
    extra["repacked_from"] = {"file": source.name, "storage": payload.get("storage", "fp16"),
                              "tensors_sha256": payload.get("tensors_sha256")}
    return export_checkpoint(codec.model, Path(target), architecture=codec.architecture, N=codec.N, M=codec.M,
                             lmbda=payload["lambda"], steps=payload.get("steps", 0), seed=payload.get("seed", 0),
                             data=payload.get("data", []), extra=extra, bands=codec.bands, storage=storage,
                             trunk=payload.get("trunk"), lambdas=payload.get("lambdas"))


def stored_tensors(payload: dict) -> tuple[dict, dict]:
    """(state_dict, int8 scales) as a project checkpoint stores them (no scales unless ``storage: int8``)."""
    scales = payload.get("int8_scales", {}) if payload.get("storage") == "int8" else {}
    return payload["state_dict"], scales


def stored_sha256(state: dict, scales: dict) -> str:
    """The checksum a checkpoint records: :func:`tensors_sha256` over what it stores, scales included."""
    return tensors_sha256({**state, **{f"int8_scales/{k}": v for k, v in scales.items()}})


def tensors_sha256(state: dict) -> str:
    """sha256 over a state dict's tensors in name order: name, dtype, shape and raw bytes of each
    (what a flipped byte in the file's tensor data changes, while the pickle still loads)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@dataclass(frozen=True)
class BandNormalisation:
    """How raw samples of each band (8- or 16-bit) map to the model's [0, 1] input:
    x = clip((raw − offset) / scale, 0, 1), per band; stored in the checkpoint so that every
    satellite and the ground apply the model's own."""

    offset: tuple
    scale: tuple

    def __post_init__(self):
        if len(self.offset) != len(self.scale) or not self.offset:
            raise CodecError("band normalisation: one offset and one scale a band")
        if not all(float(s) > 0 for s in self.scale):
            raise CodecError("band normalisation: every scale must be > 0")

    @property
    def channels(self) -> int:
        return len(self.offset)

    @classmethod
    def eight_bit(cls, channels: int = 3) -> "BandNormalisation":
        return cls((0.0,) * channels, (255.0,) * channels)

    @classmethod
    def sensor_range(cls, channels: int, maximum: float) -> "BandNormalisation":
        """[0, ``maximum``] for every band: what the sensor or product can return (e.g. 2^15 − 1 for
        Sentinel-2's 15-bit L1C/L2A digital numbers, 2^11 − 1 for an 11-bit panchromatic band), so that no
        sample the sensor can deliver is clipped, unlike :meth:`from_samples`."""
        if not maximum > 0:
            raise CodecError(f"band normalisation: the sample range must be > 0, got {maximum}")
        return cls((0.0,) * channels, (float(maximum),) * channels)

    def clipped_fraction(self, raw) -> float:
        """Fraction of the samples of ``raw`` (H, W, B) outside [offset, offset + scale]: what the model
        cannot represent before any coding."""
        import numpy as np

        raw = np.asarray(raw, dtype=np.float64)
        lo, hi = np.asarray(self.offset), np.asarray(self.offset) + np.asarray(self.scale)
        return float(np.mean((raw < lo) | (raw > hi)))

    @classmethod
    def from_samples(cls, samples, low: float = 0.1, high: float = 99.9) -> "BandNormalisation":
        """Per-band percentiles of (n, B) or (H, W, B) training samples: offset the low one, scale the range."""
        import numpy as np

        flat = np.asarray(samples, dtype=np.float64).reshape(-1, np.shape(samples)[-1])
        lo, hi = np.percentile(flat, [low, high], axis=0)
        return cls(tuple(float(v) for v in lo), tuple(float(max(h - l, 1e-6)) for l, h in zip(lo, hi)))

    def to_batch(self, raw):
        """(n, H, W, B) raw samples -> float32 array (n, B, H, W) in [0, 1]."""
        import numpy as np

        x = (np.asarray(raw, dtype=np.float32) - np.asarray(self.offset, np.float32)) / np.asarray(self.scale, np.float32)
        return np.ascontiguousarray(np.clip(x, 0.0, 1.0).transpose(0, 3, 1, 2))

    def to_model(self, raw) -> torch.Tensor:
        """(H, W, B) raw samples -> (1, B, H, W) float in [0, 1]."""
        import numpy as np

        return torch.from_numpy(self.to_batch(np.asarray(raw)[None]))

    def to_raw(self, x: torch.Tensor, dtype="uint16"):
        """(1, B, H, W) in [0, 1] -> (H, W, B) raw samples of ``dtype`` (rounded, clipped to its range)."""
        import numpy as np

        v = x[0].detach().cpu().numpy().transpose(1, 2, 0) * np.asarray(self.scale) + np.asarray(self.offset)
        info = np.iinfo(dtype)
        return np.clip(np.round(v), info.min, info.max).astype(dtype)


@dataclass
class Codec:
    """A loaded, ready-to-code model and where it came from."""

    model: torch.nn.Module
    architecture: str
    N: int
    M: int
    lmbda: float | None
    source: str  # portable name (shipped:FILE, local:FILE, file:FILE, compressai-zoo:...)
    fingerprint: str  # sha256 prefix of the weights: bitstreams name the exact model
    path: Path | None = None  # the checkpoint file, when there is one
    bands: BandNormalisation | None = None  # N-band models: band count and normalisation (None: 8-bit RGB)
    lambdas: tuple | None = None  # variable-rate models: the λ of their trained levels (ascending)

    @property
    def in_channels(self) -> int:
        return 3 if self.bands is None else self.bands.channels

    @property
    def means(self) -> bool:
        return ARCHITECTURES[self.architecture]["means"]

    @property
    def family(self) -> str:
        return family(self.architecture)


def _fingerprint(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    if isinstance(model, VariableRateHyperprior):  # the level is the instance's, not the weights'
        h.update(f"level={model.level!r}".encode())
    return h.hexdigest()[:16]


def at_lambda(codec: Codec, lmbda: float) -> Codec:
    """A variable-rate codec at ``lmbda`` (its level by :func:`~dlrc_agents.codecs.variable_rate.level_of_lambda`):
    a copy of its model at that level, with its own fingerprint; CodecError outside the trained range."""
    import copy

    if codec.lambdas is None:
        raise CodecError(f"{codec.architecture} ({codec.source}) is a fixed-λ model")
    try:
        level = level_of_lambda(codec.lambdas, lmbda)
    except ValueError as exc:
        raise CodecError(f"{codec.source}: {exc}") from None
    model = copy.deepcopy(codec.model)  # carries the entropy models' tables: the gains do not enter them
    model.set_level(level)
    model.eval()
    return Codec(model, codec.architecture, codec.N, codec.M, float(lmbda), codec.source, _fingerprint(model),
                 codec.path, codec.bands, codec.lambdas)


def codec_from_model(model: torch.nn.Module, architecture: str, N: int, M: int, lmbda: float | None = None,
                     source: str = "in-memory", bands: BandNormalisation | None = None) -> Codec:
    """Wrap a model (e.g. freshly initialised, for tests) as a ready codec: update() then fingerprint."""
    model.update(force=True)
    model.eval()
    return Codec(model, architecture, N, M, lmbda, source, _fingerprint(model), None, bands)


#: Set to 1 (``edgespacecom --allow-unverified-weights``) to load checkpoints whose tensors carry no checksum.
ALLOW_UNVERIFIED_ENV = "EDGESPACECOM_ALLOW_UNVERIFIED_WEIGHTS"


def _unverified(path: Path, why: str, allow: bool) -> None:
    """A checkpoint whose tensors cannot be verified: refused, unless the user allowed it (then a warning)."""
    if allow or os.environ.get(ALLOW_UNVERIFIED_ENV) == "1":
        LOG.warning("checkpoint %s %s: loaded unverified, as allowed", path, why)
        return
    raise CodecError(f"checkpoint {path} {why}, so a corrupted copy cannot be told from the model: re-export it "
                     "(edgespacecom train --export, or dlrc_agents.codecs.export_checkpoint), or allow it with "
                     "--allow-unverified-weights (scenario: codec.allow_unverified_weights: true)")


def _whole_model_payload(path: Path, refusal: str) -> dict:
    """A whole-model checkpoint in the project's format (what an adapter's trunk must be); else
    CodecError(``refusal``)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not (isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT) or payload.get("trunk"):
        raise CodecError(refusal)
    return payload


def checkpoint_identity(path: str | Path) -> dict:
    """``{"file", "tensors_sha256"}`` of a whole-model checkpoint in the project's format: how an
    adapter names its trunk."""
    path = Path(path)
    payload = _whole_model_payload(path, f"checkpoint {path}: a trunk must be a whole model checkpoint in the project's format")
    return {"file": path.name, "tensors_sha256": stored_sha256(*stored_tensors(payload))}


def _trunk_state(path: Path, trunk, architecture: str) -> dict:
    """The float tensors of an adapter's trunk (every layer but the adapter's, rebuilt buffers left out):
    the named file beside the adapter, else in the shipped or the local weights folder, refused
    unless its tensors are the ones the adapter was trained on."""
    if not isinstance(trunk, dict) or not isinstance(trunk.get("file"), str) or not isinstance(trunk.get("tensors_sha256"), str):
        raise CodecError(f"checkpoint {path}: its trunk must be {{'file': NAME, 'tensors_sha256': HEX}}")
    name = Path(trunk["file"]).name
    found = next((d / name for d in (path.parent, WEIGHTS_DIR, local_weights_dir()) if (d / name).is_file()), None)
    if found is None or found.resolve() == path.resolve():
        raise CodecError(f"checkpoint {path}: its trunk {name} is in neither {path.parent}, the shipped nor the "
                         "local weights folder")
    payload = _whole_model_payload(found, f"checkpoint {path}: its trunk {found} is not a whole model checkpoint")
    if payload.get("architecture") != architecture:
        raise CodecError(f"checkpoint {path}: its trunk {found} holds {payload.get('architecture')!r}, not {architecture!r}")
    state, scales = stored_tensors(payload)
    if stored_sha256(state, scales) != trunk["tensors_sha256"]:
        raise CodecError(f"checkpoint {path}: its trunk {found} is not the one it was trained on (tensors sha256 differs)")
    state = unpack_int8(state, scales)
    return {k: v for k, v in state.items() if not k.startswith(ADAPTER_LAYERS) and not k.endswith(REBUILT_BUFFERS)}


def load_checkpoint(path: str | Path, architecture: str | None = None, allow_unverified: bool = False) -> Codec:
    """Load a checkpoint (project format or a bare CompressAI state_dict) with weights_only=True.

    Its tensors must match the sha256 recorded in its metadata (:func:`tensors_sha256`); a checkpoint
    with none (a bare state_dict, or one written before the checksum) is refused unless
    ``allow_unverified`` (or ``$EDGESPACECOM_ALLOW_UNVERIFIED_WEIGHTS=1``)."""
    path = Path(path)
    if not path.is_file():
        raise CodecError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, foreign formats
        raise CodecError(f"checkpoint {path} cannot be read safely (weights_only=True): {exc}") from None
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        missing = [k for k in ("architecture", "N", "M", "lambda", "state_dict") if k not in payload]
        if missing:
            raise CodecError(f"checkpoint {path}: metadata lacks {', '.join(missing)}")
        arch = payload["architecture"]
        if architecture is not None and arch != architecture:
            raise CodecError(f"checkpoint {path} holds a {arch!r} model, not {architecture!r}")
        N, M, lmbda, state = payload["N"], payload["M"], payload["lambda"], payload["state_dict"]
        bands, lambdas = None, None
        if _spec(arch).get("variable_rate"):
            try:
                lambdas = tuple(float(l) for l in payload["lambdas"])
                level_of_lambda(lambdas, lambdas[0])
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise CodecError(f"checkpoint {path}: a variable-rate model needs ascending 'lambdas' ({exc})") from None
        if "in_channels" in payload:
            try:
                bands = BandNormalisation(tuple(float(v) for v in payload["band_offset"]),
                                          tuple(float(v) for v in payload["band_scale"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise CodecError(f"checkpoint {path}: band normalisation unreadable ({exc})") from None
            if bands.channels != payload["in_channels"]:
                raise CodecError(f"checkpoint {path}: {payload['in_channels']} bands but {bands.channels} "
                                 "normalisation entries")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CodecError(f"checkpoint {path}: state_dict is not a mapping of tensors")
        storage = payload.get("storage", "fp16")
        if storage not in STORAGES:
            raise CodecError(f"checkpoint {path}: unknown storage {storage!r} (known: {', '.join(STORAGES)})")
        state, scales = stored_tensors(payload)
        if not isinstance(scales, dict) or not all(isinstance(v, torch.Tensor) for v in scales.values()):
            raise CodecError(f"checkpoint {path}: int8_scales is not a mapping of tensors")
        expected = payload.get("tensors_sha256")
        if expected is None:
            _unverified(path, "carries no checksum of its tensors (written by an older version)", allow_unverified)
        elif expected != stored_sha256(state, scales):
            raise CodecError(f"checkpoint {path}: its tensors do not match their recorded sha256 (corrupted)")
        try:
            state = unpack_int8(state, scales)
        except CodecError as exc:
            raise CodecError(f"checkpoint {path}: {exc}") from None
        if payload.get("trunk") is not None:
            state = {**_trunk_state(path, payload["trunk"], arch), **state}
    elif isinstance(payload, dict) and all(isinstance(v, torch.Tensor) for v in payload.values()):
        if architecture is None:
            raise CodecError(f"checkpoint {path} is a bare state_dict: say which architecture it is")
        _unverified(path, "is a bare state_dict, with no checksum of its tensors", allow_unverified)
        if _spec(architecture).get("variable_rate"):
            raise CodecError(f"checkpoint {path}: a variable-rate model needs the project's format (its lambdas)")
        arch, lmbda, state, bands, lambdas = architecture, None, payload, None, None
        N = state["g_a.0.weight"].shape[0] if "g_a.0.weight" in state else None
        M = state["g_a.6.weight"].shape[0] if "g_a.6.weight" in state else None
        if N is None or M is None:
            raise CodecError(f"checkpoint {path} does not look like a {architecture!r} state_dict")
    else:
        raise CodecError(f"checkpoint {path} is not a model checkpoint")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:  # NaN or inf weights would hang the rANS coder
        raise CodecError(f"checkpoint {path}: non-finite values in {', '.join(bad[:3])}"
                         + (f" and {len(bad) - 3} more tensors" if len(bad) > 3 else ""))
    model = build_model(arch, N, M, 3 if bands is None else bands.channels, None if lambdas is None else len(lambdas))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    # rebuilt buffers not stored (int8, adapters): the fresh model's stand in (update() rebuilds the CDF tables)
    state.update({k: v for k, v in model.state_dict().items() if k.endswith(REBUILT_BUFFERS) and k not in state})
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise CodecError(f"checkpoint {path} does not fit architecture {arch!r}: {str(exc)[:300]}") from None
    model.update(force=True)
    model.eval()
    return Codec(model, arch, N, M, lmbda, portable_name(path), _fingerprint(model), path, bands, lambdas)


def load_codec(architecture: str, *, lmbda: float | None = None, quality: int = 3, checkpoint: str | Path | None = None,
               pretrained: bool = False, bands: int = 3, allow_unverified: bool = False) -> Codec:
    """Resolve and load a codec: user checkpoint, CompressAI zoo, or the shipped (or locally trained)
    weights of ``bands`` bands (3: RGB; others are trained locally, ``make models-multispectral``)."""
    if architecture not in ARCHITECTURES:
        raise CodecError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    if checkpoint is not None:
        return _at_level(load_checkpoint(checkpoint, architecture, allow_unverified), lmbda)
    if pretrained:
        if bands != 3:
            raise CodecError(f"CompressAI's zoo has RGB models only, not {bands}-band {architecture}")
        if architecture not in zoo.model_urls:
            raise CodecError(f"CompressAI's zoo has no pretrained weights for {architecture}; "
                             "train them (`edgespacecom train`) or give a checkpoint")
        try:
            model = zoo._load_model(architecture, "mse", quality, pretrained=True)
        except Exception as exc:  # no network, blocked download, ...
            raise CodecError(
                f"pretrained {architecture} (quality {quality}) could not be downloaded from CompressAI's zoo: "
                f"{exc.__class__.__name__}: {exc}. Use the shipped weights or a checkpoint instead."
            ) from None
        model.update(force=True)
        model.eval()
        N, M = channels_for_quality(architecture, quality)
        return Codec(model, architecture, N, M, None, f"compressai-zoo:{architecture}:q{quality}", _fingerprint(model))
    if lmbda is None:
        raise CodecError(f"codec {architecture!r}: give lambda (shipped weights), a checkpoint, or pretrained: true")
    for path in (shipped_checkpoint(architecture, lmbda, bands), local_checkpoint(architecture, lmbda, bands)):
        if path.is_file():
            codec = load_checkpoint(path, architecture, allow_unverified)
            if codec.in_channels != bands:
                raise CodecError(f"checkpoint {path}: a {codec.in_channels}-band model, not {bands}")
            return _at_level(codec, lmbda)
    _spec(architecture)
    raise missing_weights(architecture, lmbda, bands)


def _at_level(codec: Codec, lmbda: float | None) -> Codec:
    """A loaded codec as it codes at ``lmbda``: a variable-rate model at that λ's level, any other as it is."""
    if codec.lambdas is None:
        return codec
    if lmbda is None:
        raise CodecError(f"{codec.source}: a variable-rate model codes at a λ in [{codec.lambdas[0]:g}, "
                         f"{codec.lambdas[-1]:g}]; give codec.lambdas")
    return at_lambda(codec, lmbda)


def load_codecs(cfg) -> list[Codec]:
    """Every codec a scenario's ``codec`` section names: the checkpoint or the zoo model when
    given, else the shipped weights of each λ in ``lambdas``."""
    return [load_codec(cfg.architecture, lmbda=l, quality=cfg.quality, checkpoint=cfg.checkpoint,
                       pretrained=cfg.pretrained, bands=cfg.bands,
                       allow_unverified=getattr(cfg, "allow_unverified_weights", False)) for l in cfg.model_lambdas]

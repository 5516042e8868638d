"""Rate–distortion training of CompressAI models on Earth-observation crops (``edgespacecom train``).

Loss (CompressAI's convention): L = λ·255²·MSE + bpp, with bpp = Σ -log2 p(ŷ) - log2 p(ẑ)
over the pixels of the batch. Two optimisers as in CompressAI's example: Adam on the
network parameters, Adam on the entropy bottleneck's quantiles (auxiliary loss).
The learning rate drops ×0.1 for the last 10 % of steps.

Training is resumable: ``OUT/state.pt`` holds the model, both optimisers, the step and
the crop sampler's random state, written atomically every ``--checkpoint-every`` steps;
running the same command again continues from it. At the end the model is updated
(CDF tables) and exported as an fp16 checkpoint with its metadata.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from edgespacecom.outputs import write_json
from edgespacecom.provenance import provenance_of
from edgespacecom.progress import progress as progress_bar
from edgespacecom.progress import stage

from dlrc_agents.codecs.registry import (ADAPTER_LAYERS, ARCHITECTURES, CHECKPOINT_FORMAT, BandNormalisation, CodecError, atomic_torch_save, build_model, channels_for_quality, checkpoint_identity, export_checkpoint, is_variable_rate, local_checkpoint, stored_tensors, unpack_int8)
from dlrc_agents.codecs.variable_rate import DEFAULT_LAMBDAS, level_of_lambda
from dlrc_agents.common.data import (TRAIN_GLOBS, VALIDATION_GLOBS, BandCropSampler, CropSampler, DataError, nodata_fraction, parse_band_set_spec, read_band_set, read_rgb, scene_names)


def ema_decay(decay: float, updates: int) -> float:
    """The weights' average's decay at its update number ``updates`` (0 = the first update, a copy).

    TensorFlow's warm-up (``tf.train.ExponentialMovingAverage`` with ``num_updates``):
    min(decay, (1 + n) / (10 + n)). Without it an average from scratch keeps the first step's
    (nearly random) weights with weight decay^n, 9 % after 2,400 steps at 0.999: on a 4-band run from
    scratch its validation PSNR sat at 25–28 dB through step 1,200, the raw weights' at 37.6–42.0 dB
    (``results/training/candidates/ema_4band/from_scratch_without_warm_up/``).
    """
    return min(decay, (1.0 + updates) / (10.0 + updates))


def warmed_ema_multi_avg_fn(decay: float):
    """``AveragedModel``'s ``multi_avg_fn`` for an average with :func:`ema_decay`'s warm-up.

    Written here because ``torch.optim.swa_utils.get_ema_multi_avg_fn`` has a fixed decay;
    ``AveragedModel`` counts the updates (its ``n_averaged`` buffer, saved with the run state).
    Only parameters are averaged (``use_buffers`` stays off), so every group is floating point.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        torch._foreach_lerp_(averaged, current, 1.0 - ema_decay(decay, int(updates)))

    return update


#: Sub-networks that run in bfloat16 under ``precision="bf16"``: the convolutional
#: transforms. The entropy models (factorised prior, Gaussian conditional) stay in
#: float32, because a likelihood is a difference of two CDF values, which bf16's 8-bit
#: mantissa would cancel away for wide Gaussians.
BF16_TRANSFORMS = ("g_a", "g_s", "h_a", "h_s")


def use_bf16_transforms(model: torch.nn.Module, device_type: str = "cpu") -> list[str]:
    """Run the model's transforms under bf16 autocast, casting their outputs back to float32.

    Mixed precision for training only (about 1.3–1.5× faster per step on a CPU with
    AVX-512 BF16; the usual mixed-precision gain on a GPU); the parameters, optimiser
    state and checkpoints stay float32, and inference is unchanged. Patches the
    instances' ``forward`` so ``state_dict`` keys do not change. Returns the names of
    the wrapped sub-networks.
    """
    wrapped = []
    for name in BF16_TRANSFORMS:
        module = getattr(model, name, None)
        if module is None:
            continue

        def forward(*args, _inner=module.forward, **kwargs):
            with torch.autocast(device_type, dtype=torch.bfloat16):
                out = _inner(*args, **kwargs)
            return out.float()

        module.forward = forward
        wrapped.append(name)
    if not wrapped:
        raise ValueError(f"--precision bf16: {type(model).__name__} has none of {', '.join(BF16_TRANSFORMS)}")
    return wrapped


def resolve_device(device: str) -> torch.device:
    """``auto`` → the first CUDA GPU if there is one, else the CPU; ``cuda[:i]`` must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device: {device!r} is not a device (auto, cpu, cuda, cuda:1, ...)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: this machine has no CUDA GPU usable by torch")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"--device: {device!r}: training runs on cpu or cuda")
    return resolved


def rate_distortion_loss(output: dict, target: torch.Tensor, lmbda) -> dict:
    """{'loss', 'mse', 'bpp'} of a CompressAI forward() output. ``lmbda``: one λ, or a tensor (n,) of
    one λ per image (a variable-rate model's levels); the loss is the batch mean of λ_i·255²·MSE_i + bpp_i."""
    n, _, h, w = target.shape
    if not torch.is_tensor(lmbda):
        num_pixels = n * h * w
        bpp = sum(torch.log(lk).sum() for lk in output["likelihoods"].values()) / (-math.log(2) * num_pixels)
        mse = torch.mean((output["x_hat"] - target) ** 2)
        return {"loss": lmbda * 255.0**2 * mse + bpp, "mse": mse, "bpp": bpp}
    bits = sum(torch.log(lk).reshape(n, -1).sum(dim=1) for lk in output["likelihoods"].values()) / -math.log(2)
    bpp_each = bits / (h * w)
    mse_each = ((output["x_hat"] - target) ** 2).reshape(n, -1).mean(dim=1)
    loss = (lmbda.to(mse_each) * 255.0**2 * mse_each + bpp_each).mean()
    return {"loss": loss, "mse": mse_each.mean(), "bpp": bpp_each.mean()}


def validation_tiles(images, size: int = 256, normalise=None) -> torch.Tensor:
    """(n, B, size, size) in [0, 1]: every whole, mostly-data ``size``² tile of the validation
    scenes, in raster order (fixed: the same tiles at every evaluation). ``normalise`` maps
    (n, size, size, B) raw samples to the model's input (default: 8-bit samples / 255)."""
    tiles = [img[y:y + size, x:x + size] for img in images
             for y in range(0, img.shape[0] - size + 1, size) for x in range(0, img.shape[1] - size + 1, size)
             if nodata_fraction(img[y:y + size, x:x + size]) <= 0.1]
    if not tiles:
        raise ValueError(f"--val: no validation scene holds a {size}x{size} tile of data")
    if normalise is not None:
        return torch.from_numpy(normalise(np.stack(tiles)))
    return torch.from_numpy(np.stack(tiles).transpose(0, 3, 1, 2).copy()).float() / 255.0


def read_band_sets(specs: list[str], flag: str) -> list[np.ndarray]:
    """The raw samples of ``PATTERN[,PATTERN][@FIRST:END]`` band sets (:func:`parse_band_set_spec`),
    all with one band count."""
    arrays = []
    for spec in specs:
        patterns, rows = parse_band_set_spec(spec)
        arrays.append(read_band_set(patterns, rows=rows))
    if len({a.shape[2] for a in arrays}) > 1:
        raise DataError(f"{flag}: the band sets have different band counts ({sorted({a.shape[2] for a in arrays})})")
    return arrays


def training_normalisation(arrays: list[np.ndarray], max_samples: int = 2_000_000, seed: int = 0) -> BandNormalisation:
    """Per-band 0.1/99.9 percentiles of the training samples' data pixels (no-data, 0 in every band,
    left out), from at most ``max_samples`` pixels drawn with ``seed``."""
    pixels = np.concatenate([a.reshape(-1, a.shape[2]) for a in arrays])
    pixels = pixels[np.any(pixels != 0, axis=1)]
    if len(pixels) > max_samples:
        pixels = pixels[np.random.default_rng(seed).choice(len(pixels), max_samples, replace=False)]
    return BandNormalisation.from_samples(pixels)


@torch.no_grad()
def level_validation(model: torch.nn.Module, tiles: torch.Tensor, lambdas, batch: int = 4) -> tuple[dict, list[dict]]:
    """A variable-rate model on the validation tiles at each trained level: (the levels' summed R–D
    loss with their mean bpp and PSNR, [each level's :func:`validation_loss`]). Model selection
    uses the sum, so that no level is given up for another."""
    level = model.level
    per_level = []
    try:
        for i, lmbda in enumerate(lambdas):
            model.set_level(i)
            per_level.append(validation_loss(model, tiles, lmbda, batch))
    finally:
        model.set_level(level)
    total = {"loss": sum(v["loss"] for v in per_level), "bpp": sum(v["bpp"] for v in per_level) / len(per_level),
             "mse": sum(v["mse"] for v in per_level) / len(per_level),
             "psnr": sum(v["psnr"] for v in per_level) / len(per_level)}
    return total, per_level


@torch.no_grad()
def validation_loss(model: torch.nn.Module, tiles: torch.Tensor, lmbda: float, batch: int = 4) -> dict:
    """Mean R–D loss, bpp and PSNR of ``model`` (forward pass, noise-free quantisation) on ``tiles``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums = {"loss": 0.0, "bpp": 0.0, "mse": 0.0}
    for i in range(0, len(tiles), batch):
        x = tiles[i:i + batch].to(device)
        losses = rate_distortion_loss(model(x), x, lmbda)
        for k in sums:
            sums[k] += float(losses[k]) * len(x)
    model.train(was_training)
    out = {k: v / len(tiles) for k, v in sums.items()}
    out["psnr"] = -10 * math.log10(max(out["mse"], 1e-12))
    return out


#: The layers where the band count enters (analysis) and leaves (synthesis) a model.
BAND_INPUT, BAND_OUTPUT = "g_a.0.", "g_s.6."


def band_count_init(own: dict, source: dict, parameters: set[str]) -> dict:
    """The first and last layers of a B-band model from an RGB model's ("grey" start): every input band
    gets the sum of the RGB kernels divided by B (B equal bands give the features of a grey RGB image
    of that level) and every output band the mean of the RGB kernels and biases (each band decodes as
    the grey level would). A start near the RGB model's operating point, whatever the bands are."""

    def bands_differ(key: str) -> bool:  # the same kernel but for its band axis (dim 1)
        return (key in parameters and key in source and source[key].dim() == 4
                and own[key].shape[1] != source[key].shape[1]
                and own[key].shape[:1] + own[key].shape[2:] == source[key].shape[:1] + source[key].shape[2:])

    out = {}
    if bands_differ(key := BAND_INPUT + "weight"):
        bands = own[key].shape[1]
        out[key] = (source[key].float().sum(dim=1, keepdim=True) / bands).expand(-1, bands, -1, -1).contiguous()
    if bands_differ(key := BAND_OUTPUT + "weight"):
        bands = own[key].shape[1]
        out[key] = source[key].float().mean(dim=1, keepdim=True).expand(-1, bands, -1, -1).contiguous()
        bias = BAND_OUTPUT + "bias"
        if bias in parameters and bias in source:
            out[bias] = source[bias].float().mean().expand(bands).contiguous()
    return out


def init_lambda(checkpoint: Path) -> float | None:
    """The λ a warm start's checkpoint was trained at (None for a run state or a bare state dict)."""
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    value = payload.get("lambda") if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT else None
    return None if value is None else float(value)


def warm_start(model: torch.nn.Module, checkpoint: Path) -> tuple[int, int]:
    """Copy every parameter of ``checkpoint`` whose name and shape match ``model``'s; (copied, parameters)."""
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if isinstance(payload, dict) and "model" in payload and "opt" in payload:  # a run's state.pt
        payload = payload["model"]
    source = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(source, dict):
        raise ValueError(f"--init: {checkpoint} is not a model checkpoint")
    if payload.get("format") == CHECKPOINT_FORMAT and payload.get("trunk"):
        raise ValueError(f"--init: {checkpoint} is a band adapter; start from a whole model (its trunk or another)")
    if payload.get("format") == CHECKPOINT_FORMAT:  # 8-bit storage: the codes' float values
        try:
            source = unpack_int8(*stored_tensors(payload))
        except CodecError as exc:
            raise ValueError(f"--init: {checkpoint}: {exc}") from None
    own = model.state_dict()
    parameters = {name for name, _ in model.named_parameters()}  # buffers are constants: keep the model's own
    matched = {k: v.float() if v.is_floating_point() else v for k, v in source.items()
               if k in parameters and own[k].shape == v.shape}
    matched.update(band_count_init(own, source, parameters))
    if not matched:
        raise ValueError(f"--init: no tensor of {checkpoint} fits this architecture")
    own.update(matched)
    model.load_state_dict(own)
    return len(matched), len(parameters)


def codec_optimisers(model: torch.nn.Module, lr: float, aux_lr: float):
    """Adam on the codec's parameters, and Adam on the entropy bottleneck's quantiles (its auxiliary loss)."""
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles") and p.requires_grad]
    return torch.optim.Adam(main, lr=lr), torch.optim.Adam(aux, lr=aux_lr)


def train(
    architecture: str,
    lmbda: float,
    out_dir: Path,
    *,
    steps: int = 20000,
    batch_size: int = 8,
    crop: int = 256,
    lr: float = 1e-4,
    aux_lr: float = 1e-3,
    quality: int = 3,
    channels: tuple[int, int] | None = None,
    seed: int = 0,
    data: list[str] | None = None,
    val: list[str] | None = None,
    val_every: int | None = None,
    checkpoint_every: int = 200,
    threads: int | None = None,
    export: Path | None = None,
    init: Path | None = None,
    progress: bool = True,
    max_downscale: float = 1.0,
    precision: str = "fp32",
    device: str = "auto",
    band_sets: list[str] | None = None,
    val_band_sets: list[str] | None = None,
    adapter: bool = False,
    storage: str = "fp16",
    max_wall_s: float | None = None,
    lambdas: list[float] | None = None,
    sample_range: float | None = None,
    ema: float | None = None,
) -> Path:
    """Train (or resume) and export an fp16 checkpoint; returns its path.

    ``init`` warm-starts a new run from another checkpoint (another λ, or a related
    architecture such as bmshj2018-hyperprior → mbt2018-mean): every tensor whose name
    and shape match is copied, the rest keeps its random initialisation. This is the
    usual way to train a family of λ from one base model in a fraction of the steps.
    Ignored when resuming (``OUT/state.pt`` exists). On resume the given ``lr`` applies.
    ``channels`` = (N, M) overrides the widths of the quality level (e.g. mbt2018 at
    N = 128, M = 192 so that it warm-starts from mbt2018-mean, whose widths those are).
    ``max_downscale`` > 1 resamples crops from larger regions (see ``CropSampler``);
    ``precision="bf16"`` runs the transforms in bfloat16 (see ``use_bf16_transforms``).
    ``device``: ``auto`` trains on a CUDA GPU when torch sees one, else on the CPU; the run
    state is portable between the two (a run may resume on the other).

    Model selection is made on the validation split (``val``, default
    :data:`~dlrc_agents.common.data.VALIDATION_GLOBS`, disjoint from the training scenes), never on
    the test split: every ``val_every`` steps (default: each checkpoint) the R–D loss on its
    fixed tiles goes to ``OUT/val_log.csv``, the best model so far is kept
    (``OUT/best.pt``), and that one is exported, with the step it was taken at.
    The export goes to ``export``, else ``$EDGESPACECOM_WEIGHTS`` (never into the package).

    ``band_sets`` trains an N-band model on raw 8- or 16-bit band sets instead of the RGB scenes
    (``PATTERN[,PATTERN][@FIRST:END]``, :func:`~dlrc_agents.common.data.parse_band_set_spec`; rows give a
    spatial split of a lone chip), with ``val_band_sets`` as its validation split (required). The
    per-band normalisation (:class:`~dlrc_agents.codecs.BandNormalisation`) is fitted on the
    training samples and stored in the checkpoint; ``init`` copies the RGB model's inner layers
    (every tensor but the first analysis and last synthesis convolutions, whose band count differs).

    ``adapter=True`` (band sets only, from an ``init`` RGB checkpoint of the same architecture) trains
    a band adapter: only :data:`~dlrc_agents.codecs.registry.ADAPTER_LAYERS` learn, every other layer
    stays the ``init`` model's, and the export stores those layers alone with the trunk's name and
    tensors sha256 (a few hundred kB instead of a whole model; the loader puts the two together).
    ``sample_range`` (N-band): normalise every band by [0, sample_range], the range the sensor or the
    product can return, instead of the training split's 0.1/99.9 percentiles, so that no sample the
    sensor can deliver is clipped; data outside it are refused.
    ``storage`` is the export's (``fp16`` or ``int8``, :func:`~dlrc_agents.codecs.registry.pack_int8`).
    ``ema`` (a decay in (0, 1), e.g. 0.999): keep an exponential moving average of the weights
    (``torch.optim.swa_utils.AveragedModel``, updated after every step; averaging over about
    1 / (1 − ema) steps smooths the step-to-step noise of Adam; its decay warms up as
    :func:`ema_decay`'s, so a run from scratch does not keep its first steps). Validation, model selection and the
    export then use the average; training goes on with the raw weights. A run keeps its choice on resume.
    ``max_wall_s`` bounds this call's training time (seconds): when it is reached the run validates,
    saves its state and exports the validation's choice so far; calling again continues the schedule.

    A variable-rate architecture (``bmshj2018-hyperprior-vr``) trains one network at every λ of
    ``lambdas`` (default the shipped ladder's; ``lmbda`` is then unused): each image of a batch draws
    a level, the loss is the batch mean of λ_i·255²·MSE_i + bpp_i, and validation sums the levels'
    losses. Warm-started from a fixed-λ checkpoint, every layer is copied and the gains start at
    sqrt(λ_i / λ_init) (:meth:`~dlrc_agents.codecs.variable_rate.VariableRateHyperprior.initialise_gains`).
    """
    variable_rate = architecture in ARCHITECTURES and is_variable_rate(architecture)
    if variable_rate:
        lambdas = [float(l) for l in (lambdas or DEFAULT_LAMBDAS)]
        level_of_lambda(lambdas, lambdas[0])  # ascending
        if band_sets or adapter:
            raise ValueError(f"--arch {architecture}: RGB only (no --band-set or --adapter)")
        lmbda = lambdas[0] if lmbda is None else lmbda
    elif lambdas:
        raise ValueError(f"--lambdas: {architecture} is a fixed-λ architecture; give --lambda")
    if sample_range is not None and not band_sets:
        raise ValueError("--sample-range: for N-band training (--band-set); RGB scenes are 8-bit")
    if ema is not None and not 0.0 < ema < 1.0:
        raise ValueError(f"--ema: a decay in (0, 1), got {ema}")
    if max_wall_s is not None and max_wall_s <= 0:
        raise ValueError("--max-minutes: must be > 0")
    if adapter and not (band_sets and init is not None):
        raise ValueError("--adapter: train band adapters on --band-set data from an --init RGB checkpoint (their trunk)")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"--precision: expected fp32 or bf16, got {precision!r}")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"--arch: unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    if lmbda <= 0 or steps <= 0 or batch_size <= 0 or crop % 64:
        raise ValueError("--lambda, --steps and --batch must be > 0, and --crop a multiple of 64")
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bands = None
    if band_sets:
        if not val_band_sets:
            raise ValueError("--band-set: give the validation split too (--val-band-set)")
        if max_downscale != 1.0:
            raise ValueError("--downscale: not for band sets (raw samples are coded at their own sampling)")
        if set(band_sets) & set(val_band_sets):
            raise ValueError("--val-band-set: the validation band sets must not be training band sets")
        arrays, data_names = read_band_sets(band_sets, "--band-set"), list(band_sets)
        val_arrays, val_data_names = read_band_sets(val_band_sets, "--val-band-set"), list(val_band_sets)
        if val_arrays[0].shape[2] != arrays[0].shape[2]:
            raise ValueError(f"--val-band-set: {val_arrays[0].shape[2]} bands, the training sets have {arrays[0].shape[2]}")
        if sample_range is None:
            bands = training_normalisation(arrays, seed=seed)
        else:
            bands = BandNormalisation.sensor_range(arrays[0].shape[2], sample_range)
            for spec, a in zip(band_sets + val_band_sets, arrays + val_arrays):
                if a.max() > sample_range or a.min() < 0:
                    raise DataError(f"{spec}: samples in [{a.min()}, {a.max()}] exceed --sample-range "
                                    f"[0, {sample_range:g}]")
        normalise = bands.to_batch
        side = min(min(a.shape[:2]) for a in val_arrays) // 64 * 64
        val_tiles = validation_tiles(val_arrays, min(256, crop * 2, max(side, 64)), normalise)
        sampler = BandCropSampler(arrays, crop, seed, normalise)
        in_channels = bands.channels
    else:
        names = scene_names(data or list(TRAIN_GLOBS))
        paths = list(names.values())
        val_names = scene_names(val or list(VALIDATION_GLOBS))
        if set(val_names.values()) & set(paths):
            raise ValueError("--val: the validation scenes must not be training scenes")
        data_names, val_data_names = list(names), list(val_names)
        val_tiles = validation_tiles([read_rgb(p) for p in val_names.values()], min(256, crop * 2))
        sampler = CropSampler([read_rgb(p) for p in paths], crop, seed, max_downscale=max_downscale)
        in_channels = 3
    val_every = val_every or checkpoint_every
    N, M = tuple(channels) if channels else channels_for_quality(architecture, quality)
    model = build_model(architecture, N, M, in_channels, len(lambdas) if variable_rate else None).to(dev)
    run_lambda = lambdas if variable_rate else lmbda  # what a run state belongs to
    trunk = None
    if adapter:
        try:
            trunk = checkpoint_identity(init)
        except CodecError as exc:
            raise ValueError(f"--init: {exc}") from None
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(ADAPTER_LAYERS))
    opt, aux_opt = codec_optimisers(model, lr, aux_lr)
    step = 0
    averaged = None  # the moving average's state, when resuming a run that keeps one
    state_path = out_dir / "state.pt"
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if (state["architecture"] != architecture or state["lambda"] != run_lambda
                or state.get("in_channels", 3) != in_channels or state.get("trunk") != trunk
                or state.get("sample_range") != sample_range):
            raise ValueError(f"{state_path} belongs to {state['architecture']} λ={state['lambda']}; use another --out")
        if state.get("ema") != ema:
            raise ValueError(f"--ema: {state_path} was trained with --ema {state.get('ema')}; use that or another --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        aux_opt.load_state_dict(state["aux_opt"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
        torch.set_rng_state(state["torch_rng"])
        if dev.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], dev)
        step = int(state["step"])
        init = state.get("init")
        averaged = state.get("ema_model")
        for group in opt.param_groups:
            group["lr"] = lr if step < int(0.9 * steps) else lr * 0.1
        stage(f"resuming {architecture} λ={lmbda} at step {step}/{steps}")
    elif init is not None:
        copied, total = warm_start(model, init)
        stage(f"warm start from {init}: {copied}/{total} tensors copied")
        reference = init_lambda(init) if variable_rate else None
        if reference is not None:
            model.initialise_gains(lambdas, reference)

    # The weights' moving average (validated, selected and exported in their stead); on resume it continues.
    average = None
    if ema is not None:
        average = AveragedModel(model, multi_avg_fn=warmed_ema_multi_avg_fn(ema))
        if averaged is not None:  # resuming: the average goes on from its saved state
            average.load_state_dict(averaged)
    evaluated = model if average is None else average.module
    if precision == "bf16":  # after the average's copy: that one validates in fp32 (a patched forward would not copy)
        use_bf16_transforms(model, dev.type)

    def save_state():
        atomic_torch_save(
            state_path,
            {
                "architecture": architecture, "lambda": run_lambda, "in_channels": in_channels, "step": step,
                "sample_range": sample_range,
                "model": model.state_dict(),
                "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                "sampler_rng": sampler.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                "init": str(init) if init is not None else None, "trunk": trunk,
                "ema": ema, "ema_model": None if average is None else average.state_dict(),
            },
        )

    best_path = out_dir / "best.pt"
    best = None
    if best_path.is_file():
        best = torch.load(best_path, map_location="cpu", weights_only=True)
        best = {"step": int(best["step"]), **best["validation"]}
    model.train()
    log = []
    started = time.perf_counter()
    started_utc = dt.datetime.now(dt.timezone.utc)
    stage(f"training on {dev} ({precision})")
    label = f"λ={lambdas[0]:g}..{lambdas[-1]:g}" if variable_rate else f"λ={lmbda:g}"
    bar = progress_bar(total=steps, initial=step, desc=f"train {architecture} {label}", unit="step", disable=not progress)
    while step < steps:
        if step == int(0.9 * steps):
            for group in opt.param_groups:
                group["lr"] = lr * 0.1
        x = torch.from_numpy(sampler.batch(batch_size)).to(dev)
        opt.zero_grad()
        aux_opt.zero_grad()
        if variable_rate:  # one level per image, from the seeded torch generator (saved in the run state)
            levels = torch.randint(len(lambdas), (x.shape[0],))
            losses = rate_distortion_loss(model(x, levels=levels.to(dev)), x, torch.tensor(lambdas)[levels])
        else:
            losses = rate_distortion_loss(model(x), x, lmbda)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        aux = model.aux_loss()
        aux.backward()
        aux_opt.step()
        if average is not None:
            average.update_parameters(model)
        step += 1
        psnr = -10 * math.log10(max(losses["mse"].item(), 1e-12))
        bar.update(1)
        bar.set_postfix(loss=f"{losses['loss'].item():.3f}", bpp=f"{losses['bpp'].item():.3f}", psnr=f"{psnr:.2f}")
        log.append({"step": step, "loss": losses["loss"].item(), "bpp": losses["bpp"].item(), "psnr": psnr,
                    "aux": aux.item()})
        out_of_time = max_wall_s is not None and time.perf_counter() - started >= max_wall_s and step < steps
        if step % val_every == 0 or step == steps or out_of_time:
            if variable_rate:
                v, per_level = level_validation(evaluated, val_tiles, lambdas)
                with open(out_dir / "val_levels.csv", "a") as fh:
                    fh.writelines(f"{step},{l:g},{pl['loss']:.6f},{pl['bpp']:.6f},{pl['psnr']:.4f}\n"
                                  for l, pl in zip(lambdas, per_level))
            else:
                v = validation_loss(evaluated, val_tiles, lmbda)
            with open(out_dir / "val_log.csv", "a") as fh:
                fh.write(f"{step},{v['loss']:.6f},{v['bpp']:.6f},{v['psnr']:.4f}\n")
            if best is None or v["loss"] < best["loss"]:
                best = {"step": step, **v}
                atomic_torch_save(best_path, {"step": step, "validation": v, "model": evaluated.state_dict()})
        if step % checkpoint_every == 0 or step == steps or out_of_time:
            save_state()
            with open(out_dir / "train_log.csv", "a") as fh:
                for row in log:
                    fh.write(f"{row['step']},{row['loss']:.6f},{row['bpp']:.6f},{row['psnr']:.4f},{row['aux']:.4f}\n")
            log.clear()
        if out_of_time:
            stage(f"time budget of {max_wall_s:g} s reached at step {step}/{steps}: state saved (run again to "
                  "continue), exporting the validation's choice so far")
            break
    bar.close()
    if best is not None and best["step"] != step:
        model.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=True)["model"])
        stage(f"validation chose step {best['step']} of {step} (loss {best['loss']:.4f})")
    elif average is not None:
        model.load_state_dict(average.module.state_dict())
    model.update(force=True)
    target = Path(export) if export else local_checkpoint(architecture, lmbda, in_channels)
    export_checkpoint(model, target, architecture=architecture, N=N, M=M, lmbda=None if variable_rate else lmbda,
                      lambdas=lambdas if variable_rate else None,
                      steps=best["step"] if best else step, seed=seed,
                      data=data_names, bands=bands, storage=storage, trunk=trunk,
                      extra={"crop": crop, "batch_size": batch_size, "lr": lr, "quality": quality,
                             "init": str(init) if init is not None else None,
                             "max_downscale": max_downscale, "precision": precision, "sample_range": sample_range,
                             "validation": val_data_names, "selected_step": best["step"] if best else step,
                             "ema": ema,
                             "validation_loss": best})
    config = {"architecture": architecture, "lambda": run_lambda, "steps": steps, "batch_size": batch_size, "crop": crop,
              "lr": lr, "aux_lr": aux_lr, "channels": [N, M], "seed": seed, "data": data_names,
              "validation": val_data_names, "val_every": val_every, "max_downscale": max_downscale,
              "precision": precision, "adapter": adapter, "storage": storage, "sample_range": sample_range,
              "ema": ema, "init": str(init) if init is not None else None}
    inputs = {}
    for spec in list(band_sets or []) + list(val_band_sets or []):
        inputs.update(scene_names(parse_band_set_spec(spec)[0]))
    if not band_sets:
        inputs.update(names)
        inputs.update(val_names)
    if init is not None:
        inputs[f"init:{Path(init).name}"] = Path(init)
    write_json(out_dir / "train_summary.json", {"architecture": architecture, "lambda": run_lambda, "steps": step,
                                                 "provenance": provenance_of(config, inputs, started_utc),
                                                 "in_channels": in_channels, "trunk": trunk,
                                                 "wall_s_this_session": time.perf_counter() - started,
                                                 "device": str(dev), "precision": precision,
                                                 "selected_step": best["step"] if best else step,
                                                 "validation": best,
                                                 "checkpoint": str(target)})
    return target

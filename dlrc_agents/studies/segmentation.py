"""U-Net segmentation on decoded bands (the second study's Table 1 and Figure 2), and joint training.

The seed (Mollière et al.) trains a U-Net on data that went through the codec at a given rate and
scores it on held-out data that went through the same codec: F1 of the positive class and macro F1
(the mean of both classes' F1). Here every task has three disjoint splits (chips, or row windows of
a lone chip): the U-Net trains on ``train`` (random crops, flips), stops early on the validation
split's loss, and is scored once on ``test``. The networks come from segmentation-models-pytorch
(MobileNetV2 and ResNet34 encoders, random initialisation: nothing is downloaded), trained with
binary cross-entropy and Adam; pixels labelled ``ignore`` are neither trained on nor scored.

Joint training (the seed's Equation 1) fine-tunes a codec and a U-Net together on
L = λ·255²·MSE + R + γ·BCE with three Adam optimisers (codec transforms, the bottleneck's
quantiles, the U-Net), then codes the test split with real bitstreams from the tuned codec.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from edgespacecom.progress import progress, stage

from dlrc_agents.codecs import jpeg2000
from dlrc_agents.studies.codec_rd import code_band_set, code_learned, crop_to_multiple
from dlrc_agents.common.data import DataError, read_band_set
from dlrc_agents.studies.task_measures import CODEC_COLOURS, f1_axes, f1_scores, read_label
from dlrc_agents.codecs.train import codec_optimisers, rate_distortion_loss, training_normalisation

#: segmentation-models-pytorch's encoder names for the seed's two backbones.
BACKBONES = {"mobilenet_v2": "mobilenet_v2", "resnet34": "resnet34"}


class Chip:
    """A task's labelled piece: raw samples (H, W, B), truth and valid masks (H, W), sides multiples of 64."""

    def __init__(self, raw: np.ndarray, label: np.ndarray, positive: int, ignore: int | None):
        self.raw = raw
        self.truth = label == positive
        self.valid = label != ignore if ignore is not None else np.ones(label.shape, bool)

    @property
    def pixels(self) -> int:
        return self.raw.shape[0] * self.raw.shape[1]


def read_chip(chip, positive: int, ignore: int | None, where: str) -> Chip:
    """Read and check one chip section (bands, label, row window), cropped to multiples of 64."""
    raw = read_band_set(chip.files, rows=chip.rows)
    label = read_label(chip.label)
    if chip.rows is not None:
        if chip.rows[1] > label.shape[0]:
            raise DataError(f"{where}.rows: {chip.rows} beyond the label's {label.shape[0]} rows")
        label = label[chip.rows[0]:chip.rows[1]]
    if label.shape != raw.shape[:2]:
        raise DataError(f"{where}.label: {label.shape} pixels, the bands have {raw.shape[:2]}")
    raw = crop_to_multiple(raw)
    label = label[:raw.shape[0], :raw.shape[1]]
    out = Chip(raw, label, positive, ignore)
    if not out.valid.any():
        raise DataError(f"{where}: no pixel is labelled (every one is {ignore})")
    return out


def read_task(task) -> dict[str, list[Chip]]:
    """{'train', 'validation', 'test'}: the task's chips, read and checked; one band count throughout."""
    splits = {split: [read_chip(c, task.positive, task.ignore, f"segmentation_tasks.{task.name}.{split}[{i}]")
                      for i, c in enumerate(getattr(task, split))] for split in ("train", "validation", "test")}
    counts = {c.raw.shape[2] for chips in splits.values() for c in chips}
    if len(counts) > 1:
        raise DataError(f"segmentation_tasks.{task.name}: the chips have different band counts ({sorted(counts)})")
    return splits


def build_unet(backbone: str, in_channels: int) -> torch.nn.Module:
    """smp's U-Net with ``backbone``'s encoder for ``in_channels`` bands, one logit a pixel; random weights."""
    import segmentation_models_pytorch as smp

    return smp.Unet(encoder_name=BACKBONES[backbone], encoder_weights=None, in_channels=in_channels, classes=1)


def pad_to(x: torch.Tensor, multiple: int = 32) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad (n, C, H, W) on the bottom and right to multiples of ``multiple``; (padded, H, W)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return (F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x), h, w


def masked_bce(logits: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor, pos_weight: float = 1.0) -> torch.Tensor:
    """Mean binary cross-entropy over the valid pixels, positives weighted by ``pos_weight``."""
    loss = F.binary_cross_entropy_with_logits(logits, truth, reduction="none",
                                              pos_weight=torch.tensor(float(pos_weight)))
    return (loss * valid).sum() / valid.sum().clamp(min=1.0)


class Crops:
    """Seeded random crops (and flips) of a split's normalised bands with their masks."""

    def __init__(self, inputs: list[np.ndarray], chips: list[Chip], size: int, seed: int):
        keep = [i for i, c in enumerate(chips) if min(c.raw.shape[:2]) >= size]
        if not keep:
            raise DataError(f"segmentation.crop: no training chip is {size}x{size} pixels or larger")
        self.inputs = [inputs[i] for i in keep]
        self.chips = [chips[i] for i in keep]
        area = np.array([c.pixels for c in self.chips], float)
        self.weights = area / area.sum()
        self.size = size
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xs, ts, vs = [], [], []
        for _ in range(n):
            k = self.rng.choice(len(self.chips), p=self.weights)
            x, chip = self.inputs[k], self.chips[k]
            y0 = self.rng.integers(0, chip.raw.shape[0] - self.size + 1)
            x0 = self.rng.integers(0, chip.raw.shape[1] - self.size + 1)
            window = (slice(y0, y0 + self.size), slice(x0, x0 + self.size))
            xc, tc, vc = x[(slice(None),) + window], chip.truth[window], chip.valid[window]
            if self.rng.random() < 0.5:
                xc, tc, vc = xc[..., ::-1], tc[:, ::-1], vc[:, ::-1]
            if self.rng.random() < 0.5:
                xc, tc, vc = xc[:, ::-1], tc[::-1], vc[::-1]
            xs.append(np.ascontiguousarray(xc))
            ts.append(np.ascontiguousarray(tc))
            vs.append(np.ascontiguousarray(vc))
        return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts)).float()[:, None],
                torch.from_numpy(np.stack(vs)).float()[:, None])


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Positive-class mask (H, W) of one normalised chip (B, H, W): logit > 0."""
    model.eval()
    padded, h, w = pad_to(torch.from_numpy(x)[None])
    return (model(padded)[0, 0, :h, :w] > 0).numpy()


@torch.no_grad()
def split_loss(model: torch.nn.Module, inputs: list[np.ndarray], chips: list[Chip], pos_weight: float = 1.0) -> float:
    """Pixel-weighted masked BCE of ``model`` over a split's whole chips."""
    model.eval()
    total, weight = 0.0, 0.0
    for x, chip in zip(inputs, chips):
        padded, h, w = pad_to(torch.from_numpy(x)[None])
        logits = model(padded)[:, :, :h, :w]
        valid = torch.from_numpy(chip.valid).float()[None, None]
        total += float(masked_bce(logits, torch.from_numpy(chip.truth).float()[None, None], valid, pos_weight)) \
            * float(valid.sum())
        weight += float(valid.sum())
    return total / max(weight, 1.0)


def scores(masks: list[np.ndarray], chips: list[Chip]) -> tuple[float, float]:
    """(F1 of the positive class, macro F1) over all of a split's valid pixels together."""
    return f1_scores(np.concatenate([m.ravel() for m in masks]), np.concatenate([c.truth.ravel() for c in chips]),
                     np.concatenate([c.valid.ravel() for c in chips]))


class EarlyStopping:
    """Keeps the modules' state at their best validation loss; says when ``patience`` evaluations
    in a row brought no better one."""

    def __init__(self, modules: dict[str, torch.nn.Module], patience: int, loss: float = math.inf):
        self.modules, self.patience = modules, patience
        self.loss, self.step, self.since = loss, 0, 0
        self.states = {k: copy.deepcopy(m.state_dict()) for k, m in modules.items()}

    def stop(self, loss: float, step: int) -> bool:
        """Record an evaluation; True when training should end."""
        if loss < self.loss:
            self.loss, self.step, self.since = loss, step, 0
            self.states = {k: copy.deepcopy(m.state_dict()) for k, m in self.modules.items()}
            return False
        self.since += 1
        return self.since >= self.patience

    def restore(self) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(self.states[k])


def train_unet(backbone: str, train_x: list[np.ndarray], train_chips: list[Chip], val_x: list[np.ndarray],
               val_chips: list[Chip], cfg, seed: int, desc: str, model: torch.nn.Module | None = None,
               pos_weight: float = 1.0) -> tuple[torch.nn.Module, dict]:
    """Train a U-Net (BCE, Adam) with early stopping on the validation loss; the best model and its history."""
    torch.manual_seed(seed)
    model = model or build_unet(backbone, train_x[0].shape[0])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    crops = Crops(train_x, train_chips, cfg.crop, seed)
    best = EarlyStopping({"unet": model}, cfg.patience)
    step = 0
    bar = progress(total=cfg.steps, desc=desc, unit="step", leave=False)
    while step < cfg.steps:
        model.train()
        x, t, v = crops.batch(cfg.batch)
        opt.zero_grad()
        loss = masked_bce(model(x), t, v, pos_weight)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            val = split_loss(model, val_x, val_chips, pos_weight)
            bar.set_postfix(train=f"{loss.item():.3f}", val=f"{val:.3f}")
            if best.stop(val, step):
                break
    bar.close()
    best.restore()
    return model, {"steps_trained": step, "best_step": best.step, "val_loss": best.loss}


def split_psnr(chips: list[Chip], decoded: list[np.ndarray]) -> float:
    """PSNR [dB] over every sample of the split, the peak its largest raw sample (as band_sets_rd.csv)."""
    peak = float(max(int(c.raw.max()) for c in chips) or 1)
    return jpeg2000.psnr(np.concatenate([c.raw.ravel() for c in chips]), np.concatenate([d.ravel() for d in decoded]),
                         peak)


def conditions(splits: dict[str, list[Chip]], j2k_cfg, codecs: list):
    """Every coding of the task's data, as (codec, extra columns, {split: decoded chips}, test bytes):
    the uncompressed bands first, then JPEG 2000 and the learned codecs of as many bands
    (:func:`~dlrc_agents.studies.codec_rd.code_band_set`); every split passes through the same codec."""
    yield "uncompressed", {}, {s: [c.raw for c in chips] for s, chips in splits.items()}, None
    coded = {s: [list(code_band_set(c.raw, j2k_cfg, codecs)) for c in chips] for s, chips in splits.items()}
    for k, (codec, extra, _, _) in enumerate(coded["test"][0]):
        decoded = {s: [per_chip[k][2] for per_chip in coded[s]] for s in coded}
        yield codec, extra, decoded, sum(per_chip[k][3] for per_chip in coded["test"])


def task_condition_rows(task, splits, norm, scenario, codecs, seed: int, pos_weight: float = 1.0
                        ) -> tuple[list[dict], dict]:
    """Train and score U-Nets for one task: every backbone on the uncompressed bands (Table 1), and
    the curve backbone on the data of every codec and rate (Figure 2). Also returns the curve
    backbone's U-Net of each learned codec (the joint training's starting point)."""
    cfg = scenario.segmentation
    normalise = norm.to_batch
    j2k = scenario.jpeg2000.model_copy(update={"bits_per_sample": cfg.bits_per_sample, "mct": [cfg.mct]})
    test_chips = splits["test"]
    pixels = sum(c.pixels for c in test_chips)
    bands = test_chips[0].raw.shape[2]
    rows, unets = [], {}
    curve_backbone = cfg.curve_backbone
    for codec, extra, decoded, nbytes in conditions(splits, j2k, codecs):
        inputs = {s: [normalise(d[None])[0] for d in decoded[s]] for s in decoded}
        psnr = split_psnr(test_chips, decoded["test"])
        if codec != "uncompressed" and curve_backbone == "best":  # chosen on the validation split, never the test
            curve_backbone = min((r for r in rows if r["codec"] == "uncompressed"), key=lambda r: r["val_loss"])["backbone"]
        backbones = cfg.backbones if codec == "uncompressed" else [curve_backbone]
        for backbone in backbones:
            started = time.perf_counter()
            label = f"{task.name} {backbone} {codec}" + (f" {extra.get('target_bits_per_sample', extra.get('lambda'))}"
                                                           if extra else "")
            model, info = train_unet(backbone, inputs["train"], splits["train"], inputs["validation"],
                                     splits["validation"], cfg, seed, label, pos_weight=pos_weight)
            f_pos, f_macro = scores([predict(model, x) for x in inputs["test"]], test_chips)
            rows.append({"task": task.name, "backbone": backbone, "codec": codec, **extra, "bands": bands,
                         "bpp": None if nbytes is None else 8 * nbytes / pixels,
                         "bits_per_sample": None if nbytes is None else 8 * nbytes / (pixels * bands),
                         "psnr": psnr, "f1_pos": f_pos, "f1_macro": f_macro, "training": "standalone",
                         **info, "train_s": time.perf_counter() - started})
            if codec != "uncompressed" and codec != "jpeg2000":
                unets[(codec, extra["lambda"])] = model
    return rows, unets


def positive_weight(setting, chips: list[Chip]) -> float:
    """BCE weight of the positive class: 1 (plain BCE, the seed's), a number, or ``balanced``:
    negatives over positives among the training split's labelled pixels (rare buildings)."""
    if setting is None:
        return 1.0
    if setting == "balanced":
        pos = sum(int((c.truth & c.valid).sum()) for c in chips)
        neg = sum(int((~c.truth & c.valid).sum()) for c in chips)
        return neg / max(pos, 1)
    return float(setting)


def joint_train(joint, task, splits, norm, codec, unet, cfg, seed: int, pos_weight: float = 1.0):
    """Fine-tune ``codec`` and ``unet`` together on the seed's Equation 1, L = λ·255²·MSE + R + γ·BCE,
    three Adam optimisers (codec transforms, bottleneck quantiles, U-Net), early stopping on the
    validation split's L. ``joint.freeze_codec`` (γ = 0): the frozen-codec control, in which the codec
    codes as deployed (eval mode: rounding) and never steps, and only the U-Net trains. Returns (the
    tuned codec, ready to code; the U-Net; history)."""
    torch.manual_seed(seed)
    model = copy.deepcopy(codec.model)
    unet = copy.deepcopy(unet)
    frozen = joint.freeze_codec
    model.train(not frozen)
    for p in model.parameters():
        p.requires_grad_(not frozen)
    codec_opts = () if frozen else codec_optimisers(model, joint.codec_lr, joint.aux_lr)  # (transforms, quantiles)
    unet_opt = torch.optim.Adam(unet.parameters(), lr=joint.unet_lr)
    codec_in = codec.bands.to_batch
    c_off = torch.tensor(codec.bands.offset, dtype=torch.float32)[None, :, None, None]
    c_scale = torch.tensor(codec.bands.scale, dtype=torch.float32)[None, :, None, None]
    t_off = torch.tensor(norm.offset, dtype=torch.float32)[None, :, None, None]
    t_scale = torch.tensor(norm.scale, dtype=torch.float32)[None, :, None, None]

    def to_unet(x_hat: torch.Tensor) -> torch.Tensor:  # codec's [0, 1] -> raw -> the task's [0, 1], differentiable
        return ((x_hat * c_scale + c_off - t_off) / t_scale).clamp(0.0, 1.0)

    def loss_of(x, t, v):
        out = model(x)
        rd = rate_distortion_loss(out, x, joint.lmbda)
        x_hat = out["x_hat"] if joint.gamma > 0 else out["x_hat"].detach()  # γ = 0: the separate-training control
        bce = masked_bce(unet(to_unet(x_hat)), t, v, pos_weight)
        if joint.gamma == 0:
            return rd["loss"] + bce, rd, bce
        return rd["loss"] + joint.gamma * bce, rd, bce

    crops = Crops([codec_in(c.raw[None])[0] for c in splits["train"]], splits["train"], cfg.crop, seed)
    val_x = [torch.from_numpy(codec_in(c.raw[None])) for c in splits["validation"]]  # sides multiples of 64

    @torch.no_grad()
    def val_loss() -> float:
        model.eval()
        unet.eval()
        total = 0.0
        for x, chip in zip(val_x, splits["validation"]):
            t = torch.from_numpy(chip.truth).float()[None, None]
            v = torch.from_numpy(chip.valid).float()[None, None]
            total += float(loss_of(x, t, v)[0])
        model.train(not frozen)
        unet.train()
        return total / len(val_x)

    start_loss = val_loss()
    best = EarlyStopping({"codec": model, "unet": unet}, joint.patience, start_loss)
    step = 0
    bar = progress(total=joint.steps, desc=f"joint {task.name} λ={joint.lmbda:g} γ={joint.gamma:g}", unit="step",
                   leave=False)
    unet.train()
    while step < joint.steps:
        x, t, v = crops.batch(cfg.batch)
        for opt in (*codec_opts, unet_opt):
            opt.zero_grad()
        loss, rd, bce = loss_of(x, t, v)
        loss.backward()
        unet_opt.step()
        if codec_opts:
            main_opt, aux_opt = codec_opts
            torch.nn.utils.clip_grad_norm_(main_opt.param_groups[0]["params"], 1.0)
            main_opt.step()
            model.aux_loss().backward()
            aux_opt.step()
        step += 1
        bar.update(1)
        if step % cfg.eval_every == 0 or step == joint.steps:
            val = val_loss()
            bar.set_postfix(bpp=f"{rd['bpp'].item():.3f}", bce=f"{bce.item():.3f}", val=f"{val:.3f}")
            if best.stop(val, step):
                break
    bar.close()
    best.restore()
    model.update(force=True)
    model.eval()
    tuned = copy.copy(codec)
    tuned.model = model
    tuned.source = codec.source if frozen else f"joint({codec.source}, gamma={joint.gamma:g})"
    return tuned, unet, {"steps_trained": step, "best_step": best.step, "val_loss": best.loss,
                         "val_loss_start": start_loss}


def joint_row(joint, task, splits, norm, codec, unet, backbone: str, cfg, seed: int, pos_weight: float = 1.0
              ) -> tuple[dict, object, torch.nn.Module]:
    """:func:`joint_train`, then the test split coded with real bitstreams by the tuned codec: bpp from
    the bytes, PSNR, and the tuned U-Net's F1 on the decoded chips. (row, tuned codec, U-Net)."""
    tuned, unet, info = joint_train(joint, task, splits, norm, codec, unet, cfg, seed, pos_weight)
    decoded, nbytes = [], 0
    for chip in splits["test"]:
        dec, n = code_learned(tuned, chip.raw)
        decoded.append(dec)
        nbytes += n
    normalise = norm.to_batch
    f_pos, f_macro = scores([predict(unet, normalise(d[None])[0]) for d in decoded], splits["test"])
    pixels = sum(c.pixels for c in splits["test"])
    bands = splits["test"][0].raw.shape[2]
    return {"task": task.name, "backbone": backbone, "codec": codec.architecture, "lambda": joint.lmbda,
            "gamma": joint.gamma, "freeze_codec": joint.freeze_codec, "bands": bands, "bpp": 8 * nbytes / pixels,
            "bits_per_sample": 8 * nbytes / (pixels * bands), "psnr": split_psnr(splits["test"], decoded),
            "f1_pos": f_pos, "f1_macro": f_macro, "training": "joint", **info}, tuned, unet


def interpolate_log_bpp(points: list[tuple[float, float]], bpp: float) -> float | None:
    """Linear interpolation in log bpp between a standalone curve's points; None outside their range."""
    points = sorted(points)
    for (b0, f0), (b1, f1) in zip(points, points[1:]):
        if b0 <= bpp <= b1:
            return f0 if b1 == b0 else f0 + (f1 - f0) * (math.log(bpp) - math.log(b0)) / (math.log(b1) - math.log(b0))
    return None


def equal_bpp_comparison(joint: dict, standalone: list[dict]) -> dict:
    """The joint row against the standalone learned codec's F1–bpp curve at the joint row's bpp."""
    curve = [r for r in standalone if r["task"] == joint["task"] and r["codec"] == joint["codec"]
             and r["backbone"] == joint["backbone"] and r["training"] == "standalone" and r["bpp"] is not None]
    out = {}
    for metric in ("f1_pos", "f1_macro"):
        at = interpolate_log_bpp([(r["bpp"], r[metric]) for r in curve], joint["bpp"])
        out[f"standalone_{metric}_at_bpp"] = at
        out[f"joint_minus_standalone_{metric}"] = None if at is None else joint[metric] - at
    same_lambda = [r for r in curve if r.get("lambda") == joint["lambda"]]
    if same_lambda:
        out["standalone_bpp_same_lambda"] = same_lambda[0]["bpp"]
        out["standalone_f1_pos_same_lambda"] = same_lambda[0]["f1_pos"]
    return out


def run_segmentation(scenario, tasks: list[tuple], codecs: list) -> tuple[list[dict], list[dict], dict]:
    """(standalone rows, joint rows, per-task data facts) of every segmentation task."""
    cfg = scenario.segmentation
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rows, joint_rows, facts = [], [], {}
    for task, splits in tasks:
        norm = training_normalisation([c.raw for c in splits["train"]], seed=scenario.seed)
        stage(f"segmentation {task.name}: {splits['test'][0].raw.shape[2]} bands, "
              + ", ".join(f"{s} {sum(c.pixels for c in chips)} px" for s, chips in splits.items()))
        pos_weight = positive_weight(cfg.pos_weight, splits["train"])
        task_rows, unets = task_condition_rows(task, splits, norm, scenario, codecs if task.learned else [],
                                              scenario.seed, pos_weight)
        rows += task_rows
        facts[task.name] = {s: {"chips": len(chips), "pixels": sum(c.pixels for c in chips),
                                "labelled_pixels": int(sum(c.valid.sum() for c in chips)),
                                "positive_fraction": float(sum((c.truth & c.valid).sum() for c in chips)
                                                           / max(sum(c.valid.sum() for c in chips), 1))}
                            for s, chips in splits.items()}
        facts[task.name]["normalisation"] = {"offset": list(norm.offset), "scale": list(norm.scale)}
        facts[task.name]["bce_positive_weight"] = pos_weight
        for joint in [j for j in cfg.joint if j.task == task.name]:
            codec = next((c for c in codecs if c.bands is not None and c.in_channels == splits["test"][0].raw.shape[2]
                          and c.lmbda == joint.lmbda and c.architecture == joint.architecture), None)
            if codec is None or (joint.architecture, joint.lmbda) not in unets:
                raise DataError(f"segmentation.joint: no {splits['test'][0].raw.shape[2]}-band {joint.architecture} at "
                                f"λ={joint.lmbda:g} among the scenario's models")
            backbone = next(r["backbone"] for r in task_rows
                            if r["codec"] == joint.architecture and r.get("lambda") == joint.lmbda)
            row, _, _ = joint_row(joint, task, splits, norm, codec, unets[(joint.architecture, joint.lmbda)], backbone,
                                  cfg, scenario.seed, pos_weight)
            row.update(equal_bpp_comparison(row, task_rows))
            joint_rows.append(row)
    return rows, joint_rows, facts


def segmentation_figure(table):
    """F1 of the positive class and macro F1 against bits per sample (the seed's Figure 2), a row a
    task: JPEG 2000 and learned codecs (standalone), joint training as stars, the uncompressed
    U-Net as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = plt.subplots(len(tasks), 2, figsize=(9, 3.3 * len(tasks)), squeeze=False)
    for k, task in enumerate(tasks):
        t = table[table["task"] == task]
        curve_backbone = t[t["codec"] != "uncompressed"]["backbone"].iloc[0] if (t["codec"] != "uncompressed").any() \
            else t["backbone"].iloc[0]
        ref = t[(t["codec"] == "uncompressed") & (t["backbone"] == curve_backbone)]
        for col, metric in enumerate(("f1_pos", "f1_macro")):
            ax = axes[k, col]
            coded = t[(t["codec"] != "uncompressed") & (t["training"] == "standalone")]
            for codec, g in coded.groupby("codec"):
                g = g.sort_values("bits_per_sample")
                ax.plot(g["bits_per_sample"], g[metric], "o-", color=CODEC_COLOURS.get(codec), label=codec)
            joint = t[t["training"] == "joint"]
            if len(joint):
                ax.plot(joint["bits_per_sample"], joint[metric], "*", ms=12, color="tab:red", label="joint (Eq. 1)")
            if len(ref):
                ax.axhline(ref[metric].iloc[0], color="k", ls=":", label="uncompressed")
            f1_axes(ax, metric, f"{task} ({int(t['bands'].iloc[0])} bands), U-Net {curve_backbone}",
                    "bits per sample (test split)")
    fig.tight_layout()
    return fig


__all__ = ["read_task", "run_segmentation", "segmentation_figure", "build_unet", "train_unet", "joint_row",
           "interpolate_log_bpp", "equal_bpp_comparison"]


def joint_command(scenario_path, task_name: str, gamma: float, steps: int, out_dir, *, architecture: str,
                  lmbda: float | None, init=None, seed: int = 0, codec_lr: float = 1e-4, aux_lr: float = 1e-3,
                  freeze_codec: bool = False) -> dict:
    """``edgespacecom train --joint-task SCENARIO.yaml:TASK``: the seed's procedure on one task of a
    downstream scenario. A U-Net (the scenario's curve backbone and settings) is first trained on the
    data decoded by ``codec`` (the standalone pair), then codec and U-Net are tuned together; both
    pairs are scored on the test split with real bitstreams. Writes the tuned codec's checkpoint
    (``codec.pt``, with its band normalisation), the U-Net (``unet.pt``) and ``joint_summary.json``."""
    from pathlib import Path

    import datetime as dt

    from edgespacecom.config import load_scenario
    from edgespacecom.outputs import write_json
    from edgespacecom.provenance import provenance_of

    from dlrc_agents.common.data import task_input_files

    from dlrc_agents.codecs.registry import atomic_torch_save, export_checkpoint, load_checkpoint, load_codec
    from dlrc_agents.studies.config import JointTrainingConfig

    started_utc = dt.datetime.now(dt.timezone.utc)
    scenario = load_scenario(scenario_path)
    task = next((t for t in getattr(scenario, "segmentation_tasks", []) if t.name == task_name), None)
    if task is None:
        raise DataError(f"--joint-task: {scenario_path} has no segmentation task {task_name!r}")
    splits = read_task(task)
    bands = splits["test"][0].raw.shape[2]
    codec = load_checkpoint(init, architecture) if init is not None else load_codec(architecture, lmbda=lmbda, bands=bands)
    if codec.lmbda is None:
        if lmbda is None:
            raise DataError("--joint-task: the start checkpoint names no λ; give --lambda")
        codec.lmbda = lmbda
    if codec.bands is None or codec.in_channels != bands:
        raise DataError(f"--joint-task: task {task_name} has {bands} bands, the codec {codec.in_channels}")
    cfg = scenario.segmentation
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    norm = training_normalisation([c.raw for c in splits["train"]], seed=seed)
    normalise = norm.to_batch
    coded = {s: [code_learned(codec, c.raw) for c in chips] for s, chips in splits.items()}
    decoded = {s: [d for d, _ in coded[s]] for s in coded}
    inputs = {s: [normalise(d[None])[0] for d in decoded[s]] for s in decoded}
    pos_weight = positive_weight(cfg.pos_weight, splits["train"])
    candidates = cfg.backbones if cfg.curve_backbone == "best" else [cfg.curve_backbone]
    trained = []
    for backbone in candidates:  # "best": the lower validation loss, as the downstream kind chooses
        stage(f"standalone U-Net ({backbone}) on {codec.architecture}'s decoded {task_name}")
        trained.append((backbone, *train_unet(backbone, inputs["train"], splits["train"], inputs["validation"],
                                              splits["validation"], cfg, seed, f"{task_name} standalone U-Net",
                                              pos_weight=pos_weight)))
    backbone, unet, _ = min(trained, key=lambda t: t[2]["val_loss"])
    test_bytes = sum(n for _, n in coded["test"])
    pixels = sum(c.pixels for c in splits["test"])
    f_pos, f_macro = scores([predict(unet, x) for x in inputs["test"]], splits["test"])
    standalone = {"bpp": 8 * test_bytes / pixels, "psnr": split_psnr(splits["test"], decoded["test"]),
                  "f1_pos": f_pos, "f1_macro": f_macro}
    # the scenario's own joint entry for this task, codec and λ sets the rest (patience, U-Net rate)
    like = next((j for j in cfg.joint if j.task == task_name and j.lmbda == codec.lmbda
                 and j.architecture == codec.architecture), None)
    joint = JointTrainingConfig(**{**(like.model_dump() if like else {}), "task": task_name, "lmbda": codec.lmbda,
                                   "architecture": codec.architecture, "gamma": gamma, "steps": steps,
                                   "freeze_codec": freeze_codec,
                                   "codec_lr": codec_lr, "aux_lr": aux_lr})
    row, tuned, unet = joint_row(joint, task, splits, norm, codec, unet, backbone, cfg, seed, pos_weight)
    out_dir = Path(out_dir)
    export_checkpoint(tuned.model, out_dir / "codec.pt", architecture=codec.architecture, N=codec.N, M=codec.M,
                      lmbda=codec.lmbda, steps=row["best_step"], seed=seed, data=[str(scenario_path) + ":" + task_name],
                      bands=codec.bands, extra={"joint": {"gamma": gamma, "start": codec.source}})
    atomic_torch_save(out_dir / "unet.pt", {"backbone": backbone, "in_channels": bands,
                                            "state_dict": unet.state_dict()})
    summary = {"task": task_name, "start": codec.source, "standalone": standalone, "joint": row}
    inputs = {f"scenario:{Path(scenario_path).name}": Path(scenario_path), **task_input_files(task)}
    if codec.path is not None:
        inputs[codec.source] = Path(codec.path)
    summary["provenance"] = provenance_of({"joint_task": f"{Path(scenario_path).name}:{task_name}", "gamma": gamma,
                                           "freeze_codec": freeze_codec, "steps": steps, "architecture": architecture,
                                           "lambda": lmbda, "init": str(init) if init else None, "seed": seed,
                                           "codec_lr": codec_lr, "aux_lr": aux_lr}, inputs, started_utc)
    write_json(out_dir / "joint_summary.json", summary)
    return summary

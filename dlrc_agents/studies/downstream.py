"""kind: downstream — what compression does to the products made from decoded bands.

Index tasks (no training): a normalised difference index of two bands, (a − b)/(a + b), thresholded
into a mask, e.g. McFeeters' NDWI = (green − NIR)/(green + NIR) > 0 for open water on Sentinel-2.
The band set is coded by JPEG 2000 at every target in bits per sample (and by every learned codec
with as many bands); the index is computed on the decoded samples and scored against a labelled
mask: F1 of the positive class and macro F1 (the mean of both classes' F1), the seed's two
measures, with the uncompressed bands as the reference row.

Segmentation tasks (the seed's U-Nets, :mod:`dlrc_agents.studies.segmentation`): a U-Net per backbone on the
uncompressed bands (``segmentation.csv``, the Table 1 analog), one on the data of every codec and
rate (the Figure 2 analog, ``segmentation.png``), and joint codec + U-Net training against the
standalone pair at equal bpp (``segmentation_joint.csv``).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd

from edgespacecom.outputs import write_figure, write_table
from edgespacecom.progress import progress, stage

from dlrc_agents.codecs import jpeg2000
from dlrc_agents.codecs.registry import load_codecs
from dlrc_agents.studies.codec_rd import code_band_set, crop_to_multiple
from dlrc_agents.common.data import DataError, open_raster, read_band_set, scene_names  # noqa: F401
from dlrc_agents.studies.task_measures import CODEC_COLOURS, f1_axes, f1_scores, read_label  # noqa: F401


def index_mask(samples: np.ndarray, a: int, b: int, threshold: float) -> np.ndarray:
    """(a − b)/(a + b) > threshold over (H, W, B) samples, bands 1-based; 0/0 is negative."""
    x = samples[..., a - 1].astype(np.float64)
    y = samples[..., b - 1].astype(np.float64)
    total = x + y
    index = np.divide(x - y, total, out=np.full(total.shape, -np.inf), where=total != 0)
    return index > threshold


def task_rows(task, raw: np.ndarray, label: np.ndarray, j2k_cfg, codecs: list) -> list[dict]:
    """The uncompressed reference, then every JPEG 2000 rate and learned codec, scored on the task."""
    valid = label != task.ignore if task.ignore is not None else np.ones(label.shape, bool)
    truth = label == task.positive
    a, b = task.index_bands
    h, w, bands = raw.shape
    peak = float(max(int(raw.max()), 1))

    def row(codec: str, decoded: np.ndarray, nbytes: int | None, **extra) -> dict:
        f_pos, f_macro = f1_scores(index_mask(decoded, a, b, task.threshold), truth, valid)
        return {"task": task.name, "backbone": f"index ({a}-{b})/({a}+{b}) > {task.threshold:g}", "codec": codec,
                "bands": bands, "bpp": None if nbytes is None else 8 * nbytes / (h * w),
                "bits_per_sample": None if nbytes is None else 8 * nbytes / (h * w * bands),
                "psnr": float("inf") if nbytes is None else jpeg2000.psnr(raw, decoded, peak),
                "f1_pos": f_pos, "f1_macro": f_macro, **extra}

    rows = [row("uncompressed", raw, None)]
    rows += [row(codec, decoded, nbytes, **extra) for codec, extra, decoded, nbytes in code_band_set(raw, j2k_cfg, codecs)]
    return rows


#: One colour per codec in every F1 panel.
def downstream_figure(table: pd.DataFrame):
    """F1 of the positive class and macro F1 against bits per sample, a panel pair a task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = plt.subplots(len(tasks), 2, figsize=(9, 3.4 * len(tasks)), squeeze=False)
    for k, task in enumerate(tasks):
        t = table[table["task"] == task]
        ref = t[t["codec"] == "uncompressed"].iloc[0]
        for col, metric in enumerate(("f1_pos", "f1_macro")):
            ax = axes[k, col]
            coded = t[t["codec"] != "uncompressed"]
            for (codec, mct), g in coded.groupby([coded["codec"], coded.get("mct", pd.Series(index=coded.index,
                                                                                                dtype=object)).fillna("")]):
                g = g.sort_values("bits_per_sample")
                ax.plot(g["bits_per_sample"], g[metric], "o-" if mct is not False else "s--",
                        color=CODEC_COLOURS.get(codec), label=f"{codec}{' (MCT)' if mct is True else ''}")
            ax.axhline(ref[metric], color="k", ls=":", label="uncompressed")
            f1_axes(ax, metric, f"{task}: {ref['backbone']}")
    fig.tight_layout()
    return fig


def run_downstream(scenario, run) -> dict:
    from dlrc_agents.studies import segmentation

    out_dir = run.out_dir
    codecs = [codec for c in scenario.models for codec in load_codecs(c)]
    seg_tasks = [(task, segmentation.read_task(task)) for task in scenario.segmentation_tasks]
    if seg_tasks and importlib.util.find_spec("segmentation_models_pytorch") is None:
        raise DataError("segmentation_tasks: need the segmentation-models-pytorch package (in this project's "
                        "requirements: pip install -e .)")
    tasks = []
    for task in scenario.index_tasks:  # every file read and checked before anything is written
        rows = task.band_set.rows
        raw = crop_to_multiple(read_band_set(task.band_set.files, task.band_set.bands, rows))
        label = read_label(task.label)
        label = (label if rows is None else label[rows[0]:rows[1]])[:raw.shape[0], :raw.shape[1]]
        if label.shape != raw.shape[:2]:
            raise DataError(f"index_tasks.{task.name}: label {label.shape} smaller than the bands {raw.shape[:2]}")
        if max(task.index_bands) > raw.shape[2]:
            raise DataError(f"index_tasks.{task.name}.index_bands: the band set has {raw.shape[2]} bands")
        tasks.append((task, raw, label))
    run.begin()
    stage(f"downstream: {len(tasks)} index task(s), {len(seg_tasks)} segmentation task(s), "
          f"{len(codecs)} learned codec(s)")
    rows = []
    for task, raw, label in progress(tasks, desc="index tasks", unit="task"):
        rows += task_rows(task, raw, label, scenario.jpeg2000, codecs if task.band_set.learned else [])
    if rows:
        table = pd.DataFrame(rows)
        write_table(out_dir / "downstream.csv", table)
        write_figure(out_dir / "downstream.png", downstream_figure(table))
    seg_rows, joint_rows, seg_facts = segmentation.run_segmentation(scenario, seg_tasks, codecs) if seg_tasks else ([], [], {})
    if seg_rows:
        seg_table = pd.DataFrame(seg_rows + joint_rows)
        write_table(out_dir / "segmentation.csv", pd.DataFrame(seg_rows))
        if joint_rows:
            write_table(out_dir / "segmentation_joint.csv", pd.DataFrame(joint_rows))
        write_figure(out_dir / "segmentation.png", segmentation.segmentation_figure(seg_table))
    summary = {"kind": "downstream", "name": scenario.name, "results": rows + seg_rows + joint_rows,
               "segmentation_data": seg_facts,
               "tasks": {t.name: {"pixels_scored": int(np.sum(label != t.ignore)) if t.ignore is not None else int(label.size),
                                  "positive_fraction": float(np.mean(label[label != t.ignore] == t.positive))
                                  if t.ignore is not None else float(np.mean(label == t.positive))}
                         for t, _, label in tasks}}
    return run.finish(summary)


def format_downstream_summary(summary: dict) -> str:
    t = pd.DataFrame(summary["results"])
    cols = [c for c in ("task", "backbone", "codec", "training", "lambda", "mct", "bits_per_sample", "bpp", "psnr",
                        "f1_pos", "f1_macro") if c in t]
    return f"{summary['name']}: downstream\n" + t[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")

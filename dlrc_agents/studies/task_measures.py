"""Task measures shared by the downstream and segmentation studies, below both: F1 scores of a mask,
labels read from the registry, and the figures' colours and F1 panels. Imports no study module."""

from __future__ import annotations

import numpy as np

from dlrc_agents.common.data import DataError, open_raster, scene_names


def f1_scores(predicted: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(F1 of the positive class, macro F1 over both classes) on the valid pixels."""
    p, t = predicted[valid], truth[valid]
    def f1(pos_p, pos_t):
        tp = np.sum(pos_p & pos_t)
        denom = np.sum(pos_p) + np.sum(pos_t)
        return 1.0 if denom == 0 else 2.0 * tp / denom
    f_pos, f_neg = f1(p, t), f1(~p, ~t)
    return float(f_pos), float((f_pos + f_neg) / 2)


def read_label(name: str) -> np.ndarray:
    path = next(iter(scene_names([name]).values()))
    try:
        with open_raster(path) as src:
            return src.read(1)
    except Exception as exc:
        raise DataError(f"{path}: cannot be read as a label raster ({exc})") from None


CODEC_COLOURS = {"jpeg2000": "tab:green", "bmshj2018-hyperprior": "tab:blue", "cheng2020-gmm": "tab:orange",
                 "mbt2018-mean": "tab:purple", "mbt2018": "tab:brown"}


def f1_axes(ax, metric: str, title: str, xlabel: str = "bits per sample") -> None:
    """The F1-against-rate panel's axes: log rate, the metric's name, a small title, grid and legend."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # decade labels only: the minor ones overlap
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
